"""Score tables on disk: ``<dir>/<scorer>.parquet`` with the scorer's parameters as metadata.

The join by id is :func:`curate.core.tables.join_scores`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.cache import atomic_path
from curate.core.errors import CurateError

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


def id_column_of(tables: dict[str, pa.Table], given: str | None = None) -> str:
    """The id column of score tables: ``given`` when set, else the first column, which
    every score table written by curate starts with (the dataset's id column, e.g.
    ``doc_id`` after ``curate score --id-column doc_id``)."""
    if given is not None or not tables:
        return given or "id"
    firsts = {t.column_names[0] for t in tables.values() if t.num_columns}
    if len(firsts) != 1:
        raise CurateError(f"score tables start with different columns ({', '.join(sorted(firsts))}"
                          "): give --id-column")
    return firsts.pop()
