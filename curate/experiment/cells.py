"""What every experiment shares: its data, cached training runs ("cells"), score tables.

A *cell* is one training run: a row stub (the experiment's own columns), the
:class:`curate.train.TrainConfig` it runs under, the keyword arguments of
:func:`curate.train.train` that pick its data (``positions`` for a fixed subset,
``batches`` for a schedule, nothing for all the data in shuffled epochs) and a cache
key. :func:`run_cells` trains the cells that have no cached result, in parallel
processes if asked, and keeps each finished run in the experiment's
:class:`curate.core.cache.Cache` (``<folder>/<key>.json``) so that a re-run reads it back.

:class:`Scores` gives an experiment its score tables: a precomputed table (from a
recipe's score step) when the experiment was handed one, else the cached table, else
one computed through :func:`curate.executor.score_source`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.core.cache import Cache
from curate.core.errors import CurateError
from curate.core.hashing import fingerprint

#: ``final`` metrics of a run kept in every result row.
RUN_METRICS = ("steps", "epochs", "test_acc", "test_loss", "seconds")
#: TrainConfig fields added after runs were first cached, with the value that keeps the
#: earlier behaviour: left out of cache keys at that value, so earlier runs stay valid.
_LATER_FIELDS = {"standardize": False}


@dataclass
class Cell:
    """One run: ``stub`` (row columns), ``config``, ``data`` (train kwargs), ``key``."""

    stub: dict
    config: object
    data: dict = field(default_factory=dict)
    key: str = ""


def load_data(data, test_data) -> tuple:
    """``(table, train_set, test_set, fingerprints)`` of an experiment's data.

    ``data`` and ``test_data`` are anything :class:`curate.io.Source` reads, or a
    ``Source`` already opened with its options (a recipe's ``max_doc_bytes``, ...).
    ``table``: the training data as read (scorers take it); ``train_set``/``test_set``:
    :class:`curate.train.TensorData`; ``fingerprints``: the data and test-data content
    fingerprints and curate's version, which every cache key includes.
    """
    import curate
    from curate.io import Source
    from curate.train import TensorData

    source, test_source = (d if isinstance(d, Source) else Source(d) for d in (data, test_data))
    table = source.read_all()
    fingerprints = {"data": source.fingerprint(), "test": test_source.fingerprint(),
                    "curate": curate.__version__}
    return (table, TensorData.from_table(table),
            TensorData.from_table(test_source.read_all()), fingerprints)


def config_key(config) -> dict:
    """The config as it enters cache keys (fields added later left out at their old value)."""
    values = dataclasses.asdict(config)
    for name, old in _LATER_FIELDS.items():
        if name in values and values[name] == old:
            del values[name]
    return values


def cell_key(stub: dict, config, data_key, fingerprints: dict, **extra) -> str:
    """Cache key of a run: its row, whole config, a key of its data, the data fingerprints."""
    return fingerprint({"cell": stub, "config": config_key(config), "data": data_key,
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
    from curate.train.seeds import map_processes

    cache = Cache(folder)
    rows: list = [None] * len(cells)
    todo = []
    for i, cell in enumerate(cells):
        stored = cache.get_json(cell.key)
        if stored is not None:
            rows[i] = {**cell.stub, **stored["metrics"], "reused": True}
        else:
            todo.append(i)
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc=desc, unit="run")
    jobs = [(cells[i], train_set, test_set) for i in todo]
    for i, metrics in zip(todo, map_processes(_train_cell, jobs, workers)):
        cell = cells[i]
        cache.put_json(cell.key, {"row": cell.stub, "config": dataclasses.asdict(cell.config),
                                  "metrics": metrics})
        rows[i] = {**cell.stub, **metrics, "reused": False}
        if bar is not None:
            bar.update()
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


def runs_footer(result, scores: bool = True) -> str:
    """The report's last line: runs trained and reused, scores computed and reused (unless
    the experiment scores nothing), wall time."""
    text = (f"Runs: {result.trained + result.reused} ({result.trained} trained, "
            f"{result.reused} reused from the cache)")
    if scores:
        text += (f"; scores: {result.scores_computed} computed, {result.scores_reused} "
                 "reused")
    return text + f". Wall time: {result.seconds:.1f} s."


class Scores:
    """Score tables by (scorer, parameters) for one experiment's data.

    ``get(name, params, table)`` returns, in this order of preference: ``precomputed[name]``
    (tables an earlier recipe step computed, each with an ``id`` column), the table kept
    in ``cache`` under :meth:`key` by an earlier run, or a table computed now with
    :func:`curate.executor.score_source` and kept there. ``computed`` counts tables
    computed, ``reused`` those read back or precomputed (each distinct table once).
    """

    def __init__(self, cache: Cache, fingerprints: dict, precomputed: dict | None = None):
        self.cache, self.fingerprints = cache, fingerprints
        self.precomputed = dict(precomputed or {})
        self.computed = self.reused = 0
        self._tables: dict = {}
        for name, table in self.precomputed.items():
            if not isinstance(table, pa.Table) or "id" not in table.column_names:
                raise CurateError(f"precomputed scores {name!r}: expected a table with an "
                                  "'id' column")

    def key(self, name: str, params: dict) -> str:
        """Hashes the scorer's full parameters, defaults included, so that a changed default
        (e.g. input standardization) never reuses a table computed under the old one."""
        from curate.core.registry import make_scorer

        full = make_scorer(name, params).params()
        return fingerprint({"score": name, "params": full, "data": self.fingerprints["data"],
                            "curate": self.fingerprints["curate"]})

    def has(self, name: str) -> bool:
        """Whether ``name``'s table is precomputed (no scoring, no text column needed)."""
        return name in self.precomputed

    def get(self, name: str, params: dict, table: pa.Table) -> pa.Table:
        if name in self.precomputed:
            if ("precomputed", name) not in self._tables:
                self._tables[("precomputed", name)] = self.precomputed[name]
                self.reused += 1
            return self.precomputed[name]
        key = self.key(name, params)
        if key not in self._tables:
            scores = self.cache.get_table(key)
            if scores is None:
                from curate.core.registry import make_scorer
                from curate.executor import score_source
                from curate.io import Source

                scorer = make_scorer(name, params)
                scores = score_source([scorer], Source(table))[scorer.name]
                self.cache.put_table(key, scores)
                self.computed += 1
            else:
                self.reused += 1
            self._tables[key] = scores
        return self._tables[key]


