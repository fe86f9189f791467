"""Exact duplicates: documents whose normalised text hashes to the same 64-bit value."""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import pyarrow as pa
import xxhash

from curate.core.registry import register_scorer
from curate.core.scorer import EASIER, Scorer
from curate.core.validate import choice, string
from scorers.dedup.clusters import ShardedFinalize, cluster_tables, representatives

_SPACES = re.compile(r"\s+")
_NOT_ALNUM = re.compile(r"[\W_]+")


def _whitespace(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _lower(text: str) -> str:
    return _SPACES.sub(" ", text.lower()).strip()


def _alnum(text: str) -> str:
    return _NOT_ALNUM.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


#: Text normalisations applied before hashing, by name.
NORMALIZATIONS = {
    "none": lambda text: text,
    "whitespace": _whitespace,
    "lower": _lower,
    "alnum": _alnum,
}


@register_scorer
class ExactDup(ShardedFinalize, Scorer):
    """Cluster documents whose normalised texts are identical.

    Each text is normalised, encoded as UTF-8 and hashed with xxh3-64; documents
    with equal hashes form a cluster whose representative (kept) is the first in
    dataset order.

    Args:
        normalize: what counts as "the same text" (default ``"lower"``):

            * ``"none"``: byte-identical texts only;
            * ``"whitespace"``: runs of whitespace collapsed to one space, ends stripped;
            * ``"lower"``: lowercased, then as ``"whitespace"``;
            * ``"alnum"``: Unicode NFKC, lowercased, and every run of characters that
              are not letters or digits (punctuation, symbols, whitespace, ``_``)
              replaced by one space, so ``"Hello, World!"`` equals ``"hello world"``.
        text_column: the column holding the text.

    Output of ``finalize`` (one row per document, in dataset order, after the id):
        ``exact_dup_cluster`` (int64, row position of the representative),
        ``exact_dup_cluster_size`` (int64), ``exact_dup_duplicate`` (bool, True for
        every member but the representative) and ``exact_dup_hash`` (uint64).
    """

    name = "exact_dup"
    kind = "dedup"
    directions = {"exact_dup_keep": EASIER}
    primary = "exact_dup_keep"
    batch_size = 10_000

    def __init__(self, normalize: str = "lower", text_column: str = "text"):
        self.normalize = choice(self.name, "normalize", normalize, NORMALIZATIONS)
        self.text_column = string(self.name, "text_column", text_column)

    def score_batch(self, batch: pa.Table) -> pa.Table:
        """``exact_dup_hash`` (uint64) of each document's normalised text."""
        norm = NORMALIZATIONS[self.normalize]
        hashes = [xxhash.xxh3_64_intdigest(norm(t).encode("utf-8"))
                  for t in self.texts(batch)]
        return pa.table({self.col("hash"): pa.array(hashes, pa.uint64())})

    def finalize_parts(self, parts):
        """Cluster equal hashes over every part; the first document of each cluster (in
        dataset order) is kept. Memory: about 30 bytes per document."""
        key = self.col("hash")
        hashes = np.asarray(parts.column(key).to_numpy(), dtype=np.uint64)
        reps = representatives(hashes)
        yield from cluster_tables(self.name, parts, reps, [key],
                                  lambda i, first, stop: {key: pa.array(hashes[first:stop])})
