"""Score tables on disk (``<dir>/<scorer>.parquet``) and their join by id."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.errors import CurateError
from curate.io import atomic_path

META_KEY = b"curate"


def save_scores(tables: dict[str, pa.Table], out_dir: str | Path,
                metadata: dict[str, dict] | None = None) -> list[Path]:
    """Write each table to ``out_dir/<name>.parquet`` atomically, with JSON metadata."""
    out_dir = Path(out_dir)
    paths = []
    for name, table in tables.items():
        meta = json.dumps((metadata or {}).get(name, {}), sort_keys=True, default=str)
        table = table.replace_schema_metadata({META_KEY: meta.encode()})
        path = out_dir / f"{name}.parquet"
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
        paths.append(path)
    return paths


def read_metadata(path: str | Path) -> dict:
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(META_KEY, b"{}"))


def load_scores(paths) -> dict[str, pa.Table]:
    """Read score tables from Parquet files and/or folders of them, keyed by file stem."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(p.glob("*.parquet"))
            if not found:
                raise CurateError(f"{p}: folder holds no score files (*.parquet)")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            raise CurateError(f"{p}: no such score file or folder")
    tables = {}
    for f in files:
        try:
            tables[f.stem] = pq.read_table(f).replace_schema_metadata(None)
        except (pa.ArrowInvalid, OSError) as exc:
            raise CurateError(f"{f}: not a readable Parquet score table: {exc}") from None
    return tables


def join_scores(tables: dict[str, pa.Table], id_column: str = "id") -> pa.Table:
    """Join score tables on ``id_column``, in the row order of the first table.

    Every table must hold the same set of ids; a column name that appears in two
    tables is an error (scorer prefixes keep them apart).
    """
    if not tables:
        raise CurateError("no score tables given")
    names = list(tables)
    base = tables[names[0]]
    for name in names:
        if id_column not in tables[name].column_names:
            raise CurateError(f"score table {name!r} has no {id_column!r} column; columns are: "
                              f"{', '.join(tables[name].column_names)}")
    joined = base
    seen = set(base.column_names)
    for name in names[1:]:
        table = tables[name]
        clash = (seen & set(table.column_names)) - {id_column}
        if clash:
            raise CurateError(f"score table {name!r} repeats column(s) {sorted(clash)}")
        seen |= set(table.column_names)
        if table.num_rows != base.num_rows:
            raise CurateError(f"score table {name!r} has {table.num_rows} rows but "
                              f"{names[0]!r} has {base.num_rows}: were they scored on the same "
                              "data?")
        if table.column(id_column).equals(base.column(id_column)):
            for col in table.column_names[1:] if table.column_names[0] == id_column else [
                    c for c in table.column_names if c != id_column]:
                joined = joined.append_column(col, table.column(col))
            continue
        joined = _join_by_id(joined, table, id_column, name)
    return joined


def _join_by_id(left: pa.Table, right: pa.Table, id_column: str, name: str) -> pa.Table:
    import pyarrow.compute as pc

    pos = pc.index_in(left.column(id_column), value_set=right.column(id_column))
    if pos.null_count:
        missing = left.column(id_column).filter(pc.is_null(pos))[0].as_py()
        raise CurateError(f"score table {name!r} has no row for id {missing!r}")
    taken = right.take(pos)
    for col in right.column_names:
        if col != id_column:
            left = left.append_column(col, taken.column(col))
    return left
