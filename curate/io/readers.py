"""Readers, one per file format: each yields batches of at most ``batch_size`` rows
with the file and line (or row) of every row."""

from __future__ import annotations

import gzip
import json
import zlib
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.types import is_string
from curate.io.formats import MIB, Part, one_line

#: Bytes the CSV reader parses at a time (grown automatically for a longer row).
CSV_BLOCK_SIZE = 4 * MIB


def _jsonl_batches(path: Path, batch_size: int, columns, text_column: str, start: int = 0,
                   stop: int | None = None):
    """Parse JSONL line by line so that every error names its file and line.

    Rows are the non-blank lines; rows before ``start`` are skipped without being parsed
    and reading ends at row ``stop`` (None: the end of the file).
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    rows: list[dict] = []
    lines: list[int] = []
    number = -1  # of the row, counting the non-blank lines from 0
    try:
        with opener(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if raw.isspace():
                    continue
                number += 1
                if number < start:
                    continue
                if stop is not None and number >= stop:
                    break
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    raise CurateError(f"{path}:{lineno}: invalid UTF-8 byte at column "
                                      f"{exc.start + 1}; expected UTF-8 text") from None
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CurateError(_json_error(path, lineno, exc)) from None
                if not isinstance(row, dict):
                    raise CurateError(f"{path}:{lineno}: expected a JSON object, got "
                                      f"{value_kind(row)}")
                if columns is not None:
                    row = {k: row[k] for k in columns if k in row}
                rows.append(row)
                lines.append(lineno)
                if len(rows) == batch_size:
                    yield Part(path, _rows_to_table(rows, path, lines, text_column),
                                np.asarray(lines, dtype=np.int64))
                    rows, lines = [], []
    except (OSError, EOFError, zlib.error) as exc:
        raise CurateError(f"{path}: cannot read: {one_line(exc)}") from None
    if rows:
        yield Part(path, _rows_to_table(rows, path, lines, text_column),
                    np.asarray(lines, dtype=np.int64))


def _json_error(path: Path, lineno: int, exc: json.JSONDecodeError) -> str:
    msg = exc.msg
    if msg.endswith(" at"):  # "Unterminated string starting at", "Invalid control character at"
        hint = (" (tabs and newlines inside a string must be escaped as \\t and \\n)"
                if msg.startswith("Invalid control") else "")
        return f"{path}:{lineno}: malformed JSON: {msg} column {exc.colno}{hint}"
    if msg == "Extra data":
        msg = "Extra data after the JSON object (one object per line)"
    return f"{path}:{lineno}: malformed JSON at column {exc.colno}: {msg}"


def value_kind(value) -> str:
    """The JSON kind of a Python value, with an article: ``"an integer"``."""
    for types, name in ((type(None), "null"), (bool, "a boolean"), (int, "an integer"),
                        (float, "a number"), (str, "a string"), (list, "a list"),
                        (dict, "an object")):
        if isinstance(value, types):
            return name
    return f"a {type(value).__name__}"


def _kind_of_type(type_: pa.DataType) -> str:
    if is_string(type_):
        return "strings"
    for check, name in ((pa.types.is_boolean, "booleans"), (pa.types.is_integer, "integers"),
                        (pa.types.is_floating, "numbers"), (pa.types.is_struct, "objects"),
                        (pa.types.is_list, "lists"), (pa.types.is_null, "nulls")):
        if check(type_):
            return name
    return f"{type_} values"


def shorten(value, limit: int = 40) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _rows_to_table(rows: list[dict], path: Path, lines: list[int], text_column: str):
    """One column per key seen in any row (rows without it hold null)."""
    names = list(dict.fromkeys(k for row in rows for k in row))
    arrays = []
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            arrays.append(pa.array(values))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise CurateError(_type_clash(path, lines, name, values, text_column,
                                          exc)) from None
    return pa.Table.from_arrays(arrays, names=names)


def _type_clash(path, lines, name, values, text_column, exc) -> str:
    """Name the line whose value does not fit the column's type."""
    if name == text_column:
        row = next(i for i, v in enumerate(values) if v is not None and not isinstance(v, str))
        return (f"{path}:{lines[row]}: column {name!r} holds {value_kind(values[row])} "
                f"({shorten(values[row])}); expected a string (the text)")
    lo, hi = 1, len(values)  # the shortest prefix that fails ends at the culprit
    while lo < hi:
        mid = (lo + hi) // 2
        try:
            pa.array(values[:mid])
            lo = mid + 1
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            hi = mid
    row = lo - 1
    value = values[row]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2 ** 63:
        return (f"{path}:{lines[row]}: column {name!r} holds an integer too large for 64 "
                f"bits ({shorten(value)})")
    before = pa.array(values[:row]).type if row else None
    if isinstance(value, float) and before is not None and pa.types.is_integer(before):
        return (f"{path}:{lines[row]}: column {name!r} holds a fraction ({shorten(value)}) "
                "but earlier lines hold integers too large to be exact as floats")
    if before is None or pa.types.is_null(before):
        return f"{path}:{lines[row]}: column {name!r}: cannot store {shorten(value)}: " \
               f"{one_line(exc)}"
    return (f"{path}:{lines[row]}: column {name!r} holds {value_kind(value)} ({shorten(value)}), "
            f"but earlier lines hold {_kind_of_type(before)}; a column needs one type")


