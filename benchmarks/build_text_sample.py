"""Build the text-corpus sample shipped in ``curate/data/text_corpus/``.

Runs :func:`curate.corpus.build_corpus` over every slice (``prose``, ``multilingual``,
``man``, ``changelog``, ``copyright``, ``code``) with a cap of ``--max-bytes`` of text
per slice (train and held out together), a 10% held-out share and ``--seed``, and
``strict=True``: every Debian package the slices read must be installed (run
``benchmarks/install_corpora.sh`` first). It writes ``train.parquet``,
``heldout.parquet`` and ``manifest.json`` (package versions, licences, counts and
file fingerprints); the sample is read as ``builtin:text_corpus`` and
``builtin:text_corpus:split=heldout``. Output is deterministic for the same installed
packages and seed.

Usage::

    python benchmarks/build_text_sample.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

from curate.corpus import SLICES, build_corpus

REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "curate" / "data" / "text_corpus"
DEFAULT_MAX_BYTES = 200_000
DEFAULT_SEED = 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES,
                        help="cap per slice, in bytes of UTF-8 text")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)

    manifest = build_corpus(args.out_dir, slices=tuple(SLICES), max_bytes=args.max_bytes,
                            heldout_fraction=0.1, seed=args.seed, strict=True)
    for name, report in manifest.slices.items():
        print(f"{name}: train {report.train.documents} docs / {report.train.bytes:,} bytes, "
              f"heldout {report.heldout.documents} / {report.heldout.bytes:,}; "
              f"{len(report.packages)} packages")
    for name, entry in manifest.files.items():
        print(f"{name}: {entry['documents']} docs, {entry['size']:,} bytes on disk")


if __name__ == "__main__":
    main()
