"""File formats, size limits and where each batch of rows comes from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.core.errors import CurateError

MIB = 1024 * 1024
#: Documents whose text (UTF-8 bytes of the text column) is larger than this are an
#: error, or skipped with ``on_oversize="skip"``; 0 disables the check.
DEFAULT_MAX_DOC_BYTES = 4 * MIB
DEFAULT_BATCH_SIZE = 1000
#: What to do with a document over ``max_doc_bytes``.
ON_OVERSIZE = ("error", "skip")
#: Integers up to this magnitude are exact as float64.
EXACT_FLOAT_INT = 2 ** 53
#: Locations of skipped documents kept for the report.
SKIPPED_SHOWN = 5

FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".parquet",
                  ".csv", ".csv.gz", ".arrow")


def format_of(path: Path) -> str:
    name = path.name.lower()
    for suffix, fmt in ((".jsonl.gz", "jsonl"), (".json.gz", "jsonl"), (".jsonl", "jsonl"),
                        (".ndjson", "jsonl"), (".json", "jsonl"), (".parquet", "parquet"),
                        (".csv.gz", "csv"), (".csv", "csv"), (".arrow", "arrow")):
        if name.endswith(suffix):
            return fmt
    raise CurateError(f"{path}: unsupported file type; expected one of {', '.join(FILE_SUFFIXES)}")


def is_save_to_disk_folder(path: Path) -> bool:
    return (path / "dataset_info.json").exists() and (path / "state.json").exists()


def human_bytes(n: int) -> str:
    """``4194304`` -> ``"4.0 MiB"`` (binary units: 1 MiB = 1024 * 1024 bytes)."""
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"


def over_limit(size: int, limit: int) -> str:
    """``"5.2 MiB, over the 4.0 MiB limit"``, with exact bytes where the rounding hides it."""
    if human_bytes(size) == human_bytes(limit):
        return f"{size:,} bytes, over the {limit:,}-byte limit"
    return f"{human_bytes(size)}, over the {human_bytes(limit)} limit"


def one_line(text) -> str:
    return " ".join(str(text).split())


class Part:
    """A raw batch and where its rows come from: a file (or the in-memory data's kind)
    with the line of every row (JSONL) or the position of its first row in the file."""

    __slots__ = ("file", "table", "lines", "first_row")

    def __init__(self, file, table: pa.Table, lines: np.ndarray | None = None,
                 first_row: int = 0):
        self.file, self.table, self.lines, self.first_row = str(file), table, lines, first_row

    def at(self, row: int) -> str:
        """Where row ``row`` of this batch is: ``file.jsonl:4`` or ``file.parquet: row 3``."""
        if self.lines is not None:
            return f"{self.file}:{int(self.lines[row])}"
        return f"{self.file}: row {self.first_row + row}"

    @property
    def where(self) -> str:
        return self.at(0)
