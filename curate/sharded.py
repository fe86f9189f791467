"""Sharded, resumable scoring into a score folder, on any executor.

:func:`score_to_folder` is what ``curate score``, recipes and :func:`curate.score` run:

1. Under the folder's run lock, delete temporary files a killed run left, and plan the
   shards (:func:`curate.io.shards.plan_shards`; the plan is kept in ``_plan.json``).
2. For each scorer, find the shards whose commit holds this run's fingerprint (the
   scorer's configuration and the plan's): those are done. Every other shard becomes
   one task listing the scorers it still needs.
3. The executor runs the tasks (:func:`_score_shard`, in any order, anywhere); each
   writes and commits one file per scorer (:func:`curate.scores.write_shard`).
4. The driver checks the whole source (ids unique across shards, something left to
   score), runs whole-corpus steps (deduplication) over the committed parts, and marks
   each table complete.

A run killed at any point and started again therefore recomputes only uncommitted
shards and ends with the same bytes. Memory: a task holds one batch of text and one
shard's scores; the driver holds the plan and, for deduplication, a few dozen bytes per
document.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.hashing import fingerprint
from curate.core.parts import Parts
from curate.core.scorer import Scorer
from curate.executor import Executor, LocalExecutor, _progress, _score_whole
from curate.io import DEFAULT_BATCH_SIZE, Source
from curate.io.shards import DEFAULT_SHARD_ROWS, Shard, ShardPlan, plan_shards, read_plan
from curate.io.writers import output_folder, write_text
from curate.scores import (
    PARTS_FOLDER,
    TABLE_FILE,
    RunLock,
    committed,
    finish_table,
    remove_strays,
    table_info,
    write_shard,
)

PLAN_FILE = "_plan.json"


@dataclass
class ShardWork:
    """What every shard task needs, sent once to each worker.

    ``folders``/``fingerprints``/``metadata`` are keyed by scorer name; a scorer's folder
    is ``_parts/`` under its own when it has a whole-corpus step.
    """

    scorers: dict[str, Scorer]
    source: Source
    plan: ShardPlan
    batch_size: int
    folders: dict[str, Path]
    fingerprints: dict[str, str]
    metadata: dict[str, dict]


_WORK: list[ShardWork] = []


def _install(work: ShardWork) -> None:
    _WORK[:] = [work]


def _score_shard(task: tuple[Shard, list[str]]) -> dict:
    """Score one shard with the named scorers; write and commit one file per scorer."""
    shard, names = task
    work = _WORK[0]
    scorers = [work.scorers[n] for n in names]
    view = work.source.for_shard(shard, work.plan.ids_assigned, work.plan.first_file)
    columns = sorted({c for s in scorers for c in s.columns_needed()})
    view.required_columns = tuple(dict.fromkeys([*view.required_columns, *columns]))
    outputs: list[list[pa.Table]] = [[] for _ in scorers]
    ids = []
    for batch in view.iter_batches(work.batch_size, columns):
        ids.append(batch.column(view.id_column))
        for out, scorer in zip(outputs, scorers):
            table = scorer.score_batch(batch.select(columns))
            if table.num_rows != batch.num_rows:
                raise RuntimeError(f"scorer {scorer.name!r} returned {table.num_rows} rows "
                                   f"for a batch of {batch.num_rows}")
            out.append(table)
    # An empty shard (every row skipped) has null-typed ids, which any type extends.
    id_column = pa.chunked_array([c for chunk in ids for c in chunk.chunks]).combine_chunks() \
        if ids else pa.array([], pa.null())
    info = {"skipped": view.skipped, "skipped_at": view.skipped_at}
    for out, scorer in zip(outputs, scorers):
        if not out:  # the columns of an empty batch
            out = [scorer.score_batch(pa.table({c: pa.array([], pa.string()) for c in columns}))]
        table = pa.concat_tables(out, promote_options="permissive").combine_chunks()
        table = table.add_column(0, view.id_column, id_column)
        write_shard(table, work.folders[scorer.name], shard.name,
                    {"fingerprint": work.fingerprints[scorer.name], **info},
                    work.metadata[scorer.name])
    return {"shard": shard.index, "rows": len(id_column), **info}


def score_to_folder(scorers: list[Scorer], source: Source, out: str | Path, *,
                    executor: Executor | None = None, shard_rows: int = DEFAULT_SHARD_ROWS,
                    batch_size: int | None = None, fingerprints: dict[str, str] | None = None,
                    metadata: dict[str, dict] | None = None, progress: bool = False) -> dict:
    """Score ``source`` into ``out/<scorer>/<shard>.parquet`` (see the module docstring).

    Args:
        fingerprints: per scorer, everything its table depends on besides the plan
            (configuration, model hashes, source options, curate's version); default: its
            parameters.
        metadata: per scorer, what its files and ``_table.json`` record (parameters).

    Returns:
        ``{"shards": n, "computed": {scorer: shards scored now}, "reused": {...},
        "rows": scored rows, "skipped": rows skipped for their size}``.
    """
    executor = executor or LocalExecutor()
    names = [s.name for s in scorers]
    if len(set(names)) != len(names):
        raise CurateError(f"a scorer is listed twice: {', '.join(names)}")
    out = Path(out)
    fingerprints = fingerprints or {s.name: fingerprint([s.name, s.params()]) for s in scorers}
    metadata = metadata or {s.name: {"scorer": s.name, "params": s.params()} for s in scorers}
    # Bad input leaves no output behind; an interrupted run keeps its commits to resume.
    with output_folder(out, remove_on=(CurateError,)), RunLock(out):
        remove_strays(out)
        plan = plan_shards(source, shard_rows, read_plan(out / PLAN_FILE))
        write_text(out / PLAN_FILE, plan.to_json())
        whole = [s for s in scorers if s.needs_whole_dataset]
        sharded = [s for s in scorers if not s.needs_whole_dataset]
        report = {"shards": len(plan.shards), "computed": {}, "reused": {}}
        keys = {s.name: fingerprint([fingerprints[s.name], plan.fingerprint]) for s in scorers}
        for scorer in whole:
            _score_whole_to_folder(scorer, source, out, keys[scorer.name],
                                   metadata[scorer.name], report)
        commits = _run_shards(sharded, source, out, plan, executor, keys, metadata,
                              batch_size, progress, report)
        rows = _check_source(source, plan, commits, sharded, out)
        for scorer in sharded:
            folder = out / scorer.name
            if scorer.finalizes:
                _finalize(scorer, folder, plan, keys[scorer.name], metadata[scorer.name])
            finish_table(folder, [s.name for s in plan.shards],
                         {"scorer": scorer.name, "fingerprint": keys[scorer.name],
                          "rows": rows, "metadata": metadata[scorer.name]})
        report["rows"] = rows
        report["skipped"] = source.skipped
    return report


def _run_shards(scorers, source, out, plan, executor, keys, metadata, batch_size, progress,
                report) -> dict[int, dict]:
    """Score every uncommitted (scorer, shard); return one commit per shard."""
    folders = {s.name: out / s.name / PARTS_FOLDER if s.finalizes else out / s.name
               for s in scorers}
    commits: dict[int, dict] = {}
    todo: dict[int, list[str]] = {}
    for scorer in scorers:
        info = table_info(out / scorer.name)
        if info is not None and info.get("fingerprint") != keys[scorer.name]:
            (out / scorer.name / TABLE_FILE).unlink()  # it is being rewritten
        done = 0
        for shard in plan.shards:
            commit = committed(folders[scorer.name], shard.name, keys[scorer.name])
            if commit is None:
                todo.setdefault(shard.index, []).append(scorer.name)
            else:
                commits.setdefault(shard.index, commit)
                done += 1
        report["reused"][scorer.name] = done
        report["computed"][scorer.name] = len(plan.shards) - done
        folders[scorer.name].mkdir(parents=True, exist_ok=True)
    if not todo:
        return commits
    columns = sorted({c for s in scorers for c in s.columns_needed()})
    source.required_columns = tuple(dict.fromkeys([*source.required_columns, *columns]))
    work = ShardWork({s.name: s for s in scorers}, source, plan,
                     batch_size or min(s.batch_size for s in scorers) or DEFAULT_BATCH_SIZE,
                     folders, keys, metadata)
    tasks = [(plan.shards[i], names) for i, names in sorted(todo.items())]
    bar = _progress(progress, "scoring")
    for _, result in executor.map_unordered(_score_shard, tasks, setup=_install,
                                            setup_args=(work,)):
        commits[result["shard"]] = result
        bar.update(result["rows"])
    bar.close()
    return commits


def _check_source(source: Source, plan: ShardPlan, commits: dict[int, dict], scorers,
                  out: Path) -> int:
    """What only the whole source can tell: something was scored, ids are unique across
    shards, and the size report. Returns the rows scored."""
    rows = sum(c["rows"] for c in commits.values())
    skipped = sum(c["skipped"] for c in commits.values())
    at = [a for i in sorted(commits) for a in commits[i]["skipped_at"]][:5]
    source.skipped, source.skipped_at = skipped, at
    if scorers and rows == 0:
        raise CurateError(f"{source.spec}: no examples left: {source.skipped_report()}")
    filled = [plan.shards[i] for i in sorted(commits) if commits[i]["rows"]]
    if scorers and source.check_unique_ids and len(filled) > 1:
        _check_unique_across(out / scorers[0].name, plan, filled, scorers[0].finalizes,
                             source.id_column)
    if skipped and source.report is not None:
        source.report(source.skipped_report())
    return rows


def _check_unique_across(folder: Path, plan: ShardPlan, shards: list[Shard], parts: bool,
                         id_column: str) -> None:
    """Raise on an id found in two of ``shards`` (each shard checked its own)."""
    import duckdb

    if parts:
        folder = folder / PARTS_FOLDER
    files = [str(folder / f"{s.name}.parquet") for s in shards]
    con = duckdb.connect()
    # The first repeat in dataset order: the one whose later copy comes first.
    row = con.execute(
        f'SELECT "{id_column}", list(filename ORDER BY filename) FROM read_parquet(?, '
        f'filename=true, file_row_number=true) GROUP BY 1 HAVING count(*) > 1 '
        f'ORDER BY max(filename), max_by(file_row_number, filename) LIMIT 1',
        [files]).fetchone()
    if row is not None:
        where = [_shard_of(plan, Path(f).stem) for f in row[1][:2]]
        raise CurateError(f"duplicate id {row[0]!r} (in {where[0]} and in {where[1]}); ids "
                          "must be unique")


def _shard_of(plan: ShardPlan, name: str) -> str:
    shard = plan.shards[int(name)]
    return f"{shard.file or 'the data'} rows {shard.start}-{shard.stop - 1}"


def _finalize(scorer: Scorer, folder: Path, plan: ShardPlan, key: str, meta: dict) -> None:
    """The scorer's whole-corpus step over its committed parts; one final file per shard."""
    names = [s.name for s in plan.shards]
    if all(committed(folder, n, key) is not None for n in names):
        return  # finished before the run was stopped
    parts = Parts([folder / PARTS_FOLDER / f"{n}.parquet" for n in names])
    for name, table in zip(names, scorer.finalize_parts(parts)):
        write_shard(table, folder, name, {"fingerprint": key}, meta)


def _score_whole_to_folder(scorer: Scorer, source: Source, out: Path, key: str, meta: dict,
                           report: dict) -> None:
    """A scorer that trains on the whole dataset: one table, written as one shard."""
    folder = out / scorer.name
    info = table_info(folder)
    if info is not None and info.get("fingerprint") == key and \
            committed(folder, "00000", key) is not None:
        report["reused"][scorer.name] = 1
        report["computed"][scorer.name] = 0
        return
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    table = _score_whole([scorer], source)[scorer.name]
    write_shard(table, folder, "00000", {"fingerprint": key}, meta)
    finish_table(folder, ["00000"], {"scorer": scorer.name, "fingerprint": key,
                                     "rows": table.num_rows, "metadata": meta})
    report["reused"][scorer.name] = 0
    report["computed"][scorer.name] = 1
