"""Word n-gram shingles of a batch of texts, hashed to 32-bit keys, all in vectorised form.

Words are maximal runs of Unicode letters, marks, digits and ``_`` after lowercasing
(Arrow's RE2 split, so a batch is tokenised in C++). Each distinct word is hashed
once with xxh3-64; a shingle's hash combines its words' hashes positionally in
numpy, so no shingle string is ever built.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import xxhash

#: Separator between words: anything but letters, marks, digits and underscore.
WORD_SEPARATOR = r"[^\p{L}\p{M}\p{N}_]+"
#: The same word definition for Python's third-party ``regex`` module (used by baselines).
WORD_PATTERN = r"[\p{L}\p{M}\p{N}_]+"

_K = np.uint64(0x9E3779B97F4A7C15)  # odd multiplier for the positional combination
_M1 = np.uint64(0xBF58476D1CE4E5B9)  # splitmix64 finalizer constants
_M2 = np.uint64(0x94D049BB133111EB)


def word_hashes(texts: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Tokenise ``texts`` (Arrow strings; nulls count as empty) and hash every word.

    Returns:
        ``(hashes, offsets)``: hashes of shape (W,) uint64 for all words of all texts
        in order, and offsets of shape (N + 1,) int64 so that text ``i`` owns
        ``hashes[offsets[i]:offsets[i + 1]]``.
    """
    n = len(texts)
    if n == 0:
        return np.zeros(0, np.uint64), np.zeros(1, np.int64)
    lists = pc.split_pattern_regex(pc.utf8_lower(texts.cast(pa.large_string())), WORD_SEPARATOR)
    words = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists)
    nonempty = pc.greater(pc.binary_length(words), 0)  # the split leaves "" at the ends
    words, parents = words.filter(nonempty), parents.filter(nonempty)
    counts = np.bincount(parents.to_numpy(zero_copy_only=False), minlength=n)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=offsets[1:])
    if len(words) == 0:
        return np.zeros(0, np.uint64), offsets
    encoded = pc.dictionary_encode(words)
    vocab = encoded.dictionary.cast(pa.large_binary()).to_pylist()
    vocab_hashes = np.fromiter(map(xxhash.xxh3_64_intdigest, vocab), np.uint64, len(vocab))
    return vocab_hashes[encoded.indices.to_numpy(zero_copy_only=False)], offsets


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer: spreads every input bit over all output bits (in place)."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def shingle_hashes(words: np.ndarray, offsets: np.ndarray, ngram: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Hash every run of ``ngram`` consecutive words of each text.

    A text with ``L >= ngram`` words has ``L - ngram + 1`` shingles; a text with
    ``0 < L < ngram`` words has one shingle (all its words); an empty text has none.

    Args:
        words: shape (W,) uint64 word hashes, as from :func:`word_hashes`.
        offsets: shape (N + 1,) int64 word offsets per text.
        ngram: words per shingle.

    Returns:
        ``(hashes, offsets)``: hashes of shape (S,) uint32 and shingle offsets of
        shape (N + 1,) int64, laid out like the word arrays.
    """
    lengths = np.diff(offsets)
    counts = np.where(lengths >= ngram, lengths - ngram + 1, np.minimum(lengths, 1))
    out_offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(counts, out=out_offsets[1:])
    out = np.empty(int(out_offsets[-1]), np.uint64)

    windows = len(words) - ngram + 1
    if windows > 0:
        combined = words[:windows].copy()
        for i in range(1, ngram):
            combined *= _K
            combined += words[i:i + windows]
        # Keep windows that start and end in the same text.
        doc = np.repeat(np.arange(len(lengths)), lengths)
        valid = np.flatnonzero(doc[:windows] == doc[ngram - 1:])
        docs = doc[valid]
        out[out_offsets[docs] + valid - offsets[docs]] = combined[valid]

    short = np.flatnonzero((lengths > 0) & (lengths < ngram))
    if len(short):
        combined = np.zeros(len(short), np.uint64)
        for i in range(ngram - 1):
            active = lengths[short] > i
            combined[active] = combined[active] * _K + words[offsets[short][active] + i]
        out[out_offsets[short]] = combined

    # Fold the mixed 64-bit hash to its top 32 bits: the key width that the
    # multiply-add-shift family in ``signatures`` is strongly universal for.
    return (_mix(out) >> np.uint64(32)).astype(np.uint32), out_offsets
