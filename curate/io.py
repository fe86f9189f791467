"""Reading datasets in bounded batches, and writing them atomically.

A :class:`Source` reads JSONL (also gzipped), Parquet, CSV, a ``save_to_disk``
folder, a folder or glob of such shards, a built-in name (``builtin:NAME``), or an
in-memory ``datasets.Dataset`` / pandas DataFrame / ``pyarrow.Table``. It yields
``pyarrow.Table`` batches that always carry the id column, so memory stays
bounded whatever the corpus size.

Every user error (malformed JSON, invalid UTF-8, missing column, empty file,
duplicate id, oversized document) is a :class:`CurateError` naming the file, the
line (for JSONL) and what was expected.
"""

from __future__ import annotations

import contextlib
import glob as globlib
import gzip
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from curate.core.errors import CurateError

#: Documents larger than this (bytes of the JSONL line or of the text value) are an
#: error unless the limit is raised; 0 disables the check.
DEFAULT_MAX_DOC_BYTES = 4 * 1024 * 1024
DEFAULT_BATCH_SIZE = 1000

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


def _human_bytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n} bytes"


class Source:
    """A dataset read in batches, with a stable id column.

    Args:
        data: a path (file, folder, glob), ``builtin:NAME``, or an in-memory
            ``datasets.Dataset``, pandas DataFrame or ``pyarrow.Table``.
        id_column: name of the id column (default ``"id"``). When the data has no
            such column, ids are the 0-based position in the source
            (``ids_assigned`` is then True and the manifest says so).
        required_columns: columns that must exist (e.g. the text column); a
            missing one is an error listing the columns that do exist.
        max_doc_bytes: per-document size limit (see ``DEFAULT_MAX_DOC_BYTES``).
        check_unique_ids: raise on a repeated id (default True).
    """

    def __init__(self, data, *, id_column: str = "id", required_columns=(),
                 max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES, check_unique_ids: bool = True):
        self.id_column = id_column
        self.required_columns = tuple(required_columns)
        self.max_doc_bytes = max_doc_bytes
        self.check_unique_ids = check_unique_ids
        self.ids_assigned: bool | None = None
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
        return {"source": self.spec, "files": [str(f) for f in self.files],
                "id_column": self.id_column, "ids_assigned": self.ids_assigned}

    # -- reading -----------------------------------------------------------------
    def iter_batches(self, batch_size: int = DEFAULT_BATCH_SIZE,
                     columns: list[str] | None = None) -> Iterator[pa.Table]:
        """Yield tables of at most ``batch_size`` rows, id column first.

        ``columns`` restricts the columns read (the id column is always added).
        """
        seen_ids: dict = {}
        position = 0
        empty = True
        for where, table in self._raw_batches(batch_size, columns):
            if table.num_rows == 0:
                continue
            if empty:
                self._check_columns(table, where)
                self.ids_assigned = self.id_column not in table.column_names
                empty = False
            table = self._with_ids(table, position, where)
            self._check_sizes(table, where)
            if self.check_unique_ids:
                self._check_unique(table, seen_ids, position, where)
            position += table.num_rows
            yield table
        if empty:
            origin = self.files[0] if len(self.files) == 1 else self.spec
            raise CurateError(f"{origin}: dataset is empty: expected at least one example")

    def read_all(self, columns: list[str] | None = None) -> pa.Table:
        batches = list(self.iter_batches(columns=columns))
        return pa.concat_tables(batches, promote_options="permissive")

    def _check_columns(self, table: pa.Table, where: str) -> None:
        missing = [c for c in self.required_columns if c not in table.column_names]
        if missing:
            # The batch may hold only the requested columns: list every column there is.
            _, first = next(self._raw_batches(1, None))
            raise CurateError(f"{where}: column {missing[0]!r} not found; columns are: "
                              f"{', '.join(first.column_names)}")

    def _with_ids(self, table: pa.Table, position: int, where: str) -> pa.Table:
        if self.ids_assigned:
            ids = pa.array(range(position, position + table.num_rows), pa.int64())
            return table.add_column(0, self.id_column, ids)
        if self.id_column not in table.column_names:
            raise CurateError(f"{where}: column {self.id_column!r} is missing here but present "
                              "in earlier rows")
        ids = table.column(self.id_column)
        if ids.null_count:
            row = ids.to_pylist().index(None)
            raise CurateError(f"{where}: row {position + row}: id is null; every example needs "
                              "an id (or drop the column to use positions)")
        if table.column_names[0] != self.id_column:
            table = table.select([self.id_column] +
                                 [c for c in table.column_names if c != self.id_column])
        return table

    def _check_sizes(self, table: pa.Table, where: str) -> None:
        if not self.max_doc_bytes:
            return
        import pyarrow.compute as pc

        for name in self.required_columns:
            col = table.column(name)
            if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
                continue
            lengths = pc.binary_length(col)
            biggest = pc.max(lengths).as_py() or 0
            if biggest > self.max_doc_bytes:
                row = pc.index(lengths, biggest).as_py()
                ident = table.column(self.id_column)[row].as_py()
                raise CurateError(
                    f"{where}: example id={ident!r}: column {name!r} is "
                    f"{_human_bytes(biggest)}, over the {_human_bytes(self.max_doc_bytes)} limit "
                    "(raise it with --max-doc-bytes, 0 for none)")

    def _check_unique(self, table: pa.Table, seen: dict, position: int, where: str) -> None:
        for offset, ident in enumerate(table.column(self.id_column).to_pylist()):
            if ident in seen:
                raise CurateError(f"{where}: duplicate id {ident!r} at example {position + offset} "
                                  f"(first seen at example {seen[ident]}); ids must be unique")
            seen[ident] = position + offset

    def _raw_batches(self, batch_size: int, columns: list[str] | None):
        want = None if columns is None else list(dict.fromkeys([self.id_column, *columns]))
        if self.in_memory is not None:
            table = self.in_memory
            if want is not None:
                table = table.select([c for c in want if c in table.column_names])
            for start in range(0, table.num_rows, batch_size):
                yield self.spec, table.slice(start, batch_size)
            return
        for path in self.files:
            fmt = _format_of(path)
            reader = {"jsonl": _jsonl_batches, "parquet": _parquet_batches,
                      "csv": _csv_batches, "arrow": _arrow_batches}[fmt]
            yield from reader(path, batch_size, want, self.max_doc_bytes)


