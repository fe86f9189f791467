"""Writing tables, text and figures atomically: nothing appears under its final name
until it is complete."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from curate.core.cache import atomic_path
from curate.core.errors import CurateError
from curate.io.formats import format_of
from curate.io.schema import conform_table, unify_schemas


@contextlib.contextmanager
def output_folder(out_dir, remove_on: tuple = (BaseException,)):
    """Make ``out_dir`` (and its parents); if the block raises one of ``remove_on`` and the
    folder did not exist (or was empty) before, empty it again, so that a mistake found
    part-way (bad input, a bad parameter) leaves no half-made output."""
    out = Path(out_dir)
    fresh = not out.exists() or not any(out.iterdir())
    existed = out.exists()
    out.mkdir(parents=True, exist_ok=True)
    try:
        yield out
    except remove_on:
        if fresh:
            import shutil

            if existed:
                for child in out.iterdir():
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            else:
                shutil.rmtree(out, ignore_errors=True)
        raise


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
        self.format = format_of(self.path)
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
