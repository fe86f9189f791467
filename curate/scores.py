"""Score tables on disk.

Two layouts, read alike by :func:`load_scores` (and so by ``filter``, ``sql``, ``apply``,
``card`` and recipes):

* sharded, what ``curate score`` and recipes write: a folder per scorer,
  ``<dir>/<scorer>/<shard>.parquet``, one file per shard of the source. Each shard's
  file is written under a temporary name and renamed; then its commit,
  ``<shard>.json`` (rows, content hash, fingerprint), is written the same way: a shard
  counts only once its commit is there (:func:`committed`). ``_table.json`` says the
  table is complete: which shards, in order, the scorer's parameters and the
  fingerprint. A scorer with a whole-corpus step (deduplication) keeps its per-shard
  intermediate tables in ``<scorer>/_parts/`` in the same way.
* a single file, ``<dir>/<scorer>.parquet``, with the scorer's parameters as metadata;
  :func:`merge_scores` turns a sharded table into one.

The join by id is :func:`curate.core.tables.join_scores`.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from curate.core.cache import atomic_path
from curate.core.errors import CurateError
from curate.core.hashing import file_hash

META_KEY = b"curate"
#: Marks a sharded score folder complete; lists its shards.
TABLE_FILE = "_table.json"
#: Sub-folder of a scorer's per-shard intermediate tables (before its whole-corpus step).
PARTS_FOLDER = "_parts"
#: Rows per row group of a merged single-file table (fixed, so that the file's bytes do
#: not depend on how many shards it was merged from).
MERGED_ROW_GROUP = 65_536


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
    """The metadata a score table was written with (a file, or a sharded folder)."""
    path = Path(path)
    if path.is_dir():
        info = table_info(path)
        return {} if info is None else info.get("metadata", {})
    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(META_KEY, b"{}"))


# -- sharded tables ------------------------------------------------------------------------
def write_shard(table: pa.Table, folder: Path, name: str, commit: dict,
                metadata: dict | None = None) -> dict:
    """Write ``folder/<name>.parquet``, then its commit ``folder/<name>.json``.

    ``commit`` (plain data, e.g. the fingerprint) is stored with the file's rows and
    content hash; both files appear whole or not at all. Returns the commit.
    """
    path = folder / f"{name}.parquet"
    meta = json.dumps(metadata or {}, sort_keys=True, default=str)
    with atomic_path(path) as tmp:
        pq.write_table(table.replace_schema_metadata({META_KEY: meta.encode()}), tmp)
    commit = {**commit, "rows": table.num_rows, "sha": file_hash(path)}
    _write_json(folder / f"{name}.json", commit)
    return commit


def committed(folder: Path, name: str, fingerprint: str) -> dict | None:
    """The commit of shard ``name`` in ``folder`` when it holds ``fingerprint`` and its
    file is there with the committed content; else None."""
    try:
        commit = json.loads((folder / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if commit.get("fingerprint") != fingerprint:
        return None
    path = folder / f"{name}.parquet"
    if not path.is_file() or file_hash(path) != commit.get("sha"):
        return None
    return commit


def finish_table(folder: Path, shards: list[str], info: dict) -> None:
    """Mark the sharded table in ``folder`` complete; remove shard files not in ``shards``
    (left by an earlier plan)."""
    keep = set(shards)
    for path in folder.iterdir():
        if path.suffix in (".parquet", ".json") and path.stem not in keep and \
                path.name != TABLE_FILE:
            path.unlink()
    _write_json(folder / TABLE_FILE, {**info, "shards": shards})


def table_info(folder: Path) -> dict | None:
    """The contents of a sharded folder's ``_table.json``, or None when it is not complete."""
    try:
        return json.loads((Path(folder) / TABLE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def shard_files(folder: Path) -> list[Path]:
    """The shard files of a complete sharded table, in shard order."""
    info = table_info(folder)
    if info is None:
        raise CurateError(f"{folder}: score folder is incomplete (no {TABLE_FILE}): the run "
                          "that writes it was stopped or is still running; run it again to "
                          "resume")
    return [Path(folder) / f"{name}.parquet" for name in info["shards"]]


def read_sharded(folder: Path) -> pa.Table:
    """A complete sharded table as one table (shards in order)."""
    tables = []
    for f in shard_files(folder):
        try:
            tables.append(pq.read_table(f).replace_schema_metadata(None))
        except (pa.ArrowInvalid, OSError) as exc:
            raise CurateError(f"{f}: not a readable Parquet score table: {exc}") from None
    return pa.concat_tables(tables, promote_options="permissive").combine_chunks()


def merge_scores(folder: str | Path, path: str | Path) -> Path:
    """Write the sharded table in ``folder`` as the single file ``path``, atomically.

    Streams shard by shard (memory: one shard) into row groups of
    :data:`MERGED_ROW_GROUP` rows, so the same table merged from 1 or 7 shards gives the
    same bytes.
    """
    files, path = shard_files(Path(folder)), Path(path)
    schema = pa.unify_schemas([pq.read_schema(f).remove_metadata() for f in files],
                              promote_options="permissive")
    meta = {META_KEY: json.dumps(table_info(Path(folder))["metadata"], sort_keys=True,
                                 default=str).encode()}
    schema = schema.with_metadata(meta)
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        pending: list[pa.Table] = []
        held = 0
        for f in files:
            pending.append(pq.read_table(f).replace_schema_metadata(None).cast(
                schema.remove_metadata()))
            held += pending[-1].num_rows
            while held >= MERGED_ROW_GROUP:
                table = pa.concat_tables(pending)
                writer.write_table(table.slice(0, MERGED_ROW_GROUP).replace_schema_metadata(meta),
                                   row_group_size=MERGED_ROW_GROUP)
                pending, held = [table.slice(MERGED_ROW_GROUP)], held - MERGED_ROW_GROUP
        if held:
            writer.write_table(pa.concat_tables(pending).replace_schema_metadata(meta),
                               row_group_size=MERGED_ROW_GROUP)
    return path


def remove_strays(folder: Path) -> int:
    """Delete the temporary files a killed run left under ``folder``; return how many."""
    removed = 0
    for path in Path(folder).rglob(".*.tmp"):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed += 1
    return removed


class RunLock:
    """An exclusive lock on an output folder (``<folder>/.lock``) for one run.

    The operating system releases it when the process ends, even by SIGKILL, so a killed
    run never leaves a stale lock. (``flock``: on network file systems that do not
    support it, run one writer per folder.)
    """

    def __init__(self, folder: Path):
        self.path = Path(folder) / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise CurateError(f"{self.path.parent}: another run is writing this folder "
                              f"(pid {holder}); wait for it to finish or stop it") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _is_sharded(folder: Path) -> bool:
    """Whether ``folder`` is a sharded score table, complete or not."""
    return (folder / TABLE_FILE).exists() or any(folder.glob("[0-9]*.json"))


def _write_json(path: Path, value) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(value, sort_keys=True, indent=1, default=str) + "\n",
                       encoding="utf-8")


# -- reading any layout -----------------------------------------------------------------------
def score_tables(paths) -> list[tuple[str, Path]]:
    """``(scorer name, path)`` of every score table in ``paths``: single Parquet files,
    sharded score folders (``<scorer>/``), and folders holding either."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    found: list[tuple[str, Path]] = []
    for p in map(Path, paths):
        if p.is_dir() and _is_sharded(p):
            found.append((p.name, p))
        elif p.is_dir():
            inside = [*sorted(p.glob("*.parquet")),
                      *sorted(d for d in p.iterdir() if d.is_dir() and _is_sharded(d))]
            if not inside:
                raise CurateError(f"{p}: folder holds no score tables (*.parquet, or "
                                  f"<scorer>/ folders)")
            found += score_tables(inside)
        elif p.is_file():
            found.append((p.stem, p))
        elif p.suffix == ".parquet" and p.with_suffix("").is_dir():
            raise CurateError(f"{p}: no such score file; this table is sharded: read the "
                              f"folder {p.with_suffix('')}")
        else:
            raise CurateError(f"{p}: no such score file or folder")
    return found


def load_scores(paths) -> dict[str, pa.Table]:
    """Read score tables keyed by scorer name from any mix of: single Parquet files, sharded
    score folders (``<scorer>/`` with ``_table.json``), and folders holding either."""
    tables = {}
    for name, path in score_tables(paths):
        if path.is_dir():
            tables[name] = read_sharded(path)
            continue
        try:
            tables[name] = pq.read_table(path).replace_schema_metadata(None)
        except (pa.ArrowInvalid, OSError) as exc:
            raise CurateError(f"{path}: not a readable Parquet score table: {exc}") from None
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
