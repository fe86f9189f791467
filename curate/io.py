"""Reading datasets in bounded batches, and writing them atomically.

A :class:`Source` reads JSONL (also gzipped), Parquet, CSV, a ``save_to_disk``
folder, a folder or glob of such shards, a built-in name (``builtin:NAME``), or an
in-memory ``datasets.Dataset`` / pandas DataFrame / ``pyarrow.Table``. It yields
``pyarrow.Table`` batches that always carry the id column, so memory stays
bounded whatever the corpus size.

Shards need not agree on column types when the types are compatible: ``string`` and
``large_string`` become ``string``, integers of any width ``int64``, integers beside
floats ``float64`` (when every integer is exact as a float), an all-null column takes
the type the other shards give it, and a column missing from a shard is null there.
Ids are always ``int64`` or ``string`` when read from files. Types that cannot be
combined (integer ids in one file, string ids in another) are an error naming both
files and the column.

Every user error (malformed JSON, invalid UTF-8, a missing column, a value of the
wrong type, an empty file, a duplicate id, an oversized document) is a
:class:`CurateError` naming the file, the line (JSONL; rows of other formats count
from 0) and what was expected.

The size limit (``max_doc_bytes``) is one rule for every format: a document's size is
the UTF-8 bytes of its text: the text column (``text_column``, default ``text``) and,
while scoring, each string column a scorer reads (``required_columns``). Other columns
do not count, and data without text has no limit. ``on_oversize="skip"`` leaves such
documents out instead of stopping; :attr:`Source.skipped` counts them (ids stay the
documents' positions in the source either way).
"""

from __future__ import annotations

import bisect
import contextlib
import glob as globlib
import gzip
import json
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.core.cache import atomic_path
from curate.core.errors import CurateError
from curate.core.types import canonical_id_type, family, is_string, unify_types

MIB = 1024 * 1024
#: Documents whose text (UTF-8 bytes of the text column) is larger than this are an
#: error, or skipped with ``on_oversize="skip"``; 0 disables the check.
DEFAULT_MAX_DOC_BYTES = 4 * MIB
DEFAULT_BATCH_SIZE = 1000
#: What to do with a document over ``max_doc_bytes``.
ON_OVERSIZE = ("error", "skip")
#: Bytes the CSV reader parses at a time (grown automatically for a longer row).
CSV_BLOCK_SIZE = 4 * MIB
#: Integers up to this magnitude are exact as float64.
_EXACT_FLOAT_INT = 2 ** 53
#: Locations of skipped documents kept for the report.
_SKIPPED_SHOWN = 5

_FILE_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".ndjson", ".parquet",
                  ".csv", ".csv.gz", ".arrow")


def _format_of(path: Path) -> str:
    name = path.name.lower()
    for suffix, fmt in ((".jsonl.gz", "jsonl"), (".json.gz", "jsonl"), (".jsonl", "jsonl"),
                        (".ndjson", "jsonl"), (".json", "jsonl"), (".parquet", "parquet"),
                        (".csv.gz", "csv"), (".csv", "csv"), (".arrow", "arrow")):
        if name.endswith(suffix):
            return fmt
    raise CurateError(f"{path}: unsupported file type; expected one of {', '.join(_FILE_SUFFIXES)}")


def _is_save_to_disk_folder(path: Path) -> bool:
    return (path / "dataset_info.json").exists() and (path / "state.json").exists()


def human_bytes(n: int) -> str:
    """``4194304`` -> ``"4.0 MiB"`` (binary units: 1 MiB = 1024 * 1024 bytes)."""
    if n >= MIB:
        return f"{n / MIB:.1f} MiB"
    if n >= 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n} bytes"


def _over_limit(size: int, limit: int) -> str:
    """``"5.2 MiB, over the 4.0 MiB limit"``, with exact bytes where the rounding hides it."""
    if human_bytes(size) == human_bytes(limit):
        return f"{size:,} bytes, over the {limit:,}-byte limit"
    return f"{human_bytes(size)}, over the {human_bytes(limit)} limit"


def _one_line(text) -> str:
    return " ".join(str(text).split())


class _Part:
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


