"""Lottery tickets as an experiment: IMP's runs summarized, plotted and reported.

The training loop and the measurements are :func:`curate.train.lottery.imp`'s, which
returns plain rows; :class:`LotteryResult` holds them as tables with the per-level
summaries over seeds, the accuracy and barrier plots and the report, written by the
one experiment writer (:func:`curate.experiment.outputs.write_result`).

:func:`run_imp` caches a finished IMP run (its rows, not its weights) in a
:class:`curate.core.cache.Cache`, keyed by the config, the options and the data
fingerprints, so that a re-run of the same experiment trains nothing.
:func:`lottery` is the registered experiment ``lottery``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from curate.core.cache import Cache
from curate.core.hashing import fingerprint
from curate.experiment.cells import (
    as_train_config,
    cached_run,
    config_key,
    load_data,
    runs_footer,
    seed_list,
)
from curate.experiment.methods import selection_positions
from curate.experiment.outputs import ExperimentResult, write_result
from curate.reporting import band, baseline_band, markdown_table

if TYPE_CHECKING:  # the harness imports torch: loaded when a run needs it
    from curate.train.lottery import ImpRuns

ACCURACY_PLOT = "accuracy_vs_sparsity.png"
BARRIER_PLOT = "barrier_vs_level.png"


@dataclass
class LotteryResult(ExperimentResult):
    """IMP's measurements as tables, with summaries (see :class:`curate.train.lottery.ImpRuns`
    for the rows).

    - ``runs``, ``barriers``, ``curves``: the rows of :class:`ImpRuns` as tables
      (:data:`RUNS_SCHEMA`, :data:`BARRIERS_SCHEMA`, :data:`CURVES_SCHEMA`).
    - ``summary``, per (level, kind): ``level, kind, density, sparsity, n, mean, std,
      ci95_lo, ci95_hi`` of test_acc over seeds (Student t), ``reached`` (seeds that hit
      the target) and ``steps_to_target`` (their mean; null when none).
    - ``barrier_summary``, per (kind, level, other_level): ``sparsity, n, mean, std,
      ci95_lo, ci95_hi`` of ``barrier`` and ``barrier_linear_mean``.

    Also ``masks``, ``rewind_states``, ``states`` (empty when the runs were read back
    from the cache), the ``settings``, the wall time in ``seconds``, the runs
    ``trained`` and ``reused``, ``scores_computed`` / ``scores_reused`` (0: IMP scores
    nothing) and ``report`` (the path of ``report.md`` once written).
    """

    runs: pa.Table
    summary: pa.Table
    barriers: pa.Table
    barrier_summary: pa.Table
    curves: pa.Table
    settings: dict
    masks: dict = field(default_factory=dict, repr=False)
    rewind_states: dict = field(default_factory=dict, repr=False)
    states: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_runs(cls, runs: ImpRuns, reused: bool = False) -> LotteryResult:
        """Tables and summaries of ``runs`` (``reused``: they were read from the cache)."""
        return cls(runs=pa.Table.from_pylist(runs.runs, schema=RUNS_SCHEMA),
                   summary=summarize_runs(runs.runs),
                   barriers=pa.Table.from_pylist(runs.barriers, schema=BARRIERS_SCHEMA),
                   barrier_summary=summarize_barriers(runs.barriers),
                   curves=pa.Table.from_pylist(runs.curves, schema=CURVES_SCHEMA),
                   settings=runs.settings, seconds=runs.seconds, masks=runs.masks,
                   rewind_states=runs.rewind_states, states=runs.states,
                   trained=0 if reused else len(runs.runs),
                   reused=len(runs.runs) if reused else 0)

    def tables(self) -> dict:
        return {"runs.parquet": self.runs, "runs.csv": self.runs, "summary.csv": self.summary,
                "barriers.csv": self.barriers, "barrier_summary.csv": self.barrier_summary,
                "curves.parquet": self.curves}

    def figures(self) -> dict:
        return {ACCURACY_PLOT: accuracy_figure(self.summary),
                BARRIER_PLOT: barrier_figure(self.barrier_summary)}

    def markdown(self) -> str:
        return report_markdown(self)


def run_imp(config, train_data, test_data, *, cache: Cache | None = None,
            fingerprints: dict | None = None, workers: int = 1, **options) -> tuple:
    """``(ImpRuns, reused)``: :func:`curate.train.lottery.imp` with ``options``, or its
    rows read back from ``cache`` (``reused=True``: no weights then) when an earlier run
    with the same config, options and data ``fingerprints`` stored them."""
    from curate.train.lottery import ImpRuns, imp

    pretrain = options.get("pretrain")
    key = fingerprint({"imp": {**options, "pretrain": None if pretrain is None else
                               fingerprint(np.asarray(pretrain).tolist())},
                       "config": config_key(config), **(fingerprints or {})})
    return cached_run(cache, key, config,
                      lambda: imp(config, train_data, test_data, workers=workers, **options),
                      ImpRuns, fields=("runs", "barriers", "curves", "settings", "seconds"))


def lottery(data, test_data, *, train_config, seeds, out_dir, workers: int = 1,
            progress: bool = False, scores=None, selection=None, levels: int,
            fraction: float = 0.2, rewind_step: int = 0, controls=("random_mask", "reinit"),
            output_fraction: float | None = None, scope: str = "global",
            target_acc: float | None = None, eval_every: int | None = None,
            barrier_points: int = 11, instability: str = "dense",
            pretrain=None) -> LotteryResult:
    """IMP with rewinding, controls and barriers (:func:`curate.train.lottery.imp`), cached
    in ``out_dir/cells`` and written to ``out_dir``.

    ``pretrain`` picks the data of the 0..k phase: None (all of it), ``"selection"`` (the
    examples the recipe's ``selection`` keeps), or a selection table or parquet path.
    ``scores`` and ``progress`` are not used. The other parameters are :func:`imp`'s.
    """
    started = time.perf_counter()
    config = as_train_config(train_config)
    _, train_set, test_set, fingerprints = load_data(data, test_data)
    positions = None
    if pretrain is not None:
        what = "pretrain" if isinstance(pretrain, pa.Table) or pretrain == "selection" \
            else f"pretrain {pretrain}"
        positions = selection_positions(pretrain, selection, train_set.ids, what)
    runs, reused = run_imp(
        config, train_set, test_set, cache=Cache(Path(out_dir) / "cells"),
        fingerprints=fingerprints, workers=workers, levels=levels, fraction=fraction,
        rewind_step=rewind_step, seeds=seed_list(seeds), controls=list(controls),
        output_fraction=output_fraction, scope=scope, target_acc=target_acc,
        eval_every=eval_every, barrier_points=barrier_points, pretrain=positions,
        instability=instability)
    result = LotteryResult.from_runs(runs, reused=reused)
    result.seconds = time.perf_counter() - started
    write_result(result, out_dir)
    return result


RUNS_SCHEMA = pa.schema([
    ("seed", pa.int64()), ("level", pa.int64()), ("kind", pa.string()), ("kept", pa.int64()),
    ("total", pa.int64()), ("density", pa.float64()), ("sparsity", pa.float64()),
    ("test_acc", pa.float64()), ("test_loss", pa.float64()), ("train_acc", pa.float64()),
    ("train_loss", pa.float64()), ("steps", pa.int64()), ("steps_to_target", pa.int64()),
    ("seconds", pa.float64())])
BARRIERS_SCHEMA = pa.schema([
    ("seed", pa.int64()), ("kind", pa.string()), ("level", pa.int64()),
    ("other_level", pa.int64()), ("sparsity", pa.float64()), ("barrier", pa.float64()),
    ("barrier_linear", pa.float64()), ("max_error", pa.float64()),
    ("endpoint_error_mean", pa.float64()), ("error_a", pa.float64()),
    ("error_b", pa.float64())])
CURVES_SCHEMA = pa.schema([
    ("seed", pa.int64()), ("level", pa.int64()), ("kind", pa.string()), ("step", pa.int64()),
    ("test_acc", pa.float64()), ("test_loss", pa.float64())])


def summarize_runs(runs: list[dict]) -> pa.Table:
    """Per (level, kind): density and the mean and 95% interval of test_acc over seeds."""
    from curate.train.lottery import KINDS
    from curate.train.seeds import summarize

    groups: dict = {}
    for row in runs:
        groups.setdefault((row["level"], row["kind"]), []).append(row)
    out = []
    for (level, kind), rows in sorted(groups.items(),
                                      key=lambda item: (item[0][0], KINDS.index(item[0][1]))):
        stats = summarize([r["test_acc"] for r in rows])
        low, high = stats["ci95"] or (None, None)
        reached = [r["steps_to_target"] for r in rows if r["steps_to_target"] is not None]
        density = float(np.mean([r["density"] for r in rows]))
        out.append({"level": level, "kind": kind, "density": density, "sparsity": 1 - density,
                    "n": stats["n"], "mean": stats["mean"], "std": stats["std"],
                    "ci95_lo": low, "ci95_hi": high, "reached": len(reached),
                    "steps_to_target": float(np.mean(reached)) if reached else None})
    return pa.Table.from_pylist(out, schema=SUMMARY_SCHEMA)


SUMMARY_SCHEMA = pa.schema([
    ("level", pa.int64()), ("kind", pa.string()), ("density", pa.float64()),
    ("sparsity", pa.float64()), ("n", pa.int64()), ("mean", pa.float64()),
    ("std", pa.float64()), ("ci95_lo", pa.float64()), ("ci95_hi", pa.float64()),
    ("reached", pa.int64()), ("steps_to_target", pa.float64())])
BARRIER_SUMMARY_SCHEMA = pa.schema([
    ("kind", pa.string()), ("level", pa.int64()), ("other_level", pa.int64()),
    ("sparsity", pa.float64()), ("n", pa.int64()), ("mean", pa.float64()),
    ("std", pa.float64()), ("ci95_lo", pa.float64()), ("ci95_hi", pa.float64()),
    ("barrier_linear_mean", pa.float64())])


def summarize_barriers(barriers: list[dict]) -> pa.Table:
    """Per (kind, level, other_level): mean and 95% interval of the barrier over seeds."""
    from curate.train.seeds import summarize

    groups: dict = {}
    for row in barriers:
        groups.setdefault((row["kind"], row["level"], row["other_level"]), []).append(row)
    out = []
    for (kind, level, other), rows in sorted(groups.items()):
        stats = summarize([r["barrier"] for r in rows])
        low, high = stats["ci95"] or (None, None)
        out.append({"kind": kind, "level": level, "other_level": other,
                    "sparsity": float(np.mean([r["sparsity"] for r in rows])),
                    "n": stats["n"], "mean": stats["mean"], "std": stats["std"],
                    "ci95_lo": low, "ci95_hi": high,
                    "barrier_linear_mean": float(np.mean([r["barrier_linear"] for r in rows]))})
    return pa.Table.from_pylist(out, schema=BARRIER_SUMMARY_SCHEMA)


def accuracy_figure(summary: pa.Table):
    """Test accuracy vs % of weights remaining (log axis, sparser to the right): ticket and
    controls with 95% bands, the dense network as a grey band."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    rows = summary.to_pylist()
    dense = [r for r in rows if r["kind"] == "dense"]
    if dense:
        baseline_band(ax, dense[0], "dense")
    for kind in ("ticket", "reinit", "random_mask"):
        mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["level"])
        if not mine:
            continue
        band(ax, [100 * r["density"] for r in mine], mine, kind, marker="o", ms=4)
    ax.set_xscale("log")
    ax.set_xticks([t for t in (100, 50, 20, 10, 5, 2, 1, 0.5, 0.2, 0.1)
                   if t >= min(100 * r["density"] for r in rows)], minor=False)
    ax.xaxis.set_major_formatter("{x:g}")
    ax.xaxis.set_minor_formatter("")
    ax.invert_xaxis()
    ax.set_xlabel("% of weights remaining (log scale)")
    ax.set_ylabel("test accuracy")
    ax.set_title("IMP: test accuracy vs sparsity (mean, 95% CI over seeds)")
    ax.legend(fontsize=8)
    return fig