def cached_run(cache: Cache | None, key: str, config, compute, rows_type,
               fields: tuple[str, ...] | None = None) -> tuple:
    """``(rows, reused)``: a whole experiment's rows read back from ``cache`` under ``key``
    (``rows_type(**stored)``, ``reused=True``), or ``compute()`` stored there.

    Only a config whose model is a zoo name is cached (a factory cannot be hashed).
    ``fields``: the attributes of the rows that are stored (default: all of them).
    """
    if cache is None or not isinstance(config.model, str):
        return compute(), False
    stored = cache.get_json(key)
    if stored is not None:
        return rows_type(**stored), True
    rows = compute()
    cache.put_json(key, {f: getattr(rows, f) for f in fields} if fields else vars(rows))
    return rows, False


def as_train_config(value, config_type=None):
    """A training config from itself or from a mapping of its fields: ``config_type``
    (default :class:`curate.train.TrainConfig`; :class:`curate.train.lm.LMConfig` for the
    language-model experiments)."""
    from curate.train import TrainConfig

    config_type = config_type or TrainConfig
    if isinstance(value, config_type):
        return value
    if not isinstance(value, dict):
        raise CurateError(f"train_config must be a {config_type.__name__} or a mapping of its "
                          f"fields, got {type(value).__name__}")
    known = [f.name for f in dataclasses.fields(config_type)]
    unknown = [k for k in value if k not in known]
    if unknown:
        raise CurateError(f"train_config has no field {unknown[0]!r}; fields: {', '.join(known)}")
    return config_type(**value)


def seed_list(seeds) -> list[int]:
    """Seeds as a list: a count ``n`` means ``0..n-1``; a list is taken as it is."""
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        if seeds < 1:
            raise CurateError(f"seeds must be a positive count or a list, got {seeds!r}")
        return list(range(int(seeds)))
    try:
        out = [int(s) for s in seeds]
    except (TypeError, ValueError):
        raise CurateError(f"seeds must be a positive count or a list of integers, got "
                          f"{seeds!r}") from None
    if not out or len(set(out)) != len(out):
        raise CurateError(f"seeds must be distinct integers, at least one, got {seeds!r}")
    return out