class Source:
    """A dataset read in batches, with a stable id column.

    Args:
        data: a path (file, folder, glob), ``builtin:NAME``, or an in-memory
            ``datasets.Dataset``, pandas DataFrame or ``pyarrow.Table``.
        id_column: name of the id column (default ``"id"``). When the data has no
            such column, ids are the 0-based position in the source
            (``ids_assigned`` is then True and the manifest says so).
        text_column: the text column: the size limit measures it (and every string
            column in ``required_columns``) and, when it is required, it must hold
            strings.
        required_columns: columns that must exist (e.g. the text column) in every
            file; a missing one is an error listing the columns that do exist.
        max_doc_bytes: per-document size limit on the text column (see
            ``DEFAULT_MAX_DOC_BYTES``); 0 for none.
        on_oversize: ``"error"`` (default) stops at the first document over the
            limit; ``"skip"`` leaves it out and counts it in :attr:`skipped`.
        check_unique_ids: raise on a repeated id (default True).
        report: called with :meth:`skipped_report` at the end of every pass that
            skipped documents (e.g. ``click.echo``); None to stay quiet.

    After a pass over the data, :attr:`skipped` is the number of documents skipped for
    their size and :attr:`skipped_at` the locations of the first few.
    """

    def __init__(self, data, *, id_column: str = "id", text_column: str = "text",
                 required_columns=(), max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
                 on_oversize: str = "error", check_unique_ids: bool = True, report=None):
        if on_oversize not in ON_OVERSIZE:
            raise CurateError(f"on_oversize must be one of {', '.join(ON_OVERSIZE)}, got "
                              f"{on_oversize!r}")
        if isinstance(max_doc_bytes, bool) or not isinstance(max_doc_bytes, int) or \
                max_doc_bytes < 0:
            raise CurateError(f"max_doc_bytes must be a whole number of bytes >= 0 (0: no "
                              f"limit), got {max_doc_bytes!r}")
        self.id_column = id_column
        self.text_column = text_column
        self.required_columns = tuple(required_columns)
        self.max_doc_bytes = max_doc_bytes
        self.on_oversize = on_oversize
        self.check_unique_ids = check_unique_ids
        self.report = report
        self.ids_assigned: bool | None = None
        self.skipped = 0
        self.skipped_at: list[str] = []
        self.in_memory: pa.Table | None = None
        self.kind = "path"
        self.files: list[Path] = []
        self.spec = data if isinstance(data, str) else type(data).__name__
        if isinstance(data, (str, os.PathLike)):
            self._resolve_path(str(data))
        else:
            self.in_memory, self.kind = to_arrow(data)

    # -- resolving ---------------------------------------------------------------
    def _resolve_path(self, spec: str) -> None:
        if spec.startswith("builtin:"):
            from curate.builtin import resolve

            found = resolve(spec[len("builtin:"):])
            if isinstance(found, pa.Table):
                self.in_memory = found
                return
            spec = str(found)
        path = Path(spec)
        if any(ch in spec for ch in "*?["):
            matches = sorted(Path(p) for p in globlib.glob(spec, recursive=True))
            self.files = [p for p in matches if p.is_file()]
            if not self.files:
                raise CurateError(f"{spec}: no files match this pattern")
        elif path.is_dir():
            if _is_save_to_disk_folder(path):
                import datasets

                self.in_memory = datasets.load_from_disk(str(path)).data.table
                self.files = sorted(path.glob("*.arrow"))
                return
            self.files = sorted(p for p in path.rglob("*") if p.is_file() and
                                p.name.lower().endswith(_FILE_SUFFIXES))
            if not self.files:
                raise CurateError(f"{path}: folder holds no data files "
                                  f"({', '.join(_FILE_SUFFIXES)})")
        elif path.is_file():
            self.files = [path]
        else:
            raise CurateError(f"{spec}: no such file or folder")
        for f in self.files:
            _format_of(f)

    # -- identity ----------------------------------------------------------------
    def fingerprint(self) -> str:
        """A content hash of the source (xxh3-128 over file bytes or Arrow buffers)."""
        import xxhash

        h = xxhash.xxh3_128()
        if self.files:
            for f in self.files:
                h.update(f.name.encode())
                with open(f, "rb") as fh:
                    for block in iter(lambda fh=fh: fh.read(1 << 22), b""):
                        h.update(block)
        else:
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, self.in_memory.schema) as writer:
                writer.write_table(self.in_memory)
            h.update(sink.getvalue())
        return h.hexdigest()

    def describe(self) -> dict:
        """What was read, for manifests and cards; ``skipped`` counts the documents the
        last pass skipped for their size (``on_oversize="skip"``)."""
        return {"source": self.spec, "files": [str(f) for f in self.files],
                "id_column": self.id_column, "ids_assigned": self.ids_assigned,
                "text_column": self.text_column, "max_doc_bytes": self.max_doc_bytes,
                "on_oversize": self.on_oversize, "skipped": self.skipped}

    def skipped_report(self) -> str:
        """One line on the documents skipped for their size ("" when none were)."""
        if not self.skipped:
            return ""
        noun = "document" if self.skipped == 1 else "documents"
        shown = ", ".join(self.skipped_at)
        more = ", ..." if self.skipped > len(self.skipped_at) else ""
        return (f"skipped {self.skipped} {noun} whose text is over the "
                f"{human_bytes(self.max_doc_bytes)} limit (--max-doc-bytes): {shown}{more}")

    # -- reading -----------------------------------------------------------------
    def iter_batches(self, batch_size: int = DEFAULT_BATCH_SIZE,
                     columns: list[str] | None = None) -> Iterator[pa.Table]:
        """Yield tables of at most ``batch_size`` rows, id column first.

        ``columns`` restricts the columns read (the id column is always added). Every
        batch has the columns of the batches before it, with the same types, except that
        a type may widen (null to a type, integer to float); :func:`concat_tables` and
        :class:`TableWriter` bring earlier batches up to it.
        """
        want = None if columns is None else list(dict.fromkeys([self.id_column, *columns]))
        schema = _StreamSchema(self.id_column, canonical_ids=self.in_memory is None)
        if self.in_memory is None and len(self.files) > 1:
            schema.add_file_schemas(self.files, want)  # a clash is found before any work
        self.skipped, self.skipped_at = 0, []
        seen_ids: dict = {}
        self._segments: list[tuple[int, _Part]] = []
        position = 0
        empty = True
        current = None
        for part in self._raw_batches(batch_size, want):
            table = part.table
            raw_rows = table.num_rows
            if raw_rows == 0:
                continue
            if part.file != current:
                current = part.file
                self._check_file(table, part, first=empty)
            empty = False
            table = self._with_ids(table, position, part)
            table = schema.conform(table, part)
            self._check_text(table, part)
            keep = self._oversize(table, part)
            if keep is not None:
                table = table.filter(pa.array(keep))
            if self.check_unique_ids:
                self._check_unique(table, seen_ids, position, part,
                                   None if keep is None else np.flatnonzero(keep))
            position += raw_rows
            if table.num_rows:
                yield table
        if empty:
            origin = self.files[0] if len(self.files) == 1 else self.spec
            raise CurateError(f"{origin}: dataset is empty: expected at least one example")
        if self.skipped == position:
            raise CurateError(f"{self.spec}: no examples left: {self.skipped_report()}")
        if self.skipped and self.report is not None:
            self.report(self.skipped_report())

    def read_all(self, columns: list[str] | None = None) -> pa.Table:
        return concat_tables(list(self.iter_batches(columns=columns)))

    def _check_file(self, table: pa.Table, part: _Part, first: bool) -> None:
        """The first batch of every file has the required columns, and ids if the
        first file had them."""
        missing = [c for c in self.required_columns if c not in table.column_names]
        if missing:
            raise CurateError(f"{part.file}: column {missing[0]!r} not found; columns are: "
                              f"{', '.join(self._columns_of(part))}")
        has_ids = self.id_column in table.column_names
        if first:
            self.ids_assigned = not has_ids
            self._first_file = part.file
        elif has_ids == self.ids_assigned:
            here, there = ("has", "has none") if has_ids else ("has none", "has one")
            raise CurateError(f"{part.file}: {here} {self.id_column!r} column but "
                              f"{self._first_file} {there}: give every file ids, or none "
                              "(then ids are positions)")

    def _columns_of(self, part: _Part) -> list[str]:
        """Every column of the file ``part`` comes from (the batch may hold only the
        requested ones)."""
        if self.in_memory is not None:
            return self.in_memory.column_names
        path = Path(part.file)
        reader = _READERS[_format_of(path)]
        first = next(iter(reader(path, 1, None, self.text_column)), None)
        return first.table.column_names if first is not None else part.table.column_names

    def _with_ids(self, table: pa.Table, position: int, part: _Part) -> pa.Table:
        if self.ids_assigned:
            ids = pa.array(range(position, position + table.num_rows), pa.int64())
            return table.add_column(0, self.id_column, ids)
        ids = table.column(self.id_column)
        if ids.null_count:
            import pyarrow.compute as pc

            row = pc.index(pc.is_null(ids), True).as_py()
            raise CurateError(f"{part.at(row)}: example has no id (null or missing); every "
                              f"example needs an id (or drop the {self.id_column!r} column to "
                              "use positions)")
        if table.column_names[0] != self.id_column:
            table = table.select([self.id_column] +
                                 [c for c in table.column_names if c != self.id_column])
        return table

    def _check_text(self, table: pa.Table, part: _Part) -> None:
        """A required text column holds strings (or nulls)."""
        name = self.text_column
        if name not in self.required_columns or name not in table.column_names:
            return
        col = table.column(name)
        if is_string(col.type) or pa.types.is_null(col.type):
            return
        import pyarrow.compute as pc

        row = pc.index(pc.is_valid(col), True).as_py()
        value = col[row].as_py()
        raise CurateError(f"{part.at(row)}: column {name!r} holds {_kind(value)} "
                          f"({_short(value)}); expected a string (the text)")

    def _oversize(self, table: pa.Table, part: _Part) -> np.ndarray | None:
        """None when every document fits; else raise (``on_oversize="error"``) or return
        the mask of the rows to keep, counting the others as skipped."""
        if not self.max_doc_bytes:
            return None
        import pyarrow.compute as pc

        over = None
        for name in dict.fromkeys([self.text_column, *self.required_columns]):
            if name not in table.column_names or not is_string(table.column(name).type):
                continue
            lengths = pc.binary_length(table.column(name))
            if (pc.max(lengths).as_py() or 0) <= self.max_doc_bytes:
                continue
            big = pc.fill_null(pc.greater(lengths, self.max_doc_bytes), False)
            if self.on_oversize == "error":
                row = pc.index(big, True).as_py()
                ident = table.column(self.id_column)[row].as_py()
                raise CurateError(
                    f"{part.at(row)}: example id={ident!r}: column {name!r} is "
                    f"{_over_limit(lengths[row].as_py(), self.max_doc_bytes)} (raise it with "
                    "--max-doc-bytes, 0 for none, or leave such documents out with "
                    "--on-oversize skip)")
            over = big if over is None else pc.or_(over, big)
        if over is None:
            return None
        rows = np.flatnonzero(over.to_numpy(zero_copy_only=False))
        room = _SKIPPED_SHOWN - len(self.skipped_at)
        self.skipped_at += [part.at(int(r)) for r in rows[:max(room, 0)]]
        self.skipped += len(rows)
        keep = np.ones(table.num_rows, dtype=bool)
        keep[rows] = False
        return keep

    def _check_unique(self, table: pa.Table, seen: dict, position: int, part: _Part,
                      rows: np.ndarray | None) -> None:
        """``rows``: the raw row of each row of ``table`` (None: the same)."""
        self._segments.append((position, part))
        for offset, ident in enumerate(table.column(self.id_column).to_pylist()):
            raw = offset if rows is None else int(rows[offset])
            first = seen.setdefault(ident, position + raw)
            if first != position + raw:
                raise CurateError(f"{part.at(raw)}: duplicate id {ident!r} (first seen at "
                                  f"{self._locate(first)}); ids must be unique")

    def _locate(self, position: int) -> str:
        """Where the example at ``position`` (counting every example read) came from."""
        starts = [start for start, _ in self._segments]
        start, part = self._segments[bisect.bisect_right(starts, position) - 1]
        return part.at(position - start)

    def _raw_batches(self, batch_size: int, want: list[str] | None) -> Iterator[_Part]:
        if self.in_memory is not None:
            table = self.in_memory
            if want is not None:
                table = table.select([c for c in want if c in table.column_names])
            for start in range(0, table.num_rows, batch_size):
                yield _Part(self.spec, table.slice(start, batch_size), first_row=start)
            return
        for path in self.files:
            reader = _READERS[_format_of(path)]
            for part in reader(path, batch_size, want, self.text_column):
                # Raw batches are kept in a list by _check_unique: keep only the rows'
                # locations, not their data.
                yield part
                part.table = None


