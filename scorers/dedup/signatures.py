"""MinHash signatures from 32-bit shingle keys, vectorised over a whole batch."""

from __future__ import annotations

import numpy as np

#: Shingles x permutations per working block (32 MiB of uint64).
_BLOCK_ELEMENTS = 1 << 22
#: Signature value of a text without shingles.
EMPTY = np.uint32(0xFFFFFFFF)


def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``(a, b)`` coefficients of ``num_perm`` hash functions, shape (num_perm,) uint64.

    Each function is Dietzfelbinger's multiply-add-shift
    ``h(x) = ((a * x + b) mod 2**64) >> 32`` for 32-bit keys ``x``: a strongly
    universal family that needs no 128-bit product (``(a * x + b) mod p`` with a
    61-bit prime would overflow uint64 in numpy).
    """
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False)
    b = rng.integers(0, 2**64, size=num_perm, dtype=np.uint64, endpoint=False)
    return a, b


def minhash(keys: np.ndarray, offsets: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signatures of many texts at once.

    Args:
        keys: shape (S,) uint32 shingle keys of all texts, concatenated.
        offsets: shape (N + 1,) int64; text ``i`` owns ``keys[offsets[i]:offsets[i + 1]]``.
        a, b: shape (P,) uint64 coefficients from :func:`permutations`.

    Returns:
        shape (N, P) uint32: ``out[i, k] = min over text i's keys of h_k(key)``;
        rows of texts without shingles are all :data:`EMPTY`.
    """
    n, p = len(offsets) - 1, len(a)
    # Permutations along the rows, shingles along the columns: numpy reduces the
    # contiguous last axis several times faster than the first.
    best = np.full((p, n), np.iinfo(np.uint64).max, np.uint64)
    step = max(1, _BLOCK_ELEMENTS // max(p, 1))
    block = np.empty((p, min(step, len(keys))), np.uint64)
    a, b = a[:, None], b[:, None]
    for start in range(0, len(keys), step):
        stop = min(start + step, len(keys))
        values = block[:, :stop - start]
        np.multiply(a, keys[start:stop].astype(np.uint64), out=values)
        values += b
        # Segments of this block: its first column, then every text start inside it.
        inner = offsets[(offsets > start) & (offsets < stop)]
        seg_starts = np.unique(np.concatenate(([start], inner)))
        docs = np.searchsorted(offsets, seg_starts, side="right") - 1
        seg_min = np.minimum.reduceat(values, seg_starts - start, axis=1)
        best[:, docs] = np.minimum(best[:, docs], seg_min)
    # h is monotone in the full 64-bit value, so shifting the minimum is the minimum of h.
    return np.ascontiguousarray((best >> np.uint64(32)).astype(np.uint32).T)
