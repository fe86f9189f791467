"""Combining shards: column types unified across files and batches (see
:mod:`curate.core.types` for the rule)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.types import canonical_id_type, family, unify_types
from curate.io.formats import EXACT_FLOAT_INT, Part, format_of, one_line


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
            _int_extent(col) > EXACT_FLOAT_INT:
        raise CurateError(f"{where}: column {name!r} holds integers too large to be exact "
                          f"as {target}, which other rows need (they hold fractions)")
    chunks = col.chunks if isinstance(col, pa.ChunkedArray) else [col]
    try:
        return pa.chunked_array([c for chunk in chunks for c in _cast_chunk(chunk, target)],
                                type=target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise CurateError(f"{where}: column {name!r}: cannot convert {col.type} values to "
                          f"{target} without loss: {one_line(exc)}") from None


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


class StreamSchema:
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
            fmt = format_of(path)
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
                    self.extent.get(name, 0) > EXACT_FLOAT_INT:
                raise CurateError(f"{where}: column {name!r} holds {type_} values, but "
                                  f"{self.origin[name]} holds integers too large to be exact "
                                  "as floats")
            self.types[name], self.origin[name] = target, where
        return target

    def conform(self, table: pa.Table, part: Part) -> pa.Table:
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


def _first_value_at(col, part: Part) -> str:
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
        raise CurateError(f"{path}: not a readable {fmt} file: {one_line(exc)}") from None