# -- combining shards -----------------------------------------------------------------
def _int_extent(col) -> int:
    """Largest magnitude of an integer column (0 when all null)."""
    import pyarrow.compute as pc

    bounds = pc.min_max(col).as_py()
    if bounds["min"] is None:
        return 0
    return max(abs(bounds["min"]), abs(bounds["max"]))


def cast_column(col, target: pa.DataType, where: str, name: str):
    """``col`` (Array or ChunkedArray) as ``target``; a CurateError when values would
    change (integers too large for ``int64`` or to be exact as floats)."""
    if col.type == target:
        return col
    if pa.types.is_integer(col.type) and pa.types.is_floating(target) and \
            _int_extent(col) > _EXACT_FLOAT_INT:
        raise CurateError(f"{where}: column {name!r} holds integers too large to be exact "
                          f"as {target}, which other rows need (they hold fractions)")
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    try:
        return pa.chunked_array([c for chunk in chunks for c in _cast_chunk(chunk, target)],
                                type=target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise CurateError(f"{where}: column {name!r}: cannot convert {col.type} values to "
                          f"{target} without loss: {_one_line(exc)}") from None


def _cast_chunk(chunk: pa.Array, target: pa.DataType) -> list[pa.Array]:
    try:
        return [chunk.cast(target)]
    except pa.ArrowInvalid:
        # large_string -> string overflows 32-bit offsets past 2 GiB: cast in halves.
        if len(chunk) < 2 or family(target) not in ("string", "binary"):
            raise
        half = len(chunk) // 2
        return [*_cast_chunk(chunk.slice(0, half), target),
                *_cast_chunk(chunk.slice(half), target)]


class _StreamSchema:
    """The one schema of a stream of batches from several shards.

    A column keeps the type it first had; a later batch is cast to it when that loses
    nothing, and the column widens when the later type is the wider one (null -> a type,
    integer -> float, narrower -> wider integers), which readers that collect the batches
    apply to the earlier ones. Other differences are an error naming both places.
    """

    def __init__(self, id_column: str, canonical_ids: bool):
        self.id_column = id_column
        self.canonical_ids = canonical_ids
        self.types: dict[str, pa.DataType] = {}
        self.origin: dict[str, str] = {}
        self.extent: dict[str, int] = {}  # largest |integer| seen, per integer column

    def add_file_schemas(self, files: list[Path], want: list[str] | None) -> None:
        """Take the types of the files that declare them (Parquet, Arrow) up front."""
        for path in files:
            fmt = _format_of(path)
            if fmt not in ("parquet", "arrow"):
                continue
            for field in _file_schema(path, fmt):
                if want is None or field.name in want:
                    self._merge(field.name, field.type, str(path))

    def _merge(self, name: str, type_: pa.DataType, where: str) -> pa.DataType:
        """Record that column ``name`` has ``type_`` at ``where``; return its type in the
        stream."""
        is_id = name == self.id_column
        if is_id and self.canonical_ids:
            type_ = canonical_id_type(type_)
        seen = self.types.get(name)
        if seen is None:
            self.types[name], self.origin[name] = type_, where
            return type_
        if seen == type_:
            return seen
        target = unify_types(seen, type_, ids=is_id)
        if target is None:
            what = "ids" if is_id else "values"
            raise CurateError(f"{where}: column {name!r} holds {type_} {what}, but "
                              f"{self.origin[name]} holds {seen} {what}: the shards cannot be "
                              f"combined; convert one so that {name!r} has one type")
        if target != seen:
            if pa.types.is_integer(seen) and pa.types.is_floating(target) and \
                    self.extent.get(name, 0) > _EXACT_FLOAT_INT:
                raise CurateError(f"{where}: column {name!r} holds {type_} values, but "
                                  f"{self.origin[name]} holds integers too large to be exact "
                                  "as floats")
            self.types[name], self.origin[name] = target, where
        return target

    def conform(self, table: pa.Table, part: _Part) -> pa.Table:
        names, columns = [], []
        for name in table.column_names:
            col = table.column(name)
            seen = self.types.get(name)
            where = part.where if seen in (None, col.type) else _first_value_at(col, part)
            target = self._merge(name, col.type, where)
            col = cast_column(col, target, where, name)
            if pa.types.is_integer(target) and col.null_count < len(col):
                self.extent[name] = max(self.extent.get(name, 0), _int_extent(col))
            names.append(name)
            columns.append(col)
        have = set(names)
        for name, type_ in self.types.items():
            if name not in have:  # known from another shard, absent here: nulls
                names.append(name)
                columns.append(pa.nulls(table.num_rows, type_))
        # The id column first, then the stream's order (file schemas, then first sight).
        rank = {name: i for i, name in enumerate(self.types)}
        order = sorted(range(len(names)), key=lambda i: (names[i] != self.id_column,
                                                         rank[names[i]]))
        out = pa.table([columns[i] for i in order], names=[names[i] for i in order])
        # Schema metadata (e.g. a built-in dataset's example shape) travels with the rows.
        return out.replace_schema_metadata(table.schema.metadata)


def _first_value_at(col, part: _Part) -> str:
    """Where the first non-null value of ``col`` (a column of ``part``) is."""
    import pyarrow.compute as pc

    row = pc.index(pc.is_valid(col), True).as_py() if col.null_count < len(col) else -1
    return part.at(max(row, 0))


def unify_schemas(a: pa.Schema, b: pa.Schema, where: str) -> pa.Schema:
    """The schema both ``a`` and ``b`` convert to (see :func:`unify_types`): ``a``'s
    columns, then those only ``b`` has."""
    fields = []
    for field in a:
        type_ = field.type
        if field.name in b.names:
            other = b.field(field.name).type
            type_ = unify_types(type_, other)
            if type_ is None:
                raise CurateError(f"{where}: column {field.name!r} changes type from "
                                  f"{field.type} to {other} between rows")
        fields.append(pa.field(field.name, type_))
    fields += [pa.field(f.name, f.type) for f in b if f.name not in a.names]
    return pa.schema(fields)


def conform_table(table: pa.Table, schema: pa.Schema, where: str) -> pa.Table:
    """``table`` with exactly ``schema``'s columns, in order (absent ones null)."""
    cols = []
    for field in schema:
        if field.name in table.column_names:
            cols.append(cast_column(table.column(field.name), field.type, where, field.name))
        else:
            cols.append(pa.nulls(table.num_rows, field.type))
    return pa.Table.from_arrays(cols, schema=schema)


def concat_tables(tables: list[pa.Table], where: str = "data") -> pa.Table:
    """Concatenate tables whose schemas :func:`unify_schemas` can combine."""
    if not tables:
        raise CurateError(f"{where}: nothing to concatenate")
    schema = tables[0].schema
    for table in tables[1:]:
        if not table.schema.equals(schema):
            schema = unify_schemas(schema, table.schema, where)
    return pa.concat_tables([t if t.schema.equals(schema) else conform_table(t, schema, where)
                             for t in tables])


def _file_schema(path: Path, fmt: str) -> pa.Schema:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return pq.read_schema(path)
        with pa.memory_map(str(path)) as source:
            try:
                return pa.ipc.open_stream(source).schema
            except pa.ArrowInvalid:
                return pa.ipc.open_file(source).schema
    except (pa.ArrowInvalid, OSError) as exc:
        raise CurateError(f"{path}: not a readable {fmt} file: {_one_line(exc)}") from None


# -- readers: each yields _Part batches of at most batch_size rows ----------------------
def _jsonl_batches(path: Path, batch_size: int, columns, text_column: str):
    """Parse JSONL line by line so that every error names its file and line."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    rows: list[dict] = []
    lines: list[int] = []
    try:
        with opener(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                try:
                    line = raw.decode("utf-8").rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    raise CurateError(f"{path}:{lineno}: invalid UTF-8 byte at column "
                                      f"{exc.start + 1}; expected UTF-8 text") from None
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise CurateError(_json_error(path, lineno, exc)) from None
                if not isinstance(row, dict):
                    raise CurateError(f"{path}:{lineno}: expected a JSON object, got "
                                      f"{_kind(row)}")
                if columns is not None:
                    row = {k: row[k] for k in columns if k in row}
                rows.append(row)
                lines.append(lineno)
                if len(rows) == batch_size:
                    yield _Part(path, _rows_to_table(rows, path, lines, text_column),
                                np.asarray(lines, dtype=np.int64))
                    rows, lines = [], []
    except (OSError, EOFError, zlib.error) as exc:
        raise CurateError(f"{path}: cannot read: {_one_line(exc)}") from None
    if rows:
        yield _Part(path, _rows_to_table(rows, path, lines, text_column),
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


def _kind(value) -> str:
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


def _short(value, limit: int = 40) -> str:
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
        return (f"{path}:{lines[row]}: column {name!r} holds {_kind(values[row])} "
                f"({_short(values[row])}); expected a string (the text)")
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
                f"bits ({_short(value)})")
    before = pa.array(values[:row]).type if row else None
    if isinstance(value, float) and before is not None and pa.types.is_integer(before):
        return (f"{path}:{lines[row]}: column {name!r} holds a fraction ({_short(value)}) "
                "but earlier lines hold integers too large to be exact as floats")
    if before is None or pa.types.is_null(before):
        return f"{path}:{lines[row]}: column {name!r}: cannot store {_short(value)}: " \
               f"{_one_line(exc)}"
    return (f"{path}:{lines[row]}: column {name!r} holds {_kind(value)} ({_short(value)}), "
            f"but earlier lines hold {_kind_of_type(before)}; a column needs one type")


def _parquet_batches(path: Path, batch_size: int, columns, text_column: str):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CurateError(f"{path}: not a readable Parquet file: {_one_line(exc)}") from None
    names = pf.schema_arrow.names
    cols = None if columns is None else [c for c in columns if c in names]
    row = 0
    try:
        for batch in pf.iter_batches(batch_size=batch_size, columns=cols):
            yield _Part(path, pa.Table.from_batches([batch]), first_row=row)
            row += batch.num_rows
    except (pa.ArrowInvalid, OSError) as exc:
        raise CurateError(f"{path}: cannot read row {row} on: {_one_line(exc)}") from None


def _csv_batches(path: Path, batch_size: int, columns, text_column: str):
    """CSV with quoted newlines inside values (as pandas ``to_csv`` writes multi-line
    text); the text column is always read as strings. A row longer than the block the
    reader parses at a time makes it start again with a larger block."""
    if path.stat().st_size == 0:
        return
    block, done = CSV_BLOCK_SIZE, 0
    while True:
        try:
            for part in _csv_parts(path, batch_size, columns, text_column, block, done):
                done += part.table.num_rows
                yield part
            return
        except pa.ArrowInvalid as exc:
            if "straddl" not in str(exc) or block >= 1 << 30:
                raise CurateError(f"{path}: malformed CSV: {_one_line(exc)}") from None
            block *= 4
        except UnicodeDecodeError as exc:
            raise CurateError(f"{path}: malformed CSV: {_one_line(exc)}") from None


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
            yield _Part(path, table.slice(0, batch_size), first_row=row)
            row += batch_size
            table = table.slice(batch_size)
        pending = table.to_batches()
    if pending and sum(b.num_rows for b in pending):
        yield _Part(path, pa.Table.from_batches(pending), first_row=row)


def _arrow_batches(path: Path, batch_size: int, columns, text_column: str):
    with pa.memory_map(str(path)) as source:
        try:
            table = pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            table = pa.ipc.open_file(source).read_all()
    if columns is not None:
        table = table.select([c for c in columns if c in table.column_names])
    for start in range(0, table.num_rows, batch_size):
        yield _Part(path, table.slice(start, batch_size), first_row=start)


_READERS = {"jsonl": _jsonl_batches, "parquet": _parquet_batches, "csv": _csv_batches,
            "arrow": _arrow_batches}


# -- in-memory kinds ------------------------------------------------------------------
def to_arrow(data) -> tuple[pa.Table, str]:
    """Convert an in-memory dataset to Arrow; also return its kind for :func:`like`."""
    if isinstance(data, pa.Table):
        return data, "arrow"
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data]), "arrow"
    try:
        import datasets

        if isinstance(data, datasets.Dataset):
            table = data.data.table
            if data._indices is not None:  # a select()/shuffle() view: materialise its rows
                table = data.flatten_indices().data.table
            return table, "datasets"
    except ImportError:  # pragma: no cover - datasets is a required dependency
        pass
    if type(data).__module__.startswith("pandas"):
        return _from_pandas(data), "pandas"
    raise CurateError(f"cannot read data of type {type(data).__name__}; expected a path, "
                      "'builtin:NAME', a datasets.Dataset, a pandas DataFrame or a pyarrow.Table")


def _from_pandas(frame) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        for name in frame.columns:  # name the column whose values have no one type
            try:
                pa.array(frame[name], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise CurateError(f"DataFrame column {name!r} mixes value types "
                                  f"({_one_line(exc)}); give every column one type") from None
        raise


def like(table: pa.Table, kind: str):
    """Hand a table back as the kind the user passed in (``arrow``, ``datasets``, ``pandas``)."""
    if kind == "datasets":
        import datasets

        return datasets.Dataset(table)
    if kind == "pandas":
        return table.to_pandas()
    return table


# -- writing --------------------------------------------------------------------------
def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_figure(path: str | Path, figure) -> None:
    """Save a matplotlib ``figure`` as PNG at ``path`` atomically, without a software tag
    (so that the same figure gives the same bytes)."""
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", metadata={"Software": None})


class TableWriter:
    """Write tables batch by batch to JSONL(.gz), Parquet or CSV, atomically.

    Use as a context manager; the file appears under its final name only when the
    block exits without an exception. Later batches are cast to the first batch's
    schema; when one needs a wider schema (a column that was all null, integers that
    become floats, a new column), the rows written so far are rewritten to it.
    ``allow_arrow`` also allows an Arrow IPC stream (``.arrow``: curate's cache format).
    """

    def __init__(self, path: str | Path, *, allow_arrow: bool = False):
        self.path = Path(path)
        self.format = _format_of(self.path)
        if self.format == "arrow" and not allow_arrow:
            raise CurateError(f"{self.path}: writing .arrow files is not supported; use "
                              ".parquet, .jsonl or .csv")
        if self.format == "csv" and self.path.name.lower().endswith(".gz"):
            raise CurateError(f"{self.path}: writing gzipped CSV is not supported; use .csv, "
                              ".jsonl.gz or .parquet")
        self._atomic = atomic_path(self.path)
        self._writer = None
        self._schema: pa.Schema | None = None
        self.rows = 0

    def __enter__(self) -> TableWriter:
        self._tmp = self._atomic.__enter__()
        if self.format == "jsonl":
            gz = self.path.name.lower().endswith(".gz")
            # No name and mtime=0 keep gzip output byte-identical across runs.
            raw = open(self._tmp, "wb")  # closed in __exit__
            self._writer = (gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0)
                            if gz else raw)
            self._raw = raw
        return self

    def write(self, table: pa.Table) -> None:
        if self._schema is None:
            self._schema = table.schema
        elif not table.schema.equals(self._schema):
            schema = unify_schemas(self._schema, table.schema, str(self.path))
            if not schema.equals(self._schema):
                self._widen(schema)
            table = conform_table(table, self._schema, str(self.path))
        self.rows += table.num_rows
        if self.format == "jsonl":
            lines = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n"
                            for row in table.to_pylist())
            self._writer.write(lines.encode("utf-8"))
            return
        if self._writer is None:
            self._writer = self._open(self._tmp, self._schema)
        self._writer.write_table(table)

    def _open(self, path: Path, schema: pa.Schema):
        if self.format == "parquet":
            import pyarrow.parquet as pq

            return pq.ParquetWriter(path, schema)
        if self.format == "csv":
            import pyarrow.csv as pcsv

            return pcsv.CSVWriter(str(path), schema)
        return pa.ipc.new_stream(str(path), schema)

    def _widen(self, schema: pa.Schema) -> None:
        """Rewrite the rows written so far with ``schema`` (JSONL needs no rewrite)."""
        old, self._schema = self._schema, schema
        if self.format == "jsonl" or self._writer is None:
            return
        self._writer.close()
        self._writer = None
        new = self._tmp.with_name(self._tmp.name + ".widen")
        writer = self._open(new, schema)
        try:
            for batch in self._read_back(old):
                writer.write_table(conform_table(pa.Table.from_batches([batch]), schema,
                                                 str(self.path)))
        except BaseException:
            writer.close()
            with contextlib.suppress(FileNotFoundError):
                os.remove(new)
            raise
        os.replace(new, self._tmp)  # the open writer follows the file
        self._writer = writer

    def _read_back(self, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
        if self.format == "parquet":
            import pyarrow.parquet as pq

            yield from pq.ParquetFile(self._tmp).iter_batches()
        elif self.format == "csv":
            import pyarrow.csv as pcsv

            yield from pcsv.open_csv(
                self._tmp, parse_options=pcsv.ParseOptions(newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(
                    column_types=schema, strings_can_be_null=True,
                    quoted_strings_can_be_null=False))
        else:
            with pa.memory_map(str(self._tmp)) as source:
                yield from pa.ipc.open_stream(source)

    def __exit__(self, exc_type, exc, tb):
        if self._writer is not None:
            self._writer.close()
        if self.format == "jsonl":
            self._raw.close()
        elif self._writer is None and exc_type is None and self.format == "parquet":
            import pyarrow.parquet as pq  # no rows: still write a valid empty file

            pq.write_table(pa.table({}), self._tmp)
        elif self._writer is None and exc_type is None and self.format == "arrow":
            pa.ipc.new_stream(str(self._tmp), pa.schema([])).close()
        return self._atomic.__exit__(exc_type, exc, tb)


def write_table(table: pa.Table, path: str | Path) -> Path:
    """Write one table atomically; the format follows the file extension."""
    with TableWriter(path) as writer:
        writer.write(table)
    return Path(path)
