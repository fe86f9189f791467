"""Exact and near-duplicate detection: :class:`ExactDup` and :class:`MinHashDup`.

Both need the whole corpus: ``score_batch`` computes per-document data (a hash, a
MinHash signature) and ``finalize`` groups documents into clusters, keeping the
first document of each cluster in dataset order.
"""

from scorers.dedup.exact import NORMALIZATIONS, ExactDup
from scorers.dedup.minhash import MinHashDup

__all__ = ["NORMALIZATIONS", "ExactDup", "MinHashDup"]
