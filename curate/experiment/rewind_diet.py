"""Lottery tickets on a data diet: how many pre-training steps a good rewind point needs.

    from curate.experiment.rewind_diet import rewind_diet
    diet = rewind_diet(config, train_set, test_set,
                       subsets={"full": None, "easy 10%": easy_positions,
                                "random 10%": random_positions},
                       rewind_steps=[0, 50, 100, 200, 400], levels=8)
    diet.first_matching   # subset -> smallest rewind step whose tickets match

Paul, Larsen, Ganguli, Frankle and Dziugaite (NeurIPS 2022) train the 0..k phase of
IMP with rewinding (:func:`curate.train.lottery.imp`) on a small subset of the data,
the easiest examples by EL2N or a random one, and then run IMP as usual on the full
data. For each subset and each rewind step k, this runs IMP to ``levels`` rounds and
asks whether the tickets at the last level *match* the dense network: their mean test
accuracy over seeds is at least the lower end of the dense network's 95% interval
(or, with ``tolerance``, at least the dense mean minus ``tolerance``). The dense
reference trains from the initialisation on all the data for the config's budget.

The measured quantity is, per subset, the smallest k in ``rewind_steps`` with matching
tickets, and the ratio of the full data's k to the subset's (``speedup``). A k of 0
needs no pre-training at all, so the ratio is only defined when the full data needs
k > 0.

:func:`rewind_diet_experiment` (registered as ``rewind-diet``) picks the subsets with
sweep methods (:mod:`curate.experiment.methods`: any filter over any scorer, or the
recipe's selection), caches the dense runs and every IMP run in ``out_dir/cells`` and
writes ``rewind_diet.csv``, the plot and ``report.md`` there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.core.cache import Cache
from curate.core.errors import CurateError
from curate.experiment.cells import (
    Cell,
    Scores,
    as_train_config,
    cell_key,
    load_data,
    run_cells,
    runs_footer,
    seed_list,
)
from curate.experiment.outputs import ExperimentResult, write_result
from curate.reporting import band, baseline_band, interval_text, markdown_table

PLOT_NAME = "ticket_accuracy_vs_rewind_step.png"


@dataclass
class DietResult(ExperimentResult):
    """What :func:`rewind_diet` measured.

    ``rows``: one per (subset, rewind step): ``subset``, ``n_pretrain`` (examples in the
    0..k phase), ``rewind_step``, ``level``, ``sparsity``, ``n``, ``mean``, ``ci95_lo``,
    ``ci95_hi`` (ticket test accuracy at the last level over seeds) and ``matches``.
    ``dense``: the dense reference's ``mean``, ``ci95`` and ``n``.
    ``first_matching``: subset -> smallest matching rewind step (None: none matched).
    ``speedup``: subset -> full data's first matching k / the subset's (None when
    undefined). ``seconds``: wall time. ``trained`` / ``reused``: training runs (dense
    and IMP) trained and read from the cache; ``scores_computed`` / ``scores_reused``:
    score tables for the subsets; ``report``: the path of ``report.md`` once written.
    """

    rows: pa.Table
    dense: dict
    first_matching: dict
    speedup: dict
    settings: dict

    def tables(self) -> dict:
        return {"rewind_diet.csv": self.rows}

    def figures(self) -> dict:
        return {PLOT_NAME: diet_figure(self)}

    def markdown(self) -> str:
        return report_markdown(self)


def rewind_diet(config, train_data, test_data, *, subsets: dict, rewind_steps, levels: int,
                fraction: float = 0.2, seeds=(0, 1, 2), tolerance: float | None = None,
                full: str = "full", workers: int = 1, cache: Cache | None = None,
                fingerprints: dict | None = None, **imp_options) -> DietResult:
    """IMP from rewind points pre-trained on each subset, at each rewind step.

    Args:
        config: a :class:`curate.train.TrainConfig` (its budget is every level's T).
        train_data, test_data: :class:`curate.train.TensorData`.
        subsets: name -> positions into ``train_data`` for the 0..k phase, or None for
            all the data. The entry named ``full`` (default ``"full"``) is the
            reference for ``speedup``.
        rewind_steps: the k to try (0 is shared by every subset: nothing pre-trains).
        levels, fraction: IMP rounds and the share pruned per round.
        tolerance: matching rule (see the module docstring); None = the dense interval.
        cache, fingerprints: keep the dense runs and the IMP runs in ``cache`` (keyed
            with the data ``fingerprints``) and read them back on a re-run.
        imp_options: passed to :func:`curate.train.lottery.imp` (e.g. ``scope``).
    """
    from curate.experiment.lottery import run_imp, summarize_runs

    started = time.perf_counter()
    if full not in subsets or subsets[full] is not None:
        raise CurateError(f"subsets needs the full data as {full!r}: None")
    steps = sorted({int(k) for k in rewind_steps})
    if not steps or steps[0] < 0:
        raise CurateError(f"rewind_steps must be non-negative integers, got {rewind_steps}")
    seeds = list(seeds)
    dense, trained, reused = _dense(config, train_data, test_data, seeds, workers, cache,
                                    fingerprints)
    if tolerance is not None:
        threshold = dense["mean"] - tolerance
    elif dense["ci95"] is not None:
        threshold = dense["ci95"][0]
    else:
        raise CurateError("one seed has no interval: give two or more seeds or a tolerance")

    rows, done = [], {}
    for name, positions in subsets.items():
        for k in steps:
            # k = 0 pre-trains nothing: every subset shares the full data's run.
            key = (None, 0) if k == 0 else (name, k)
            if key not in done:
                runs, was_cached = run_imp(
                    config, train_data, test_data, cache=cache, fingerprints=fingerprints,
                    workers=workers, levels=levels, fraction=fraction, rewind_step=k,
                    seeds=seeds, controls=(), instability="none",
                    pretrain=None if k == 0 else positions, **imp_options)
                reused += len(runs.runs) if was_cached else 0
                trained += 0 if was_cached else len(runs.runs)
                summary = summarize_runs(runs.runs).to_pylist()
                last = [r for r in summary if r["kind"] == "ticket" and r["level"] == levels]
                if not last:  # levels == 0: the "ticket" is the dense run of level 0
                    last = [r for r in summary if r["kind"] == "dense"]
                done[key] = last[0]
            row = done[key]
            rows.append({"subset": name,
                         "n_pretrain": len(train_data) if positions is None or k == 0
                         else len(positions),
                         "rewind_step": k, "level": levels, "sparsity": row["sparsity"],
                         "n": row["n"], "mean": row["mean"], "ci95_lo": row["ci95_lo"],
                         "ci95_hi": row["ci95_hi"], "matches": row["mean"] >= threshold})
    first, speedup = first_matching(rows, full)
    settings = {"levels": levels, "fraction": fraction, "seeds": seeds,
                "rewind_steps": steps, "tolerance": tolerance, "threshold": threshold,
                "budget_steps": config.total_steps(len(train_data)),
                "model": config.model, "optimizer": config.optimizer, "lr": config.lr,
                "batch_size": config.batch_size}
    return DietResult(rows=pa.Table.from_pylist(rows),
                      dense={"mean": dense["mean"], "ci95": dense["ci95"], "n": dense["n"]},
                      first_matching=first, speedup=speedup, settings=settings,
                      seconds=time.perf_counter() - started, trained=trained, reused=reused)


def _dense(config, train_data, test_data, seeds, workers, cache, fingerprints) -> tuple:
    """``(summary of test_acc, trained, reused)`` of the dense reference over ``seeds``."""
    from curate.train import summarize, train_seeds

    if cache is None or not isinstance(config.model, str):
        runs = train_seeds(config, train_data, test_data, seeds=seeds, workers=workers)
        return runs.summary["test_acc"], len(seeds), 0
    cells = [Cell({"rewind_diet": "dense", "seed": seed}, config, {}) for seed in seeds]
    for cell in cells:
        cell.key = cell_key(cell.stub, config, None, fingerprints or {})
    rows = run_cells(cells, train_data, test_data, cache.folder, workers=workers)
    reused = sum(r["reused"] for r in rows)
    return summarize([r["test_acc"] for r in rows]), len(rows) - reused, reused


def rewind_diet_experiment(data, test_data, *, train_config, seeds, out_dir, workers: int = 1,
                           progress: bool = False, scores: dict | None = None, selection=None,
                           subsets, rewind_steps, levels: int, subset_fraction: float = 0.1,
                           subset_seed: int = 0, score_seeds: int | None = None,
                           fraction: float = 0.2, tolerance: float | None = None,
                           scope: str = "global",
                           output_fraction: float | None = None) -> DietResult:
    """:func:`rewind_diet` with subsets picked by sweep methods, cached, written to ``out_dir``.

    Args:
        subsets: sweep methods (:mod:`curate.experiment.methods`: shorthands or dicts; a
            method with ``selection: "selection"`` takes the recipe's ``selection``),
            each giving the 0..k phase's data; the full data is always added as
            ``"full"``, the reference. Schedules are refused (the phase trains on a
            fixed subset).
        subset_fraction: the kept fraction given to methods that take one.
        subset_seed: the seed given to methods that take one (one subset for every
            training seed, as in Paul et al.).
        score_seeds: the scorers' ``seeds`` unless a method's ``score_params`` sets it.
        scores: precomputed score tables (scorer name -> table with ``id``).
        rewind_steps, levels, fraction, tolerance: as for :func:`rewind_diet`;
        scope, output_fraction: IMP's (:func:`curate.train.lottery.imp`).
        progress: not used.
    """
    from curate.experiment.methods import Method

    started = time.perf_counter()
    config = as_train_config(train_config)
    methods = [Method(m, score_seeds=score_seeds, selection=selection) for m in subsets]
    names = [m.name for m in methods]
    if len(set(names)) != len(names) or "full" in names:
        raise CurateError(f"subset names must be distinct and not 'full': {names}")
    for method in methods:
        if method.schedule_fn is not None:
            raise CurateError(f"subset {method.name!r}: the 0..k phase trains on a fixed "
                              "subset; a schedule cannot give one")
    table, train_set, test_set, fingerprints = load_data(data, test_data)
    out = Path(out_dir)
    score_tables = Scores(Cache(out / "scores"), fingerprints, scores)
    chosen: dict = {"full": None}
    for method in methods:
        method.check_data(table, score_tables)
        choice = method.choose(subset_fraction if method.takes_fraction else None,
                               subset_seed, table, train_set.ids, score_tables)
        chosen[method.name] = np.asarray(choice.positions)
    result = rewind_diet(config, train_set, test_set, subsets=chosen,
                         rewind_steps=rewind_steps, levels=levels, fraction=fraction,
                         seeds=seed_list(seeds), tolerance=tolerance, workers=workers,
                         cache=Cache(out / "cells"), fingerprints=fingerprints, scope=scope,
                         output_fraction=output_fraction)
    result.scores_computed, result.scores_reused = score_tables.computed, score_tables.reused
    result.seconds = time.perf_counter() - started
    write_result(result, out)
    return result


def first_matching(rows: list[dict], full: str = "full") -> tuple[dict, dict]:
    """Per subset: the smallest matching rewind step, and full data's step / that step.

    ``rows`` are :class:`DietResult` rows in increasing rewind step per subset. The
    ratio is None when either step is missing or zero (no pre-training to save).
    """
    first: dict = {}
    for row in rows:
        first.setdefault(row["subset"], None)
        if row["matches"] and first[row["subset"]] is None:
            first[row["subset"]] = row["rewind_step"]
    speedup = {name: first[full] / k if first.get(full) and k else None
               for name, k in first.items()}
    return first, speedup


def diet_figure(result: DietResult):
    """Ticket accuracy at the last level against the rewind step, per subset, dense band."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    low, high = result.dense["ci95"] or (None, None)
    baseline_band(ax, {"mean": result.dense["mean"], "ci95_lo": low, "ci95_hi": high},
                  "dense")
    rows = result.rows.to_pylist()
    for name in dict.fromkeys(r["subset"] for r in rows):
        mine = [r for r in rows if r["subset"] == name]
        band(ax, [r["rewind_step"] for r in mine], mine, name, marker="o")
    sparsity = rows[0]["sparsity"] if rows else 0.0
    ax.set_xlabel("rewind step k (pre-training steps)")
    ax.set_ylabel("ticket test accuracy")
    ax.set_title(f"Tickets at {100 * sparsity:.1f}% sparsity (mean, 95% CI over seeds)")
    ax.legend(fontsize=8)
    return fig


def report_markdown(result: DietResult) -> str:
    """The matching rule, the table, the first matching k and the speed-up."""
    s = result.settings
    dense_ci = result.dense["ci95"]
    lines = ["# Lottery tickets on a data diet", "",
             f"Model {s['model']}, {s['optimizer']} lr {s['lr']}, batch {s['batch_size']}, "
             f"{s['budget_steps']} steps per level; IMP {s['levels']} rounds of "
             f"{s['fraction']:g}; seeds {s['seeds']}.", "",
             f"Dense: {result.dense['mean']:.4f}"
             + (f" [{dense_ci[0]:.4f}, {dense_ci[1]:.4f}]" if dense_ci else "")
             + f". Tickets match when their mean is at least {s['threshold']:.4f} ("
             + ("the dense interval's lower end" if s["tolerance"] is None
                else f"dense mean minus {s['tolerance']:g}") + ").", ""]
    lines += markdown_table(
        ["pre-training data", "examples", "rewind step", "ticket acc", "95% CI", "matches"],
        [[r["subset"], r["n_pretrain"], r["rewind_step"], f"{r['mean']:.4f}",
          interval_text(r), "yes" if r["matches"] else "no"] for r in result.rows.to_pylist()])
    lines.append("")
    lines += markdown_table(
        ["pre-training data", "first matching rewind step", "full data's k / this k"],
        [[name, "none" if k is None else k,
          "n/a" if result.speedup[name] is None else f"{result.speedup[name]:.2f}x"]
         for name, k in result.first_matching.items()])
    lines += ["", f"![ticket accuracy vs rewind step]({PLOT_NAME})", "",
              runs_footer(result), ""]
    return "\n".join(lines)