def _jsonl_batches(path: Path, batch_size: int, columns, max_doc_bytes: int):
    """Parse JSONL line by line so that every error names its file and line."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    rows: list[dict] = []
    first_line = 1
    try:
        with opener(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if max_doc_bytes and len(raw) > max_doc_bytes:
                    raise CurateError(f"{path}:{lineno}: line is {_human_bytes(len(raw))}, over "
                                      f"the {_human_bytes(max_doc_bytes)} limit (raise it with "
                                      "--max-doc-bytes, 0 for none)")
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
                    raise CurateError(f"{path}:{lineno}: malformed JSON at column {exc.colno}: "
                                      f"{exc.msg}") from None
                if not isinstance(row, dict):
                    raise CurateError(f"{path}:{lineno}: expected a JSON object, got "
                                      f"{type(row).__name__}")
                if columns is not None:
                    row = {k: row[k] for k in columns if k in row}
                if not rows:
                    first_line = lineno
                rows.append(row)
                if len(rows) == batch_size:
                    yield f"{path}:{first_line}", _rows_to_table(rows, path, first_line)
                    rows = []
    except (OSError, EOFError) as exc:
        raise CurateError(f"{path}: cannot read: {exc}") from None
    if rows:
        yield f"{path}:{first_line}", _rows_to_table(rows, path, first_line)


def _rows_to_table(rows: list[dict], path: Path, first_line: int) -> pa.Table:
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise CurateError(f"{path}: lines from {first_line}: inconsistent value types: "
                          f"{exc}") from None


def _parquet_batches(path: Path, batch_size: int, columns, max_doc_bytes: int):
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise CurateError(f"{path}: not a readable Parquet file: {exc}") from None
    names = pf.schema_arrow.names
    cols = None if columns is None else [c for c in columns if c in names]
    for batch in pf.iter_batches(batch_size=batch_size, columns=cols):
        yield str(path), pa.Table.from_batches([batch])


def _csv_batches(path: Path, batch_size: int, columns, max_doc_bytes: int):
    import pyarrow.csv as pcsv

    if path.stat().st_size == 0:
        return
    try:
        reader = pcsv.open_csv(path, read_options=pcsv.ReadOptions(block_size=1 << 22))
        names = reader.schema.names
        pending: list[pa.RecordBatch] = []
        for batch in reader:
            if columns is not None:
                batch = batch.select([c for c in columns if c in names])
            pending.append(batch)
            table = pa.Table.from_batches(pending)
            while table.num_rows >= batch_size:
                yield str(path), table.slice(0, batch_size)
                table = table.slice(batch_size)
            pending = table.to_batches()
        if pending:
            yield str(path), pa.Table.from_batches(pending)
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise CurateError(f"{path}: malformed CSV: {exc}") from None


def _arrow_batches(path: Path, batch_size: int, columns, max_doc_bytes: int):
    with pa.memory_map(str(path)) as source:
        try:
            table = pa.ipc.open_stream(source).read_all()
        except pa.ArrowInvalid:
            table = pa.ipc.open_file(source).read_all()
    if columns is not None:
        table = table.select([c for c in columns if c in table.column_names])
    for start in range(0, table.num_rows, batch_size):
        yield str(path), table.slice(start, batch_size)


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
        return pa.Table.from_pandas(data, preserve_index=False), "pandas"
    raise CurateError(f"cannot read data of type {type(data).__name__}; expected a path, "
                      "'builtin:NAME', a datasets.Dataset, a pandas DataFrame or a pyarrow.Table")


def like(table: pa.Table, kind: str):
    """Hand a table back as the kind the user passed in (``arrow``, ``datasets``, ``pandas``)."""
    if kind == "datasets":
        import datasets

        return datasets.Dataset(table)
    if kind == "pandas":
        return table.to_pandas()
    return table


# -- writing --------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(path: str | Path):
    """Yield a temporary path beside ``path``; rename it into place only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates the file 0600; give it the mode a plain open() would have.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
    block exits without an exception. A later batch whose schema differs is cast to
    the first batch's schema (missing columns become null).
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.format = _format_of(self.path)
        if self.format == "arrow":
            raise CurateError(f"{self.path}: writing .arrow files is not supported; use "
                              ".parquet, .jsonl or .csv")
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
        elif table.schema != self._schema:
            table = _conform(table, self._schema, self.path)
        self.rows += table.num_rows
        if self.format == "jsonl":
            lines = "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n"
                            for row in table.to_pylist())
            self._writer.write(lines.encode("utf-8"))
        elif self.format == "parquet":
            import pyarrow.parquet as pq

            if self._writer is None:
                self._writer = pq.ParquetWriter(self._tmp, self._schema)
            self._writer.write_table(table)
        else:
            import pyarrow.csv as pcsv

            if self._writer is None:
                self._writer = pcsv.CSVWriter(str(self._tmp), self._schema)
            self._writer.write_table(table)

    def __exit__(self, exc_type, exc, tb):
        if self._writer is not None:
            self._writer.close()
        if self.format == "jsonl":
            self._raw.close()
        elif self._writer is None and exc_type is None and self.format == "parquet":
            import pyarrow.parquet as pq  # no rows: still write a valid empty file

            pq.write_table(pa.table({}), self._tmp)
        return self._atomic.__exit__(exc_type, exc, tb)


def _conform(table: pa.Table, schema: pa.Schema, path: Path) -> pa.Table:
    cols = []
    for field in schema:
        if field.name not in table.column_names:
            cols.append(pa.nulls(table.num_rows, field.type))
            continue
        try:
            cols.append(table.column(field.name).cast(field.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            raise CurateError(f"{path}: column {field.name!r} changes type from {field.type} to "
                              f"{table.column(field.name).type} between rows") from None
    return pa.Table.from_arrays(cols, schema=schema)


def write_table(table: pa.Table, path: str | Path) -> Path:
    """Write one table atomically; the format follows the file extension."""
    with TableWriter(path) as writer:
        writer.write(table)
    return Path(path)
