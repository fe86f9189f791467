"""LSH banding over MinHash signatures, candidate verification and connected components."""

from __future__ import annotations

import numpy as np

_K = np.uint64(0x9E3779B97F4A7C15)
_PAIR_BLOCK = 1 << 16  # candidate pairs compared per block in ``estimated_jaccard``


def band_key(signatures: np.ndarray, band: int, bands: int) -> np.ndarray:
    """One 64-bit key per row for one band: equal keys mean equal values in that band.

    Args:
        signatures: shape (N, bands * rows) uint32.

    Returns:
        shape (N,) uint64.
    """
    width = signatures.shape[1] // bands
    key = np.zeros(len(signatures), np.uint64)
    for column in range(band * width, (band + 1) * width):
        key *= _K
        key += signatures[:, column]
    return key


def candidate_pairs(band_keys, bands: int, rows: np.ndarray) -> np.ndarray:
    """Pairs of the rows ``rows`` that share a band.

    Each row is paired with the first row (smallest position) of every bucket it
    falls in, which connects each bucket without listing all its pairs. Bands are
    keyed one at a time so that memory stays at a few bytes per row.

    Args:
        band_keys: ``band_keys(band)`` -> shape (M,) uint64 key of each row of ``rows``
            in that band (:func:`band_key`).
        bands: number of bands.
        rows: shape (M,) int64 increasing positions of the rows to pair (non-empty texts).

    Returns:
        shape (C, 2) int64 unique pairs ``(first, other)`` with ``first < other``.
    """
    if len(rows) == 0:
        return np.zeros((0, 2), np.int64)
    pairs = []
    for band in range(bands):
        keys = band_keys(band)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        new_bucket = np.ones(len(order), bool)
        new_bucket[1:] = sorted_keys[1:] != sorted_keys[:-1]
        first = order[np.flatnonzero(new_bucket)][np.cumsum(new_bucket) - 1]
        member = ~new_bucket
        pairs.append(np.stack([rows[first[member]], rows[order[member]]], axis=1))
    # Deduplicate pairs found in several bands through one int64 code per pair.
    span = np.int64(rows[-1] + 1)
    both = np.concatenate(pairs)
    codes = np.unique(both[:, 0] * span + both[:, 1])
    return np.stack([codes // span, codes % span], axis=1)


def estimated_jaccard(signatures: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Fraction of equal signature entries for each pair ``(left[i], right[i])``, float64."""
    out = np.empty(len(left), np.float64)
    for start in range(0, len(left), _PAIR_BLOCK):
        stop = start + _PAIR_BLOCK
        same = signatures[left[start:stop]] == signatures[right[start:stop]]
        out[start:stop] = same.mean(axis=1)
    return out


def components(n: int, pairs: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` nodes joined by ``pairs`` (shape (C, 2))."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(pairs), np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    return connected_components(graph, directed=False)[1]
