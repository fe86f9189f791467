"""Near duplicates: MinHash over word n-grams with LSH banding (Broder 1997; FineWeb/datatrove)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.registry import register_scorer
from curate.core.scorer import EASIER, Scorer
from curate.core.validate import boolean, non_negative_int, number, positive_int, string
from scorers.dedup import lsh
from scorers.dedup.clusters import ShardedFinalize, cluster_tables, representatives
from scorers.dedup.shingles import shingle_hashes, word_hashes
from scorers.dedup.signatures import EMPTY, minhash, permutations


@register_scorer
class MinHashDup(ShardedFinalize, Scorer):
    """Cluster documents whose word n-gram sets have a high Jaccard similarity.

    Pipeline:

    1. ``score_batch``: lowercase, split into words (runs of Unicode letters, marks,
       digits, ``_``), hash every ``ngram``-word shingle to a 32-bit key (a text
       shorter than ``ngram`` words is one shingle; an empty text has none), and
       take the minimum of ``num_perm`` seeded hash functions
       ``h(x) = ((a*x + b) mod 2**64) >> 32`` over the keys: the signature,
       ``minhash_signature`` (fixed-size list of ``num_perm`` uint32, null for an
       empty text). Signatures do not depend on how the corpus is batched.
    2. ``finalize``: cut each signature into ``bands`` bands of ``rows =
       num_perm // bands`` values; two documents with an identical band are
       candidates. With ``verify`` (default), a candidate pair is kept only if the
       fraction of equal signature values (the estimated Jaccard, an unbiased
       estimate with standard deviation ``sqrt(J(1-J)/num_perm)``) is at least
       ``threshold - 3 * sqrt(threshold * (1 - threshold) / num_perm)`` (0.694 for
       the defaults): a pair is rejected only when its estimate is confidently
       below ``threshold``. Kept pairs are joined into connected components;
       each component's first document in dataset order is its representative.

    Clusters are transitive: they are the connected components (a union-find) of the
    kept pairs, so A ~ B and B ~ C put A and C in one cluster even when A and C are not
    similar at all; a chain of small edits (versions of a page, a text quoted with
    growing context) can join documents that share little. Every member but the
    representative is marked a duplicate, also a member that is similar only to another
    member. ``minhash_jaccard`` shows it: a duplicate's estimated Jaccard to its
    representative can be below ``threshold``, even far below it.

    The S-curve: a pair with Jaccard ``s`` becomes a candidate with probability
    ``1 - (1 - s**rows)**bands``. The defaults (128 = 16 bands x 8 rows; FineWeb
    uses 14 x 8) put the curve's midpoint ``(1/bands)**(1/rows)`` at 0.71, below
    the 0.8 target, so pairs at the target are still found: P = 0.06 at s = 0.5,
    0.24 at 0.6, 0.61 at 0.7, 0.947 at 0.8, 0.9999 at 0.9. The verification step
    then removes most candidates below the target. (9 bands x 13 rows, datasketch's
    choice for threshold 0.8, gives only P = 0.40 at s = 0.8.)

    Args:
        ngram: words per shingle (default 5).
        num_perm: hash functions per signature (default 128).
        bands: LSH bands (default 16); must divide ``num_perm``.
        threshold: target Jaccard similarity in (0, 1] (default 0.8), used by ``verify``.
        verify: drop candidate pairs whose estimated Jaccard is confidently below
            ``threshold`` (default True); False keeps every band match, as datatrove.
        seed: seed of the hash functions (default 1); same seed, same signatures.
        text_column: the column holding the text.

    Output of ``finalize`` (one row per document, in dataset order, after the id):
        ``minhash_cluster`` (int64, row position of the representative),
        ``minhash_cluster_size`` (int64), ``minhash_duplicate`` (bool, True for every
        member but the representative) and ``minhash_jaccard`` (float64): for a
        duplicate, the MinHash estimate of the Jaccard similarity of its shingle set to
        its representative's (the fraction of equal signature values); null for every
        document that is kept (a representative, or a document in no cluster), so it
        never reads 1.0 for a document that duplicates nothing. Because clusters are
        transitive (above), it can be below ``threshold``.
    """

    name = "minhash"
    kind = "dedup"
    directions = {"minhash_keep": EASIER}
    primary = "minhash_keep"
    batch_size = 2_000

    def __init__(self, ngram: int = 5, num_perm: int = 128, bands: int = 16,
                 threshold: float = 0.8, verify: bool = True, seed: int = 1,
                 text_column: str = "text"):
        owner = self.name
        self.ngram = positive_int(owner, "ngram", ngram)
        self.num_perm = positive_int(owner, "num_perm", num_perm)
        self.bands = positive_int(owner, "bands", bands)
        if self.num_perm % self.bands:
            raise CurateError(f"{owner}: bands must divide num_perm ({self.num_perm}), "
                              f"got {self.bands!r}")
        self.threshold = number(owner, "threshold", threshold, minimum=0, strict_minimum=True,
                                maximum=1)
        self.verify = boolean(owner, "verify", verify)
        self.seed = non_negative_int(owner, "seed", seed)
        self.text_column = string(owner, "text_column", text_column)
        self._a, self._b = permutations(self.num_perm, self.seed)

    @property
    def rows(self) -> int:
        """Signature values per band."""
        return self.num_perm // self.bands

    @property
    def verify_cutoff(self) -> float:
        """Lowest estimated Jaccard a verified candidate pair may have."""
        t = self.threshold
        return t - 3 * math.sqrt(t * (1 - t) / self.num_perm)

    def signatures(self, texts: pa.Array) -> np.ndarray:
        """MinHash signatures of ``texts``: shape (N, num_perm) uint32 (empty texts all 2**32-1)."""
        words, word_offsets = word_hashes(texts)
        keys, offsets = shingle_hashes(words, word_offsets, self.ngram)
        return minhash(keys, offsets, self._a, self._b)

    def _band_columns(self) -> list[str]:
        return [self.col(f"band{band}") for band in range(self.bands)]

    def score_batch(self, batch: pa.Table) -> pa.Table:
        """``minhash_signature`` (fixed-size list of ``num_perm`` uint32) and one 64-bit key
        per band (``minhash_band0``, ...); all null for empty texts. ``finalize`` drops them."""
        texts = batch.column(self.text_column).combine_chunks()
        sigs = self.signatures(texts)
        empty = (sigs == EMPTY).all(axis=1)
        columns = {self.col("signature"): pa.FixedSizeListArray.from_arrays(
            pa.array(sigs.reshape(-1)), self.num_perm, mask=pa.array(empty))}
        for band, name in enumerate(self._band_columns()):
            columns[name] = pa.array(lsh.band_key(sigs, band, self.bands), pa.uint64(),
                                     mask=empty)
        return pa.table(columns)

    def _signatures(self, parts, positions: np.ndarray) -> np.ndarray:
        """Signatures at global ``positions``: shape (len(positions), num_perm) uint32."""
        column = parts.take(self.col("signature"), positions)
        values = column.values.slice(column.offset * self.num_perm, len(column) * self.num_perm)
        return values.to_numpy(zero_copy_only=False).reshape(len(column), self.num_perm)

    def finalize_parts(self, parts):
        """Cluster near duplicates over every part (see the class docstring).

        Reads one band's keys at a time and only the signatures of candidate pairs, so
        memory is a few dozen bytes per document plus the candidates' signatures.
        """
        bands = self._band_columns()
        n = parts.num_rows
        rows = np.flatnonzero(parts.column(bands[0]).is_valid().to_numpy(zero_copy_only=False))

        def band_keys(band):
            keys = parts.column(bands[band]).to_numpy(zero_copy_only=False)
            return np.asarray(keys[rows], np.uint64)

        pairs = lsh.candidate_pairs(band_keys, self.bands, rows)
        involved = np.unique(pairs.reshape(-1))
        sigs = self._signatures(parts, involved)
        local = np.searchsorted(involved, pairs)
        if self.verify and len(pairs):
            similar = lsh.estimated_jaccard(sigs, local[:, 0], local[:, 1]) >= self.verify_cutoff
            pairs, local = pairs[similar], local[similar]
        reps = representatives(lsh.components(n, pairs)) if n else np.zeros(0, np.int64)
        duplicate = np.flatnonzero(reps != np.arange(n))
        jaccard = np.zeros(n, np.float64)
        jaccard[duplicate] = lsh.estimated_jaccard(
            sigs, np.searchsorted(involved, duplicate), np.searchsorted(involved, reps[duplicate]))
        mask = reps == np.arange(n)

        def jaccard_column(i, first, stop):
            return {self.col("jaccard"): pa.array(jaccard[first:stop], pa.float64(),
                                                  mask=mask[first:stop])}

        yield from cluster_tables(self.name, parts, reps, [self.col("signature"), *bands],
                                  jaccard_column)
