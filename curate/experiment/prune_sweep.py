"""The prune sweep: test accuracy of models trained on selected subsets or schedules.

    from curate.experiment import prune_sweep
    from curate.train import TrainConfig
    sweep = prune_sweep("builtin:mnist1d", "builtin:mnist1d:split=test",
                        methods=["random", "rs2", "el2n-hard", "el2n-easy",
                                 {"name": "el2n-ccs", "filter": "ccs", "params": {"beta": 0.1},
                                  "score": "el2n", "score_params": {"model": "cnn1d"}}],
                        fractions=[0.3, 0.5, 0.7], seeds=[0, 1, 2],
                        train_config=TrainConfig(model="cnn1d", epochs=30), out_dir="sweep")
    sweep.results      # one row per run; sweep.summary: one row per (method, fraction)

A method is any registered filter with its parameters over any registered scorer, a
registered schedule (RS2), or a given selection (:mod:`curate.experiment.methods`).
For every method x kept fraction x seed, the method picks the run's training data
(a fixed subset, or a schedule of batches), a model is trained on it with
:func:`curate.train.train` and its test accuracy recorded; the full data (fraction
1.0, method ``"full"``) is trained once per seed as the baseline. A method that takes
no fraction (``threshold``, a selection) runs once per seed at the fraction it keeps.

Budget rules (stated in every row's ``budget``):

- ``"same-steps"``: every run takes the optimizer steps of the full data, i.e. the
  config's ``steps``, or ``epochs * ceil(n / batch_size)`` for the full ``n``.
- ``"same-epochs"``: every run takes the config's ``epochs`` over its own subset, so
  smaller subsets take fewer steps (needs a config with ``epochs``); for a schedule an
  epoch is its ``epoch_size`` (RS2: one round over its per-round subset).

Caching: score tables are computed once per (scorer, parameters, data fingerprint)
through :func:`curate.executor.score_source` and kept in ``out_dir/scores/``, unless
``scores`` hands the sweep precomputed ones; each finished run is kept in
``out_dir/cells/``, keyed by a fingerprint of its whole configuration, its data, the
data and test-data fingerprints and the curate version. A re-run of the same sweep
reuses both (rows say ``reused=True``).

Outputs in ``out_dir``: ``results.parquet`` and ``results.csv`` (the runs),
``summary.csv`` (mean, std and 95% Student-t interval of test accuracy per method and
fraction), ``accuracy_vs_fraction.png`` and ``report.md``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.core.cache import Cache
from curate.core.errors import CurateError
from curate.core.hashing import fingerprint
from curate.experiment.cells import (
    Cell,
    Scores,
    cell_key,
    load_data,
    run_cells,
    runs_footer,
    summarize_rows,
)
from curate.experiment.methods import Choice, Method
from curate.experiment.outputs import ExperimentResult, write_result
from curate.reporting import band, baseline_band, interval_text, markdown_table

BUDGETS = ("same-steps", "same-epochs")
PLOT_NAME = "accuracy_vs_fraction.png"
RESULT_COLUMNS = ("method", "score", "policy", "keep", "fraction", "n_kept", "seed", "budget",
                  "steps", "epochs", "test_acc", "test_loss", "seconds", "reused")


@dataclass
class SweepResult(ExperimentResult):
    """What :func:`prune_sweep` produced.

    ``results``: one row per run (columns :data:`RESULT_COLUMNS`; ``policy`` says how
    the method picked its data: the filter, the schedule, ``selection``, or
    ``filter+schedule``); ``summary``: one row per (method, fraction) with ``n``,
    ``mean``, ``std``, ``ci95_lo``, ``ci95_hi`` of test accuracy and the mean ``steps``;
    ``subsets``: (method, fraction, seed) -> training positions of the fixed-subset runs;
    counts of runs trained / reused and scores computed / reused; ``seconds``: wall time;
    ``report``: the path of ``report.md``.
    """

    results: pa.Table
    summary: pa.Table
    subsets: dict
    out_dir: Path
    settings: dict = dataclasses.field(default_factory=dict)

    def tables(self) -> dict:
        return {"results.parquet": self.results, "results.csv": self.results,
                "summary.csv": self.summary}

    def figures(self) -> dict:
        return {PLOT_NAME: accuracy_figure(self.summary)}

    def markdown(self) -> str:
        return report_markdown(self)


def prune_sweep(data, test_data, *, methods, fractions, seeds=(0, 1, 2),
                budget: str = "same-steps", train_config, score_seeds=None, out_dir,
                workers: int = 1, progress: bool = False, scores: dict | None = None,
                selection=None) -> SweepResult:
    """Train on the data each method picks at each kept fraction, over seeds.

    Args:
        data: the training data, anything :class:`curate.io.Source` reads (with ``id``,
            ``label`` and inputs, as the built-in datasets).
        test_data: the test data, likewise.
        methods: method dicts or shorthands (:mod:`curate.experiment.methods`), each
            checked before anything runs.
        fractions: kept fractions in (0, 1]; the full-data baseline is always added.
        seeds: training seeds; every cell runs once per seed (filters and schedules that
            take a seed get the run's).
        budget: ``"same-steps"`` or ``"same-epochs"`` (see the module docstring).
        train_config: a :class:`curate.train.TrainConfig` for every run (its model must
            be a zoo name so that it can be hashed and cached).
        score_seeds: the scorers' ``seeds`` unless a method's ``score_params`` sets it
            (None: the scorer's default).
        out_dir: folder for caches and outputs (created).
        workers: > 1 trains runs in that many spawned processes, one torch thread each.
        progress: show a progress bar over the runs.
        scores: precomputed score tables, scorer name -> table with ``id`` (e.g. those a
            recipe's score steps computed), used instead of scoring again.
        selection: the selection the recipe's steps built, for methods with
            ``selection: "selection"``.
    """
    start = time.perf_counter()
    if budget not in BUDGETS:
        raise CurateError(f"budget must be one of {', '.join(BUDGETS)}, got {budget!r}")
    if budget == "same-epochs" and train_config.epochs is None:
        raise CurateError("budget 'same-epochs' needs a train_config with epochs=...")
    if not isinstance(train_config.model, str):
        raise CurateError("train_config.model must be a zoo name for a cached sweep")
    fractions = sorted({float(f) for f in fractions} - {1.0})
    if any(not 0 < f < 1 for f in fractions):
        raise CurateError(f"fractions must lie in (0, 1], got {fractions}")
    prepared = [Method(m, score_seeds=score_seeds, selection=selection) for m in methods]
    names = [m.name for m in prepared]
    if len(set(names)) != len(names) or "full" in names:
        raise CurateError(f"method names must be distinct and not 'full': {names}")
    seeds = [int(s) for s in seeds]
    out = Path(out_dir)

    table, train_set, test_set, fingerprints = load_data(data, test_data)
    score_tables = Scores(Cache(out / "scores"), fingerprints, scores)
    for method in prepared:
        method.check_data(table, score_tables)
    full_steps = train_config.total_steps(len(train_set))
    every = np.arange(len(train_set))

    cells = []
    for seed in seeds:
        stub = {"method": "full", "score": None, "policy": None, "keep": None,
                "fraction": 1.0, "seed": seed}
        cells.append(_cell(stub, None, Choice(every, 1.0), train_config, budget, full_steps,
                           fingerprints))
        for method in prepared:
            for fraction in (fractions if method.takes_fraction else [None]):
                choice = method.choose(fraction, seed, table, train_set.ids, score_tables)
                stub = {"method": method.name, "score": method.spec["score"],
                        "policy": method.policy,
                        "keep": choice.filter.params().get("keep") if choice.filter else None,
                        "fraction": choice.fraction, "seed": seed}
                cells.append(_cell(stub, method, choice, train_config, budget, full_steps,
                                   fingerprints))

    rows = run_cells(cells, train_set, test_set, out / "cells", workers=workers,
                     progress=progress, desc="prune sweep")
    results = pa.Table.from_pylist(rows).select(list(RESULT_COLUMNS))
    subsets = {(c.stub["method"], c.stub["fraction"], c.stub["seed"]): c.data["positions"]
               for c in cells if "positions" in c.data}
    reused = sum(r["reused"] for r in rows)
    result = SweepResult(
        results=results, summary=summarize_rows(rows, ("method", "fraction")), subsets=subsets,
        trained=len(rows) - reused, reused=reused, scores_computed=score_tables.computed,
        scores_reused=score_tables.reused, seconds=time.perf_counter() - start, out_dir=out,
        settings={"budget": budget, "config": train_config, "full_steps": full_steps})
    write_result(result, out)
    return result


def _cell(stub: dict, method: Method | None, choice: Choice, config, budget: str,
          full_steps: int, fingerprints: dict) -> Cell:
    """One run: a fixed subset (``positions``) or a schedule (``batches``) under the budget."""
    from curate.core.registry import SCHEDULES, build

    params = None if method is None else choice.schedule_params
    if params is None:
        if budget == "same-steps":
            config = dataclasses.replace(config, steps=full_steps, epochs=None)
        stub = {**stub, "n_kept": len(choice.positions), "budget": budget}
        key = cell_key(stub, config, fingerprint(choice.positions.tolist()), fingerprints,
                       method=None if method is None else method.key(choice))
        return Cell(stub, config, {"positions": choice.positions}, key)
    length = {"steps": full_steps} if budget == "same-steps" else {"epochs": config.epochs}
    try:
        schedule = build(SCHEDULES, method.spec["schedule"],
                         {**params, "positions": choice.positions,
                          "batch_size": config.batch_size, **length})
    except CurateError as exc:
        raise CurateError(f"method {method.name!r}: {exc}") from None
    config = dataclasses.replace(config, steps=schedule.steps, epochs=None)
    stub = {**stub, "n_kept": schedule.epoch_size, "budget": budget}
    key = cell_key(stub, config, method.data_key(choice), fingerprints,
                   method=method.key(choice))
    return Cell(stub, config, {"batches": schedule}, key)


def accuracy_figure(summary: pa.Table):
    """Mean test accuracy vs kept fraction per method, shaded 95% intervals, full data as a band."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    rows = summary.to_pylist()
    for row in rows:
        if row["method"] == "full":
            baseline_band(ax, row, "full data")
    for method in dict.fromkeys(r["method"] for r in rows if r["method"] != "full"):
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["fraction"])
        band(ax, [r["fraction"] for r in mine], mine, method, marker="o")
    ax.set_xlabel("fraction of training data kept")
    ax.set_ylabel("test accuracy")
    ax.set_title("Test accuracy vs kept fraction (mean, 95% CI over seeds)")
    ax.legend(fontsize=8)
    return fig


def report_markdown(result: SweepResult) -> str:
    """The sweep's report: budget rule, table of means and intervals, plot, wall time."""
    budget, config = result.settings["budget"], result.settings["config"]
    rule = (f"same-steps: every run takes {result.settings['full_steps']} optimizer steps (the "
            "full data's budget), whatever the subset size" if budget == "same-steps" else
            f"same-epochs: every run takes {config.epochs} epochs over its own subset "
            "(smaller subsets take fewer steps)")
    lines = ["# Prune sweep", "", f"Budget rule: {rule}.", "",
             f"Model {config.model}, optimizer {config.optimizer}, lr {config.lr}, batch "
             f"{config.batch_size}, schedule {config.schedule}.", ""]
    lines += markdown_table(
        ["method", "fraction", "n", "mean test acc", "95% CI", "steps"],
        [[row["method"], f"{row['fraction']:g}", row["n"], f"{row['mean']:.4f}",
          interval_text(row), f"{row['steps']:g}"] for row in result.summary.to_pylist()])
    lines += ["", f"![test accuracy vs kept fraction]({PLOT_NAME})", "",
              runs_footer(result), ""]
    return "\n".join(lines)
