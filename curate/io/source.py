"""The :class:`Source`: a dataset read in bounded batches with a stable id column."""

from __future__ import annotations

import bisect
import copy
import glob as globlib
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.types import is_string
from curate.io.formats import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_MAX_DOC_BYTES,
    FILE_SUFFIXES,
    ON_OVERSIZE,
    SKIPPED_SHOWN,
    Part,
    format_of,
    human_bytes,
    is_save_to_disk_folder,
    over_limit,
)
from curate.io.memory import to_arrow
from curate.io.readers import READERS, shorten, value_kind
from curate.io.schema import StreamSchema, concat_tables
from curate.io.shards import Shard


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
        self.shard: Shard | None = None
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
            if is_save_to_disk_folder(path):
                import datasets

                self.in_memory = datasets.load_from_disk(str(path)).data.table
                self.files = sorted(path.glob("*.arrow"))
                return
            self.files = sorted(p for p in path.rglob("*") if p.is_file() and
                                p.name.lower().endswith(FILE_SUFFIXES))
            if not self.files:
                raise CurateError(f"{path}: folder holds no data files "
                                  f"({', '.join(FILE_SUFFIXES)})")
        elif path.is_file():
            self.files = [path]
        else:
            raise CurateError(f"{spec}: no such file or folder")
        for f in self.files:
            format_of(f)

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
        schema = StreamSchema(self.id_column, canonical_ids=self.in_memory is None)
        if self.in_memory is None and len(self.files) > 1:
            schema.add_file_schemas(self.files, want)  # a clash is found before any work
        self.skipped, self.skipped_at = 0, []
        seen_ids: dict = {}
        self._segments: list[tuple[int, Part]] = []
        position = 0 if self.shard is None else self.shard.position
        empty = self.shard is None
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
        if self.shard is not None:  # the shard plan checks the whole source
            return
        if empty:
            origin = self.files[0] if len(self.files) == 1 else self.spec
            raise CurateError(f"{origin}: dataset is empty: expected at least one example")
        if self.skipped == position:
            raise CurateError(f"{self.spec}: no examples left: {self.skipped_report()}")
        if self.skipped and self.report is not None:
            self.report(self.skipped_report())

    def for_shard(self, shard: Shard, ids_assigned: bool, first_file: str | None) -> Source:
        """A view of this source that reads only ``shard`` (a row range of one file, or of
        the in-memory table), whose first row has position ``shard.position``.

        ``ids_assigned`` and ``first_file`` come from the shard plan, which read the first
        file: the view checks that its file has ids if and only if that one had. Ids are
        checked unique within the shard; an empty shard is not an error (the executor
        checks the whole source).
        """
        view = copy.copy(self)
        view.shard, view.ids_assigned, view._first_file = shard, ids_assigned, first_file
        if shard.file is not None:
            view.files = [Path(shard.file)]
        return view

    def read_all(self, columns: list[str] | None = None) -> pa.Table:
        return concat_tables(list(self.iter_batches(columns=columns)))

    def _check_file(self, table: pa.Table, part: Part, first: bool) -> None:
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

    def _columns_of(self, part: Part) -> list[str]:
        """Every column of the file ``part`` comes from (the batch may hold only the
        requested ones)."""
        if self.in_memory is not None:
            return self.in_memory.column_names
        path = Path(part.file)
        reader = READERS[format_of(path)]
        first = next(iter(reader(path, 1, None, self.text_column)), None)
        return first.table.column_names if first is not None else part.table.column_names

    def _with_ids(self, table: pa.Table, position: int, part: Part) -> pa.Table:
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

    def _check_text(self, table: pa.Table, part: Part) -> None:
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
        raise CurateError(f"{part.at(row)}: column {name!r} holds {value_kind(value)} "
                          f"({shorten(value)}); expected a string (the text)")

    def _oversize(self, table: pa.Table, part: Part) -> np.ndarray | None:
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
                    f"{over_limit(lengths[row].as_py(), self.max_doc_bytes)} (raise it with "
                    "--max-doc-bytes, 0 for none, or leave such documents out with "
                    "--on-oversize skip)")
            over = big if over is None else pc.or_(over, big)
        if over is None:
            return None
        rows = np.flatnonzero(over.to_numpy(zero_copy_only=False))
        room = SKIPPED_SHOWN - len(self.skipped_at)
        self.skipped_at += [part.at(int(r)) for r in rows[:max(room, 0)]]
        self.skipped += len(rows)
        keep = np.ones(table.num_rows, dtype=bool)
        keep[rows] = False
        return keep

    def _check_unique(self, table: pa.Table, seen: dict, position: int, part: Part,
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

    def _raw_batches(self, batch_size: int, want: list[str] | None) -> Iterator[Part]:
        start, stop = (0, None) if self.shard is None else (self.shard.start, self.shard.stop)
        if self.in_memory is not None:
            table = self.in_memory
            if want is not None:
                table = table.select([c for c in want if c in table.column_names])
            stop = table.num_rows if stop is None else stop
            for first in range(start, stop, batch_size):
                yield Part(self.spec, table.slice(first, min(batch_size, stop - first)),
                           first_row=first)
            return
        for path in self.files:
            reader = READERS[format_of(path)]
            for part in reader(path, batch_size, want, self.text_column, start, stop):
                # Raw batches are kept in a list by _check_unique: keep only the rows'
                # locations, not their data.
                yield part
                part.table = None
