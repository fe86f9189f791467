"""The prune sweep: test accuracy of models trained on score-selected subsets.

    from curate.experiment import prune_sweep
    from curate.train import TrainConfig
    sweep = prune_sweep("builtin:mnist1d", "builtin:mnist1d:split=test",
                        methods=["random", "el2n-hard", "el2n-easy",
                                 {"name": "ccs", "score": "el2n", "policy": "ccs", "beta": 0.1}],
                        fractions=[0.3, 0.5, 0.7], seeds=[0, 1, 2],
                        train_config=TrainConfig(model="cnn1d", epochs=30), out_dir="sweep")
    sweep.results      # one row per run; sweep.summary: one row per (method, fraction)

For every method x kept fraction x seed, the method's policy picks a subset from the
method's scores, a model is trained on it with :func:`curate.train.train` and its test
accuracy recorded; the full data (fraction 1.0, method ``"full"``) is trained once per
seed as the baseline.

Budget rules (stated in every row's ``budget``):

- ``"same-steps"``: every run takes the optimizer steps of the full data, i.e. the
  config's ``steps``, or ``epochs * ceil(n / batch_size)`` for the full ``n``.
- ``"same-epochs"``: every run takes the config's ``epochs`` over its own subset, so
  smaller subsets take fewer steps (needs a config with ``epochs``); for RS2 an epoch
  is one round over its per-round subset.

Caching: scores are computed once per (scorer, parameters, data fingerprint) and kept
in ``out_dir/scores/<key>.parquet``; each finished run is kept in
``out_dir/cells/<key>.json``, keyed by an xxh3 hash of the canonical JSON of its whole
configuration, the data and test-data fingerprints and the curate version. A re-run
of the same sweep reuses both (rows say ``reused=True``).

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

from curate.core.errors import CurateError
from curate.experiment.cells import (
    Cell,
    ScoreCache,
    cell_key,
    fingerprint,
    load_data,
    run_cells,
    runs_footer,
    summarize_rows,
    write_tables,
)
from curate.io import write_figure, write_text
from curate.reporting import band, baseline_band, interval_text, markdown_table

BUDGETS = ("same-steps", "same-epochs")
POLICIES = ("keep_fraction", "random", "ccs", "rs2")
#: Policies that need no score.
UNSCORED = ("random", "rs2")
#: Scores for which a lower value means harder (the rest: higher is harder).
LOWER_IS_HARDER = frozenset({"aum"})
#: Method keys passed on to the policy.
POLICY_KEYS = {"keep_fraction": ("keep", "offset", "balance"),
               "ccs": ("beta", "bins", "balance"),
               "random": (), "rs2": ()}
PLOT_NAME = "accuracy_vs_fraction.png"
RESULT_COLUMNS = ("method", "score", "policy", "keep", "fraction", "n_kept", "seed", "budget",
                  "steps", "epochs", "test_acc", "test_loss", "seconds", "reused")


@dataclass
class SweepResult:
    """What :func:`prune_sweep` produced.

    ``results``: one row per run (columns :data:`RESULT_COLUMNS`); ``summary``: one row
    per (method, fraction) with ``n``, ``mean``, ``std``, ``ci95_lo``, ``ci95_hi`` of
    test accuracy and the mean ``steps``; ``subsets``: (method, fraction, seed) ->
    training positions; counts of runs trained / reused and scores computed / reused;
    ``seconds``: wall time of the sweep.
    """

    results: pa.Table
    summary: pa.Table
    subsets: dict
    trained: int
    reused: int
    scores_computed: int
    scores_reused: int
    seconds: float
    out_dir: Path


def prune_sweep(data, test_data, *, methods, fractions, seeds=(0, 1, 2),
                budget: str = "same-steps", train_config, score_seeds=None, out_dir,
                workers: int = 1, progress: bool = False) -> SweepResult:
    """Train on subsets chosen by each method at each kept fraction, over seeds.

    Args:
        data: the training data, anything :class:`curate.io.Source` reads (with ``id``,
            ``label`` and inputs, as the built-in datasets).
        test_data: the test data, likewise.
        methods: method specs. A dict has ``name``, ``policy`` (``"keep_fraction"``,
            ``"ccs"``, ``"random"``: a static random subset, or ``"rs2"``: a fresh random
            subset every round, see :class:`filters.schedules.RS2Schedule`), for scored
            policies ``score`` (a registered
            scorer), optional ``score_params``, ``by`` (score column; default the score
            name), ``higher_is_harder`` (default False for AUM, else True) and the
            policy's own keys (``keep``/``offset``; ``beta``/``bins``; both take
            ``balance``, a label column for class-balanced budgets). A string is
            shorthand: ``"random"``, ``"rs2"``, ``"<score>-<easy|hard|middle>"`` or
            ``"<score>-ccs"``. Random, RS2 and CCS sampling use the run's seed.
        fractions: kept fractions in (0, 1]; the full-data baseline is always added.
        seeds: training seeds; every cell runs once per seed.
        budget: ``"same-steps"`` or ``"same-epochs"`` (see the module docstring).
        train_config: a :class:`curate.train.TrainConfig` for every run (its model must
            be a zoo name so that it can be hashed and cached).
        score_seeds: the scorers' ``seeds`` unless a method's ``score_params`` sets it
            (None: the scorer's default).
        out_dir: folder for caches and outputs (created).
        workers: > 1 trains runs in that many spawned processes, one torch thread each.
        progress: show a progress bar over the runs.
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
    specs = [method_spec(m) for m in methods]
    names = [s["name"] for s in specs]
    if len(set(names)) != len(names) or "full" in names:
        raise CurateError(f"method names must be distinct and not 'full': {names}")
    seeds = [int(s) for s in seeds]
    out = Path(out_dir)

    table, train_set, test_set, fingerprints = load_data(data, test_data)
    full_steps = train_config.total_steps(len(train_set))

    score_cache = ScoreCache(out / "scores", fingerprints)
    score_tables = [None if spec["policy"] in UNSCORED else
                    score_cache.get(spec["score"], score_params(spec, score_seeds), table)
                    for spec in specs]

    cells = []
    for seed in seeds:
        cells.append(_cell({"method": "full", "score": None, "policy": None, "keep": None,
                            "fraction": 1.0, "seed": seed}, spec=None,
                           positions=np.arange(len(train_set)), config=train_config,
                           budget=budget, full_steps=full_steps, fingerprints=fingerprints))
        for spec, scores in zip(specs, score_tables):
            for fraction in fractions:
                if spec["policy"] == "rs2":
                    cells.append(_rs2_cell(spec, fraction, seed, len(train_set), train_config,
                                           budget, full_steps, fingerprints))
                    continue
                chosen = subset_positions(spec, fraction, seed, scores, table, train_set.ids)
                cells.append(_cell({"method": spec["name"], "score": spec.get("score"),
                                    "policy": spec["policy"], "keep": spec.get("keep"),
                                    "fraction": fraction, "seed": seed},
                                   spec=spec, positions=chosen, config=train_config,
                                   budget=budget, full_steps=full_steps,
                                   fingerprints=fingerprints))

    rows = run_cells(cells, train_set, test_set, out / "cells", workers=workers,
                     progress=progress, desc="prune sweep")
    results = pa.Table.from_pylist(rows).select(list(RESULT_COLUMNS))
    summary = summarize_rows(rows, ("method", "fraction"))
    seconds = time.perf_counter() - start
    subsets = {(c.stub["method"], c.stub["fraction"], c.stub["seed"]): c.data["positions"]
               for c in cells if "positions" in c.data}
    reused = sum(r["reused"] for r in rows)
    result = SweepResult(results=results, summary=summary, subsets=subsets,
                         trained=len(rows) - reused, reused=reused,
                         scores_computed=score_cache.computed,
                         scores_reused=score_cache.reused, seconds=seconds, out_dir=out)
    write_outputs(result, budget, train_config, full_steps)
    return result


def method_spec(method) -> dict:
    """A method as a full dict (see :func:`prune_sweep`); strings are expanded."""
    if isinstance(method, str):
        if method in UNSCORED:
            return {"name": method, "policy": method}
        score, _, how = method.rpartition("-")
        if not score or how not in ("easy", "hard", "middle", "ccs"):
            raise CurateError(f"bad method {method!r}: expected 'random', 'rs2', "
                              "'<score>-<easy|hard|middle>' or '<score>-ccs'")
        if how == "ccs":
            return method_spec({"name": method, "score": score, "policy": "ccs"})
        return method_spec({"name": method, "score": score, "policy": "keep_fraction",
                            "keep": how})
    spec = dict(method)
    if "name" not in spec or spec.get("policy") not in POLICIES:
        raise CurateError(f"method {method!r} needs a name and a policy in {POLICIES}")
    if spec["policy"] not in UNSCORED:
        if "score" not in spec:
            raise CurateError(f"method {spec['name']!r}: policy {spec['policy']!r} needs a "
                              "score")
        spec.setdefault("score_params", {})
        spec.setdefault("by", spec["score"])
        spec.setdefault("higher_is_harder", spec["score"] not in LOWER_IS_HARDER)
    if spec["policy"] == "keep_fraction":
        spec.setdefault("keep", "hard")
    return spec


def score_params(spec: dict, score_seeds) -> dict:
    """The scorer parameters of a method: its ``score_params``, ``seeds`` defaulted."""
    params = dict(spec["score_params"])
    if score_seeds is not None:
        params.setdefault("seeds", score_seeds)
    return params


def subset_positions(spec: dict, fraction: float, seed: int, scores, table: pa.Table,
                     ids) -> np.ndarray:
    """Training positions (sorted) the method keeps at ``fraction`` for ``seed``."""
    from filters import CCS, KeepFraction, RandomSubset, join_labels, select
    from curate.core.tables import kept_positions

    options = {k: spec[k] for k in POLICY_KEYS[spec["policy"]] if k in spec}
    if spec["policy"] == "random":
        scores, policy = table.select(["id"]), RandomSubset(fraction, seed=seed)
    elif spec["policy"] == "ccs":
        policy = CCS(spec["by"], fraction, higher_is_harder=spec["higher_is_harder"],
                     seed=seed, **options)
    else:
        policy = KeepFraction(spec["by"], fraction,
                              higher_is_harder=spec["higher_is_harder"], **options)
    if options.get("balance"):
        scores = join_labels(scores, table, column=options["balance"])
    selection = select(scores, [policy])
    positions = kept_positions(selection, ids)
    if not len(positions):
        raise CurateError(f"method {spec['name']!r} keeps no example at fraction {fraction:g}")
    return positions


def _rs2_cell(spec, fraction, seed, n, config, budget, full_steps, fingerprints) -> Cell:
    """RS2: every round trains on a fresh random ``fraction`` of the data (no fixed subset).

    ``same-steps`` takes the full data's steps; ``same-epochs`` takes the config's epochs
    of rounds, each ``ceil(round_size / batch_size)`` steps.
    """
    from filters.schedules import RS2Schedule

    per_round = RS2Schedule(n, fraction, config.batch_size, 1).round_size
    steps = full_steps if budget == "same-steps" else \
        config.epochs * config.steps_per_epoch(per_round)
    config = dataclasses.replace(config, steps=steps, epochs=None)
    stub = {"method": spec["name"], "score": None, "policy": "rs2", "keep": None,
            "fraction": fraction, "seed": seed, "n_kept": per_round, "budget": budget}
    schedule = RS2Schedule(n, fraction, config.batch_size, steps, seed=seed)
    key = cell_key(stub, config, "rs2", fingerprints, method=spec)
    return Cell(stub, config, {"batches": schedule}, key)


def _cell(stub: dict, *, spec, positions, config, budget, full_steps, fingerprints) -> Cell:
    if budget == "same-steps":
        config = dataclasses.replace(config, steps=full_steps, epochs=None)
    stub = {**stub, "n_kept": len(positions), "budget": budget}
    key = cell_key(stub, config, fingerprint(positions.tolist()), fingerprints, method=spec)
    return Cell(stub, config, {"positions": positions}, key)


def write_outputs(result: SweepResult, budget: str, config, full_steps: int) -> None:
    """results.parquet/.csv, summary.csv, the plot and report.md in ``result.out_dir``."""
    out = result.out_dir
    write_tables(out, result.results, result.summary)
    write_figure(out / PLOT_NAME, accuracy_figure(result.summary))
    write_text(out / "report.md", report_markdown(result, budget, config, full_steps))


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


def report_markdown(result: SweepResult, budget: str, config, full_steps: int) -> str:
    """The sweep's report: budget rule, table of means and intervals, plot, wall time."""
    rule = (f"same-steps: every run takes {full_steps} optimizer steps (the full data's "
            "budget), whatever the subset size" if budget == "same-steps" else
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
