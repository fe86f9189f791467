"""What every experiment shares: cached training runs ("cells"), summaries, outputs.

A *cell* is one training run: a row stub (the experiment's own columns), the
:class:`curate.train.TrainConfig` it runs under, the keyword arguments of
:func:`curate.train.train` that pick its data (``positions``, ``batches``) and a
cache key. :func:`run_cells` trains the cells that have no cached result, in
parallel processes if asked, and keeps each finished run in
``<folder>/<key>.json`` so that a re-run of the same experiment reads it back.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.io import write_text

#: ``final`` metrics of a run kept in every result row.
RUN_METRICS = ("steps", "epochs", "test_acc", "test_loss", "seconds")


@dataclass
class Cell:
    """One run: ``stub`` (row columns), ``config``, ``data`` (train kwargs), ``key``."""

    stub: dict
    config: object
    data: dict = field(default_factory=dict)
    key: str = ""


def fingerprint(value) -> str:
    """xxh3-128 hex digest of the canonical JSON of ``value``."""
    import xxhash

    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return xxhash.xxh3_128_hexdigest(text.encode())


def load_data(data, test_data) -> tuple:
    """``(table, train_set, test_set, fingerprints)`` of an experiment's data.

    ``table``: the training data as read (scorers take it); ``train_set``/``test_set``:
    :class:`curate.train.TensorData`; ``fingerprints``: the data and test-data content
    fingerprints and curate's version, which every cache key includes.
    """
    import curate
    from curate.io import Source
    from curate.train import TensorData

    source, test_source = Source(data), Source(test_data)
    table = source.read_all()
    fingerprints = {"data": source.fingerprint(), "test": test_source.fingerprint(),
                    "curate": curate.__version__}
    return (table, TensorData.from_table(table),
            TensorData.from_table(test_source.read_all()), fingerprints)


def cell_key(stub: dict, config, data_key, fingerprints: dict, **extra) -> str:
    """Cache key of a run: its row, whole config, a key of its data, the data fingerprints."""
    return fingerprint({"cell": stub, "config": dataclasses.asdict(config), "data": data_key,
                        **fingerprints, **extra})


def _train_cell(job) -> dict:
    """Metrics and curve of one run; ``job`` is ``(cell, train_set, test_set)``."""
    from curate.train import train

    cell, train_set, test_set = job
    run = train(cell.config, train_set, test_set, seed=cell.stub["seed"], **cell.data)
    curve = [[row["step"], row["test_acc"]] for row in run.history]
    return {**{k: run.final[k] for k in RUN_METRICS}, "curve": curve}


def run_cells(cells: list[Cell], train_set, test_set, folder: Path, *, workers: int = 1,
              progress: bool = False, desc: str = "runs") -> list[dict]:
    """Rows of every cell in order (stub + :data:`RUN_METRICS` + ``curve`` + ``reused``).

    ``curve`` is ``[[step, test_acc], ...]`` at the config's ``eval_every`` and the end.
    Cached cells are read back (``reused=True``); the rest are trained, in ``workers``
    spawned processes with one torch thread each when ``workers > 1``, and cached.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rows: list = [None] * len(cells)
    todo = []
    for i, cell in enumerate(cells):
        path = folder / f"{cell.key}.json"
        if path.exists():
            rows[i] = {**cell.stub, **json.loads(path.read_text())["metrics"], "reused": True}
        else:
            todo.append(i)
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=desc, unit="run")

    def finish(i, metrics):
        cell = cells[i]
        write_text(folder / f"{cell.key}.json", json.dumps(
            {"row": cell.stub, "config": dataclasses.asdict(cell.config), "metrics": metrics},
            sort_keys=True, indent=1, default=str))
        rows[i] = {**cell.stub, **metrics, "reused": False}
        if bar is not None:
            bar.update()

    from curate.train.seeds import map_processes

    jobs = [(cells[i], train_set, test_set) for i in todo]
    for i, metrics in zip(todo, map_processes(_train_cell, jobs, workers)):
        finish(i, metrics)
    if bar is not None:
        bar.close()
    return rows


def summarize_rows(rows: list[dict], by: tuple[str, ...], value: str = "test_acc") -> pa.Table:
    """One row per distinct ``by`` key, in first-seen order: ``value`` over seeds.

    Columns: the ``by`` columns, ``n``, ``mean``, ``std``, ``ci95_lo``, ``ci95_hi``
    (Student-t) and, when the rows have ``steps``, its mean.
    """
    from curate.train import summarize

    groups: dict = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in by), []).append(row)
    out = []
    for key, members in groups.items():
        stats = summarize([r[value] for r in members])
        low, high = stats["ci95"] or (None, None)
        row = {**dict(zip(by, key)), "n": stats["n"], "mean": stats["mean"],
               "std": stats["std"], "ci95_lo": low, "ci95_hi": high}
        if "steps" in members[0]:
            row["steps"] = float(np.mean([r["steps"] for r in members]))
        out.append(row)
    return pa.Table.from_pylist(out)


def runs_footer(result) -> str:
    """The report's last line: runs trained and reused, scores computed and reused, time."""
    return (f"Runs: {result.results.num_rows} ({result.trained} trained, {result.reused} "
            f"reused from the cache); scores: {result.scores_computed} computed, "
            f"{result.scores_reused} reused. Wall time: {result.seconds:.1f} s.")


def write_tables(out: Path, results: pa.Table, summary: pa.Table) -> None:
    """``results.parquet``, ``results.csv`` and ``summary.csv`` in ``out``."""
    from curate.io import write_table

    write_table(results, out / "results.parquet")
    write_table(results, out / "results.csv")
    write_table(summary, out / "summary.csv")


class ScoreCache:
    """Score tables computed once per (scorer, parameters, data) and kept as Parquet.

    ``get(score, params, table)`` returns the scorer's table for ``table``, read from
    ``<folder>/<key>.parquet`` when an earlier run computed it; ``computed`` and
    ``reused`` count both cases.
    """

    def __init__(self, folder: Path, fingerprints: dict):
        self.folder, self.fingerprints = Path(folder), fingerprints
        self.computed = self.reused = 0
        self._tables: dict = {}

    def key(self, score: str, params: dict) -> str:
        return fingerprint({"score": score, "params": params, "data": self.fingerprints["data"],
                            "curate": self.fingerprints["curate"]})

    def get(self, score: str, params: dict, table: pa.Table) -> pa.Table:
        import pyarrow.parquet as pq

        from curate.core.registry import make_scorer
        from curate.executor import score_source
        from curate.io import Source, write_table

        key = self.key(score, params)
        if key in self._tables:
            return self._tables[key]
        path = self.folder / f"{key}.parquet"
        if path.exists():
            self.reused += 1
            scores = pq.read_table(path)
        else:
            self.folder.mkdir(parents=True, exist_ok=True)
            scorer = make_scorer(score, params)
            scores = score_source([scorer], Source(table))[scorer.name]
            write_table(scores, path)
            self.computed += 1
        self._tables[key] = scores
        return scores
