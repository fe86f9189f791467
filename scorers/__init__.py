"""Scorers: text quality rules, classifiers, language models, deduplication.

Importing this package registers every text scorer (``curate.core.registry.SCORERS``);
the training-dynamics scorers live in :mod:`scorers.dynamics`, which imports the
training harness, and register when that package is imported.
"""

from scorers import dedup, fasttext_quality, langid, perplexity
from scorers.text import c4, fineweb, gopher

__all__ = ["c4", "dedup", "fasttext_quality", "fineweb", "gopher", "langid", "perplexity"]
