"""The record of a corpus build, written as ``manifest.json`` beside the tables."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

#: What the manifest says about licences.
LICENSE_NOTE = ("Free-software documentation, source and metadata from installed Debian "
                "packages and the Python standard library; every document keeps the licence "
                "of the package it comes from (see each slice's sources and "
                "/usr/share/doc/<package>/copyright).")


@dataclass
class SplitCount:
    documents: int = 0
    bytes: int = 0  # UTF-8 bytes of text

    def add(self, documents: int, text_bytes: int) -> None:
        self.documents += documents
        self.bytes += text_bytes


@dataclass
class SliceReport:
    """One slice of a build.

    ``sources``: each reader's description, package (None: the files of installed
    packages), licence and whether it was read; ``missing``: packages not installed, with
    the command that installs them; ``packages``: package -> version of the documents
    written; ``available``: the documents the slice has (at least ``min_chars``), of which
    ``train`` and ``heldout`` were written; ``too_short``: documents left out for length.
    """

    name: str
    summary: str
    sources: list[dict]
    missing: dict[str, str] = field(default_factory=dict)
    packages: dict[str, str] = field(default_factory=dict)
    available: SplitCount = field(default_factory=SplitCount)
    too_short: int = 0
    train: SplitCount = field(default_factory=SplitCount)
    heldout: SplitCount = field(default_factory=SplitCount)


@dataclass
class CorpusManifest:
    """A corpus build: its settings, one :class:`SliceReport` per slice built, the slices
    skipped (name -> reason) and, per output file, its documents, size on disk and
    xxh3-128 fingerprint (:func:`curate.core.hashing.file_hash`)."""

    curate_version: str
    python_version: str
    seed: int
    heldout_fraction: float
    max_bytes: int | None
    min_chars: int
    slices: dict[str, SliceReport] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    files: dict[str, dict] = field(default_factory=dict)
    license: str = LICENSE_NOTE

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n"