def _parquet_file(path: Path):
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CurateError(f"{path}: not a readable Parquet file: {one_line(exc)}") from None


def _parquet_batches(path: Path, batch_size: int, columns, text_column: str, start: int = 0,
                     stop: int | None = None):
    """Rows ``start`` to ``stop`` (None: the end); only the row groups holding them are read."""
    pf = _parquet_file(path)
    names = pf.schema_arrow.names
    cols = None if columns is None else [c for c in columns if c in names]
    meta = pf.metadata
    stop = meta.num_rows if stop is None else min(stop, meta.num_rows)
    groups, first, row = [], None, 0
    for g in range(meta.num_row_groups):
        size = meta.row_group(g).num_rows
        if row + size > start and row < stop:
            groups.append(g)
            first = row if first is None else first
        row += size
    if not groups:
        return
    row = first
    try:
        for batch in pf.iter_batches(batch_size=batch_size, row_groups=groups, columns=cols):
            lo, hi = max(start - row, 0), min(stop - row, batch.num_rows)
            if hi > lo:
                yield Part(path, pa.Table.from_batches([batch.slice(lo, hi - lo)]),
                           first_row=row + lo)
            row += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise CurateError(f"{path}: cannot read row {row} on: {one_line(exc)}") from None


def _csv_batches(path: Path, batch_size: int, columns, text_column: str, start: int = 0,
                 stop: int | None = None):
    """CSV with quoted newlines inside values (as pandas ``to_csv`` writes multi-line
    text); the text column is always read as strings. A row longer than the block the
    reader parses at a time makes it start again with a larger block. Rows ``start`` to
    ``stop`` (None: the end)."""
    if path.stat().st_size == 0:
        return
    block, done = CSV_BLOCK_SIZE, start
    while True:
        try:
            for part in _csv_parts(path, batch_size, columns, text_column, block, done):
                if stop is not None and part.first_row + part.table.num_rows > stop:
                    part.table = part.table.slice(0, max(stop - part.first_row, 0))
                if part.table.num_rows:
                    done += part.table.num_rows
                    yield part
                if stop is not None and done >= stop:
                    return
            return
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc) or block >= 1 << 30:
                raise CurateError(f"{path}: malformed CSV: {one_line(exc)}") from None
            block *= 4
        except UnicodeDecodeError as exc:
            raise CurateError(f"{path}: malformed CSV: {one_line(exc)}") from None


def _csv_parts(path: Path, batch_size: int, columns, text_column: str, block: int,
               skip: int):
    import pyarrow.csv as pcsv

    reader = pcsv.open_csv(
        path, read_options=pcsv.ReadOptions(block_size=block),
        parse_options=pcsv.ParseOptions(newlines_in_values=True),
        convert_options=pcsv.ConvertOptions(column_types={text_column: pa.string()}))
    names = reader.schema.names
    pending: list[pa.RecordBatch] = []
    row = 0  # rows of the file read so far
    for batch in reader:
        if row + batch.num_rows <= skip:  # yielded before a restart
            row += batch.num_rows
            continue
        if row < skip:
            batch = batch.slice(skip - row)
            row = skip
        if columns is not None:
            batch = batch.select([c for c in columns if c in names])
        pending.append(batch)
        table = pa.Table.from_batches(pending)
        while table.num_rows >= batch_size:
            yield Part(path, table.slice(0, batch_size), first_row=row)
            row += batch_size
            table = table.slice(batch_size)
        pending = table.to_batches()
    if pending and sum(b.num_rows for b in pending):
        yield Part(path, pa.Table.from_batches(pending), first_row=row)


def _arrow_table(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        try:
            return pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            return pa.ipc.open_file(source).read_all()


def _arrow_batches(path: Path, batch_size: int, columns, text_column: str, start: int = 0,
                   stop: int | None = None):
    table = _arrow_table(path)
    if columns is not None:
        table = table.select([c for c in columns if c in table.column_names])
    stop = table.num_rows if stop is None else min(stop, table.num_rows)
    for first in range(start, stop, batch_size):
        yield Part(path, table.slice(first, min(batch_size, stop - first)), first_row=first)


#: Format -> reader ``(path, batch_size, columns, text_column, start=0, stop=None)``
#: yielding :class:`Part` batches of the file's rows ``start`` to ``stop``.
READERS = {"jsonl": _jsonl_batches, "parquet": _parquet_batches, "csv": _csv_batches,
           "arrow": _arrow_batches}


def count_rows(path: Path, fmt: str) -> int:
    """Rows of a data file as its reader counts them (JSONL: the non-blank lines).

    Parquet reads only the footer; JSONL and CSV read the file once, JSONL without
    parsing it.
    """
    if fmt == "parquet":
        return _parquet_file(path).metadata.num_rows
    if fmt == "arrow":
        return _arrow_table(path).num_rows
    if fmt == "jsonl":
        opener = gzip.open if path.name.lower().endswith(".gz") else open
        try:
            with opener(path, "rb") as fh:
                return sum(1 for raw in fh if not raw.isspace())
        except (OSError, EOFError, zlib.error) as exc:
            raise CurateError(f"{path}: cannot read: {one_line(exc)}") from None
    return sum(part.table.num_rows for part in _csv_batches(path, 1 << 16, [], ""))
