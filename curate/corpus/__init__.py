"""A text corpus with provenance, built from installed Debian packages and the Python
standard library (nothing is downloaded).

:func:`build_corpus` reads the requested slices of :data:`SLICES` (``prose``,
``multilingual``, ``man``, ``changelog``, ``copyright``, ``code``), caps each to a seeded
random sample, splits each into train and held-out documents, and writes
``train.parquet``, ``heldout.parquet`` and ``manifest.json``::

    from curate.corpus import build_corpus
    manifest = build_corpus("corpus/", max_bytes=50_000_000, seed=0)

``benchmarks/install_corpora.sh`` installs the Debian packages the slices read.
"""

from curate.corpus.build import SCHEMA, build_corpus, document_id
from curate.corpus.document import Document
from curate.corpus.manifest import CorpusManifest, SliceReport
from curate.corpus.slices import DEFAULT_SLICES, SLICES, Slice

__all__ = ["DEFAULT_SLICES", "SCHEMA", "SLICES", "CorpusManifest", "Document", "Slice",
           "SliceReport", "build_corpus", "document_id"]