def barrier_figure(barrier_summary: pa.Table):
    """Error barrier (points of error) vs level: successive levels L -> L+1 plotted at L+1,
    instability at L, with 95% bands; the 2-point stability line dashed."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    rows = barrier_summary.to_pylist()
    for kind, label in (("successive", "levels L-1 and L"),
                        ("instability", "two data orders at level L")):
        mine = sorted((r for r in rows if r["kind"] == kind), key=lambda r: r["other_level"])
        if not mine:
            continue
        band(ax, [r["other_level"] for r in mine], mine, label, scale=100, marker="o", ms=4)
    ax.axhline(2.0, color="0.3", ls="--", lw=1, label="2 points")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_xlabel("level L")
    ax.set_ylabel("error barrier (points)")
    ax.set_title("Linear-path error barrier (mean, 95% CI over seeds)")
    ax.legend(fontsize=8)
    return fig


def _fmt(row) -> str:
    if row is None:
        return "-"
    if row["ci95_lo"] is None:
        return f"{row['mean']:.4f}"
    return f"{row['mean']:.4f} [{row['ci95_lo']:.4f}, {row['ci95_hi']:.4f}]"


def report_markdown(result: LotteryResult) -> str:
    """The run's report: settings, per-level accuracy and barrier table, plots, wall time."""
    s = result.settings
    by = {(r["level"], r["kind"]): r for r in result.summary.to_pylist()}
    bars = {(r["kind"], r["other_level"]): r for r in result.barrier_summary.to_pylist()}
    levels = sorted({r["level"] for r in result.summary.to_pylist()})
    model = s["model"] + (f" {s['model_params']}" if s["model_params"] else "")
    output = (f", output layer at {s['output_fraction']:g}" if s["output_fraction"] is not None
              else "")
    pretrain = (f" (pre-trained on {s['pretrain_examples']} examples)"
                if s["pretrain_examples"] else "")
    lines = [
        "# Lottery tickets (IMP with rewinding)", "",
        f"Model {model}, optimizer {s['optimizer']}, lr {s['lr']}, batch {s['batch_size']}, "
        f"schedule {s['schedule']}, {s['total_steps']} steps; seeds {s['seeds']}. Each level "
        f"prunes {s['fraction']:g} of the remaining weights ({s['scope']} magnitude{output}), "
        f"rewinds to step {s['rewind_step']}{pretrain} and trains "
        f"{s['total_steps'] - s['rewind_step']} steps.", "",
        "Test accuracy, mean [95% CI] over seeds. Barriers as error fractions (0.02 = 2 "
        "points): the worst error on the linear path minus the endpoints' mean error, on the "
        "test data.", ""]
    rows = []
    for level in levels:
        main = by.get((level, "dense" if level == 0 else "ticket"))
        rows.append([level, f"{100 * main['density']:.2f}", _fmt(main),
                     _fmt(by.get((level, "reinit"))), _fmt(by.get((level, "random_mask"))),
                     _fmt(bars.get(("successive", level))),
                     _fmt(bars.get(("instability", level)))])
    lines += markdown_table(["level", "% remaining", "ticket (dense at 0)", "reinit",
                             "random mask", "barrier L-1 to L", "instability"], rows)
    lines += ["", f"![accuracy vs sparsity]({ACCURACY_PLOT})", "",
              f"![barrier vs level]({BARRIER_PLOT})", "",
              runs_footer(result, scores=False), ""]
    return "\n".join(lines)
