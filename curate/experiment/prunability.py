"""Prunability as an experiment: predicted against observed one-shot prunable fraction.

The measurements are :func:`curate.train.prunability.prunability`'s, which returns
plain rows; :class:`PrunabilityResult` holds them as tables with the plots and the
report, written by the one experiment writer
(:func:`curate.experiment.outputs.write_result`). :func:`sharpness` is the registered
experiment ``sharpness``: it caches the finished measurement (its rows) in
``out_dir/cells``, so a re-run with the same settings and data trains nothing.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
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
from curate.experiment.outputs import ExperimentResult, write_result
from curate.reporting import markdown_table

if TYPE_CHECKING:  # the harness imports torch: loaded when a run needs it
    from curate.train.prunability import PrunabilityRuns

PREDICTED_PLOT = "predicted_vs_observed.png"
ACCURACY_PLOT = "accuracy_vs_fraction.png"
TABLES = ("seeds", "fractions", "spectrum", "displacement", "trajectory")


SEEDS_SCHEMA = pa.schema([
    ("seed", pa.int64()), ("dense_test_acc", pa.float64()), ("dense_train_acc", pa.float64()),
    ("dense_batch_loss", pa.float64()), ("eps", pa.float64()), ("eps_step", pa.int64()),
    ("lambda_max", pa.float64()), ("trace", pa.float64()), ("trace_stderr", pa.float64()),
    ("n_params", pa.int64()), ("top_k", pa.int64()), ("hvps", pa.int64()),
    ("converged", pa.bool_()), ("predicted_lambda_max", pa.float64()),
    ("predicted_gordon", pa.float64()), ("observed", pa.float64()),
    ("observed_no_retrain", pa.float64()), ("lanczos_seconds", pa.float64()),
    ("trace_seconds", pa.float64()), ("sweep_seconds", pa.float64())])
FRACTIONS_SCHEMA = pa.schema([
    ("seed", pa.int64()), ("fraction", pa.float64()), ("kept", pa.int64()),
    ("acc_no_retrain", pa.float64()), ("acc_retrained", pa.float64())])
SPECTRUM_SCHEMA = pa.schema([
    ("seed", pa.int64()), ("rank", pa.int64()), ("eigenvalue", pa.float64())])
DISPLACEMENT_SCHEMA = pa.schema([
    ("seed", pa.int64()), ("fraction", pa.float64()), ("radius", pa.float64())])
TRAJECTORY_SCHEMA = pa.schema([
    ("seed", pa.int64()), ("step", pa.int64()), ("test_acc", pa.float64()),
    ("batch_loss", pa.float64()), ("excess", pa.float64())])


@dataclass
class PrunabilityResult(ExperimentResult):
    """The measurements of :func:`curate.train.prunability.prunability` as tables
    (``seeds``, ``fractions``, ``spectrum``, ``displacement``, ``trajectory``; the rows
    are described at :class:`curate.train.prunability.PrunabilityRuns`), with ``dense``,
    the matching ``threshold``, the ``settings``, the wall time in ``seconds``, the
    training runs ``trained`` and ``reused`` (dense networks and retrained pruned ones),
    ``scores_computed`` / ``scores_reused`` (0) and ``report`` (the path of
    ``report.md`` once written).
    """

    seeds: pa.Table
    fractions: pa.Table
    spectrum: pa.Table
    displacement: pa.Table
    trajectory: pa.Table
    dense: dict
    threshold: float
    settings: dict

    @classmethod
    def from_runs(cls, runs: PrunabilityRuns, reused: bool = False) -> PrunabilityResult:
        """Tables of ``runs`` (``reused``: they were read from the cache)."""
        s = runs.settings
        count = len(s["seeds"]) * (1 + (len(s["fractions"]) if s["retrain"] else 0))
        schemas = {"seeds": SEEDS_SCHEMA, "fractions": FRACTIONS_SCHEMA,
                   "spectrum": SPECTRUM_SCHEMA, "displacement": DISPLACEMENT_SCHEMA,
                   "trajectory": TRAJECTORY_SCHEMA}
        return cls(**{name: pa.Table.from_pylist(getattr(runs, name), schema=schemas[name])
                      for name in TABLES},
                   dense=runs.dense, threshold=runs.threshold, settings=s, seconds=runs.seconds,
                   trained=0 if reused else count, reused=count if reused else 0)

    def tables(self) -> dict:
        return {f"{name}.csv": getattr(self, name) for name in TABLES}

    def figures(self) -> dict:
        return {PREDICTED_PLOT: predicted_figure(self), ACCURACY_PLOT: accuracy_figure(self)}

    def markdown(self) -> str:
        return report_markdown(self)


def sharpness(data, test_data, *, train_config, seeds, out_dir, workers: int = 1,
              progress: bool = False, scores=None, selection=None, rewind_step: int,
              fractions=None, hessian_examples: int = 1000, top_k: int = 150,
              trace_samples: int = 100, lanczos_iters: int = 400, lanczos_tol: float = 1e-4,
              tolerance: float = 0.01, eval_every: int | None = None,
              retrain: bool = True) -> PrunabilityResult:
    """Predicted (Hessian sharpness) against observed one-shot prunable fraction, per seed
    (:func:`curate.train.prunability.prunability`, whose parameters these are), cached in
    ``out_dir/cells`` and written to ``out_dir``. ``fractions`` None: the default grid
    (:data:`curate.train.prunability.DEFAULT_FRACTIONS`). ``scores``, ``selection`` and
    ``progress`` are not used."""
    from curate.train.prunability import DEFAULT_FRACTIONS, PrunabilityRuns, prunability

    started = time.perf_counter()
    config = as_train_config(train_config)
    _, train_set, test_set, fingerprints = load_data(data, test_data)
    options = {"rewind_step": rewind_step,
               "fractions": DEFAULT_FRACTIONS if fractions is None else fractions,
               "seeds": seed_list(seeds), "hessian_examples": hessian_examples,
               "top_k": top_k, "trace_samples": trace_samples, "lanczos_iters": lanczos_iters,
               "lanczos_tol": lanczos_tol, "tolerance": tolerance, "eval_every": eval_every,
               "retrain": retrain}
    key = fingerprint({"prunability": options, "config": config_key(config), **fingerprints})
    runs, reused = cached_run(
        Cache(Path(out_dir) / "cells"), key, config,
        lambda: prunability(config, train_set, test_set, workers=workers, **options),
        PrunabilityRuns)
    result = PrunabilityResult.from_runs(runs, reused=reused)
    result.seconds = time.perf_counter() - started
    write_result(result, out_dir)
    return result


def _observed_column(result: PrunabilityResult) -> tuple[str, str]:
    if result.settings["retrain"]:
        return "observed", "observed (one-shot, retrained from W_k)"
    return "observed_no_retrain", "observed (one-shot, no retraining)"


def predicted_figure(result: PrunabilityResult):
    """Predicted largest prunable fraction (each rule) against the observed one, per seed,
    with the y = x line and a band of +-10 points around it."""
    from matplotlib.figure import Figure

    from curate.train.prunability import RULES

    fig = Figure(figsize=(5.5, 5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    line = np.linspace(0, 1, 2)
    ax.fill_between(line, line - 0.1, line + 0.1, color="0.5", alpha=0.2, lw=0,
                    label="within 10 points")
    ax.plot(line, line, color="0.3", ls="--", lw=1, label="y = x")
    column, label = _observed_column(result)
    rows = result.seeds.to_pylist()
    for rule, marker in zip(RULES, ("v", "o")):
        points = [(r[column], r[f"predicted_{rule}"], r["seed"]) for r in rows
                  if r[f"predicted_{rule}"] is not None]
        if not points:
            continue
        x, y, seeds = zip(*points)
        ax.scatter(x, y, marker=marker, s=40, alpha=0.8, label=f"{rule} rule")
        for xi, yi, seed in points:
            ax.annotate(str(seed), (xi, yi), textcoords="offset points", xytext=(5, 3),
                        fontsize=7)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_xlabel(label)
    ax.set_ylabel("predicted largest prunable fraction")
    ax.set_title("Predicted vs observed prunable fraction (labels: seeds)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def accuracy_figure(result: PrunabilityResult):
    """Test accuracy against the one-shot fraction per seed (retrained: solid; not
    retrained: dashed), the matching threshold, and each seed's predictions (lambda_max
    rule: dotted, Gordon: dash-dot vertical lines)."""
    from matplotlib.figure import Figure

    from curate.train.prunability import RULES

    fig = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    table = result.fractions.to_pylist()
    for i, row in enumerate(result.seeds.to_pylist()):
        color = f"C{i % 10}"
        mine = [f for f in table if f["seed"] == row["seed"]]
        x = [f["fraction"] for f in mine]
        if result.settings["retrain"]:
            ax.plot(x, [f["acc_retrained"] for f in mine], color=color, marker="o", ms=4,
                    label=f"seed {row['seed']} retrained")
        ax.plot(x, [f["acc_no_retrain"] for f in mine], color=color, ls="--", marker=".",
                label=f"seed {row['seed']} not retrained")
        for rule, style in zip(RULES, (":", "-.")):
            if row[f"predicted_{rule}"] is not None:
                ax.axvline(row[f"predicted_{rule}"], color=color, ls=style, lw=1)
    ax.axhline(result.threshold, color="0.3", lw=1, label="matching threshold")
    ax.set_xlim(0, 1)
    ax.set_xlabel("fraction of prunable weights removed (one shot)")
    ax.set_ylabel("test accuracy")
    ax.set_title("Accuracy vs pruned fraction; predictions: dotted lambda_max, "
                 "dash-dot Gordon", fontsize=10)
    ax.legend(fontsize=7)
    return fig


def _num(value, fmt="{:.2f}") -> str:
    return "-" if value is None else fmt.format(value)


def report_markdown(result: PrunabilityResult) -> str:
    """Settings, the dense accuracy and threshold, per-seed predictions and observations,
    the per-fraction accuracies and the plots."""
    s, d = result.settings, result.dense
    model = s["model"] + (f" {s['model_params']}" if s["model_params"] else "")
    interval = "" if d["ci95"] is None else f" [{d['ci95'][0]:.4f}, {d['ci95'][1]:.4f}]"
    lines = [
        "# Prunability: predicted vs observed one-shot prunable fraction", "",
        f"Model {model}, optimizer {s['optimizer']}, lr {s['lr']}, batch {s['batch_size']}, "
        f"schedule {s['schedule']}, {s['total_steps']} steps, rewind step "
        f"{s['rewind_step']}; seeds {s['seeds']}. Hessian over the prunable weights on "
        f"{s['hessian_examples']} training examples: top {s['top_k']} eigenvalues "
        f"(Lanczos), trace from {s['trace_samples']} Hutchinson samples.", "",
        f"Dense test accuracy {d['mean']:.4f}{interval} (mean [95% CI], n = {d['n']}). "
        f"Matching threshold {result.threshold:.4f} = {s['threshold_rule']} "
        f"(tolerance {s['tolerance']:g}). eps: the smallest loss increase over the final "
        f"loss, on the Hessian batch, among the dense run's checkpoints (every "
        f"{s['eval_every']} steps) that do not match.", ""]
    rows = []
    for r in result.seeds.to_pylist():
        eps = "undefined" if r["eps"] is None else f"{r['eps']:.4f} ({r['eps_step']})"
        rows.append([r["seed"], f"{r['dense_test_acc']:.4f}", eps, f"{r['lambda_max']:.3f}",
                     f"{r['trace']:.1f} ± {r['trace_stderr']:.1f}",
                     _num(r["predicted_lambda_max"]), _num(r["predicted_gordon"]),
                     _num(r["observed"]), _num(r["observed_no_retrain"])])
    lines += markdown_table(["seed", "dense acc", "eps (step)", "lambda_max", "trace",
                             "predicted, lambda_max rule", "predicted, Gordon", "observed",
                             "observed, no retraining"], rows)
    if any(r["eps"] is None for r in result.seeds.to_pylist()):
        lines += ["", "eps is undefined where every checkpoint of the dense run matches "
                      "(no prediction): rewind earlier or checkpoint more often."]
    seeds = [r["seed"] for r in result.seeds.to_pylist()]
    by = {(f["seed"], f["fraction"]): f for f in result.fractions.to_pylist()}
    lines += ["", "Test accuracy after one-shot pruning, retrained / not retrained:", ""]
    lines += markdown_table(
        ["fraction", *(f"seed {seed}" for seed in seeds)],
        [[f"{p:g}", *(f"{_num(by[(seed, p)]['acc_retrained'], '{:.4f}')} / "
                      f"{by[(seed, p)]['acc_no_retrain']:.4f}" for seed in seeds)]
         for p in s["fractions"]])
    lines += ["", f"![predicted vs observed]({PREDICTED_PLOT})", "",
              f"![accuracy vs fraction]({ACCURACY_PLOT})", "",
              runs_footer(result, scores=False), ""]
    return "\n".join(lines)
