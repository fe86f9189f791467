"""Built-in datasets, referred to as ``builtin:NAME``.

The text samples ship inside the package (see ``curate/data/quickstart/PROVENANCE.md``).
"""

from __future__ import annotations

from pathlib import Path

from curate.errors import CurateError

DATA_DIR = Path(__file__).parent / "data"

TEXT_SAMPLES = {
    "quickstart": "quickstart/docs.jsonl.gz",
    "quickstart-good": "quickstart/reference_good.jsonl.gz",
    "quickstart-bad": "quickstart/reference_bad.jsonl.gz",
}


def builtin_path(name: str) -> Path:
    """Path of a shipped built-in dataset file."""
    if name not in TEXT_SAMPLES:
        raise CurateError(f"unknown built-in dataset {name!r}; known: "
                          f"{', '.join(sorted(TEXT_SAMPLES))}")
    return DATA_DIR / TEXT_SAMPLES[name]
