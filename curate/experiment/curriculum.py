"""The curriculum sweep: paced curricula against standard training, over seeds.

    from curate.experiment import curriculum_sweep
    from curate.train import TrainConfig
    sweep = curriculum_sweep("builtin:mnist1d", "builtin:mnist1d:split=test",
                             score="el2n", score_params={"model": "cnn1d", "epoch": 5},
                             pacings=["linear", "step"], budgets=[200, 2000],
                             train_config=TrainConfig(model="cnn1d", optimizer="adam",
                                                      lr=1e-2, batch_size=100, steps=2000),
                             out_dir="curriculum")

Arms (Wu, Dyer and Neyshabur, ICLR 2021):

- ``standard``: shuffled epochs over all the data (ordering and pacing ``"none"``);
- ``easy_to_hard`` (curriculum), ``hard_to_easy`` (anti-curriculum) and ``random``
  (the same growing data size in a random order) under each pacing function: at step
  ``t`` a batch is drawn from the first ``g(t)`` examples of the ordering, ``g``
  growing from ``start * n`` to ``n`` at step ``full_at * budget``
  (:class:`filters.schedules.CurriculumSchedule`).

Budget rule: at each budget every arm takes exactly that many optimizer steps. The
ordering comes from one difficulty score, computed once per fingerprint and cached;
the random ordering is redrawn per seed. Label noise is a property of the data
(e.g. ``builtin:mnist1d:noise=0.2``); the scores are computed on the noisy labels.

Outputs in ``out_dir``: ``results.parquet``/``.csv`` (one row per run), ``curves.csv``
(test accuracy during training), ``summary.csv`` (mean and 95% interval per arm and
budget), ``comparisons.csv`` (paired differences over seeds: curriculum against the
random ordering with the same pacing, and against standard training),
``accuracy_vs_steps.png`` and ``report.md``.
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
    load_data,
    run_cells,
    runs_footer,
    summarize_rows,
    write_tables,
)
from curate.io import write_figure, write_text
from curate.reporting import band, interval_text, markdown_table

STANDARD = "none"
RESULT_COLUMNS = ("ordering", "pacing", "budget", "seed", "steps", "test_acc", "test_loss",
                  "seconds", "reused")
ARM = ("ordering", "pacing", "budget")
PLOT_NAME = "accuracy_vs_steps.png"


@dataclass
class CurriculumResult:
    """What :func:`curriculum_sweep` produced.

    ``results``: one row per run (:data:`RESULT_COLUMNS`); ``curves``: ``ordering``,
    ``pacing``, ``budget``, ``seed``, ``step``, ``test_acc``; ``summary``: per arm and
    budget, ``n``, ``mean``, ``std``, ``ci95_lo``, ``ci95_hi`` of test accuracy;
    ``comparisons``: per pacing and budget, the paired difference (over seeds) of
    easy-to-hard minus ``against`` (``random`` or ``standard``), with its interval.
    """

    results: pa.Table
    curves: pa.Table
    summary: pa.Table
    comparisons: pa.Table
    trained: int
    reused: int
    scores_computed: int
    scores_reused: int
    seconds: float
    out_dir: Path


def curriculum_sweep(data, test_data, *, score: str, score_params: dict | None = None,
                     by: str | None = None, higher_is_harder: bool = True,
                     orderings=("easy_to_hard", "hard_to_easy", "random"),
                     pacings=("linear",), budgets, seeds=(0, 1, 2), start: float = 0.1,
                     full_at: float = 0.8, train_config, eval_points: int = 10, out_dir,
                     workers: int = 1, progress: bool = False) -> CurriculumResult:
    """Train every ordering x pacing x budget x seed, plus standard training per budget.

    Args:
        data, test_data: as for :func:`curate.experiment.prune_sweep`.
        score, score_params: the registered scorer that orders the examples and its
            parameters (e.g. ``{"model": "cnn1d", "epoch": 5, "seeds": 5}``).
        by: score column (default ``score``); ``higher_is_harder``: its direction.
        orderings: any of ``easy_to_hard``, ``hard_to_easy``, ``random``.
        pacings: pacing function names (:class:`filters.curriculum.Pacing`).
        budgets: optimizer steps per run; every arm gets each budget.
        start, full_at: the pacing's starting fraction and the fraction of the budget
            at which all data is in.
        train_config: optimizer, model and batch size (its own budget is replaced).
        eval_points: test accuracy is recorded this many times per run (curves).
        workers: > 1 trains runs in that many processes.
    """
    from filters.curriculum import ORDERINGS, Pacing, difficulty_order
    from filters.schedules import CurriculumSchedule

    start_time = time.perf_counter()
    unknown = [o for o in orderings if o not in ORDERINGS]
    if unknown or not orderings:
        raise CurateError(f"orderings must be among {', '.join(ORDERINGS)}, got {orderings}")
    pacings = [Pacing(p, 1, 1).name for p in pacings]  # validated, aliases resolved
    budgets = sorted({int(b) for b in budgets})
    if not budgets or budgets[0] < 1:
        raise CurateError(f"budgets must be positive step counts, got {budgets}")
    if not isinstance(train_config.model, str):
        raise CurateError("train_config.model must be a zoo name for a cached sweep")
    seeds = [int(s) for s in seeds]
    if not seeds or not isinstance(eval_points, int) or eval_points < 1:
        raise CurateError(f"need at least one seed and eval_points >= 1, got seeds={seeds}, "
                          f"eval_points={eval_points!r}")
    out = Path(out_dir)
    table, train_set, test_set, fingerprints = load_data(data, test_data)
    cache = ScoreCache(out / "scores", fingerprints)
    scores = cache.get(score, dict(score_params or {}), table)
    values = _values_by_position(scores, by or score, train_set.ids)

    cells = []
    for budget in budgets:
        config = dataclasses.replace(train_config, steps=budget, epochs=None,
                                     eval_every=max(1, budget // eval_points))
        for seed in seeds:
            stub = {"ordering": STANDARD, "pacing": STANDARD, "budget": budget, "seed": seed}
            cells.append(Cell(stub, config, {}, cell_key(stub, config, None, fingerprints)))
            for ordering in orderings:
                order = difficulty_order(values, ordering, higher_is_harder, seed)
                for pacing in pacings:
                    stub = {"ordering": ordering, "pacing": pacing,
                            "budget": budget, "seed": seed}
                    schedule = CurriculumSchedule(order, config.batch_size, budget, pacing,
                                                  start=start, full_at=full_at, seed=seed)
                    key = cell_key(stub, config, {"score": cache.key(score, score_params or {}),
                                                  "by": by, "higher": higher_is_harder,
                                                  "start": start, "full_at": full_at},
                                   fingerprints)
                    cells.append(Cell(stub, config, {"batches": schedule}, key))

    rows = run_cells(cells, train_set, test_set, out / "cells", workers=workers,
                     progress=progress, desc="curriculum sweep")
    curves = pa.Table.from_pylist([
        {**{k: row[k] for k in (*ARM, "seed")}, "step": step, "test_acc": acc}
        for row in rows for step, acc in row["curve"]])
    result = CurriculumResult(
        results=pa.Table.from_pylist(rows).select(list(RESULT_COLUMNS)), curves=curves,
        summary=summarize_rows(rows, ARM), comparisons=paired_comparisons(rows),
        trained=sum(not r["reused"] for r in rows), reused=sum(r["reused"] for r in rows),
        scores_computed=cache.computed, scores_reused=cache.reused,
        seconds=time.perf_counter() - start_time, out_dir=out)
    label = data if isinstance(data, str) else f"an in-memory {type(data).__name__}"
    write_outputs(result, label, score, start, full_at)
    return result


def _values_by_position(scores: pa.Table, column: str, ids) -> np.ndarray:
    """The score column as a [n] array aligned with the training positions."""
    if column not in scores.column_names:
        raise CurateError(f"score column {column!r} not found; the scorer wrote "
                          f"{', '.join(c for c in scores.column_names if c != 'id')}")
    by_id = dict(zip(scores.column("id").to_pylist(), scores.column(column).to_pylist()))
    return np.array([np.nan if by_id.get(i) is None else by_id[i] for i in ids], dtype=float)


def paired_comparisons(rows: list[dict]) -> pa.Table:
    """Easy-to-hard minus the random ordering (same pacing) and minus standard training.

    Differences are paired by seed at the same budget; one row per (pacing, budget,
    against) with ``n``, the mean difference and its 95% Student-t interval.
    """
    from curate.train import summarize

    acc = {(r["ordering"], r["pacing"], r["budget"], r["seed"]): r["test_acc"] for r in rows}
    arms = dict.fromkeys((p, b) for (o, p, b, _) in acc if o == "easy_to_hard")
    out = []
    for pacing, budget in arms:
        seeds = [s for (o, p, b, s) in acc if (o, p, b) == ("easy_to_hard", pacing, budget)]
        for against, other in (("random", ("random", pacing)), ("standard", (STANDARD,) * 2)):
            diffs = [acc[("easy_to_hard", pacing, budget, s)] - acc[(*other, budget, s)]
                     for s in seeds if (*other, budget, s) in acc]
            if diffs:
                stats = summarize(diffs)
                low, high = stats["ci95"] or (None, None)
                out.append({"pacing": pacing, "budget": budget, "against": against,
                            "n": stats["n"], "mean": stats["mean"], "ci95_lo": low,
                            "ci95_hi": high})
    return pa.Table.from_pylist(out)


def write_outputs(result: CurriculumResult, data, score: str, start: float,
                  full_at: float) -> None:
    """The tables, the curves plot and report.md in ``result.out_dir``."""
    from curate.io import write_table

    out = result.out_dir
    write_tables(out, result.results, result.summary)
    write_table(result.curves, out / "curves.csv")
    write_table(result.comparisons, out / "comparisons.csv")
    write_figure(out / PLOT_NAME, curves_figure(result.curves))
    write_text(out / "report.md", report_markdown(result, data, score, start, full_at))


def curves_figure(curves: pa.Table):
    """Test accuracy against steps, one panel per budget, mean over seeds with 95% bands."""
    from matplotlib.figure import Figure

    rows = curves.to_pylist()
    budgets = sorted({r["budget"] for r in rows})
    fig = Figure(figsize=(5 * len(budgets), 4), dpi=100, layout="constrained")
    axes = fig.subplots(1, len(budgets), squeeze=False)[0]
    points = summarize_rows(rows, (*ARM, "step")).to_pylist()
    for ax, budget in zip(axes, budgets):
        arms = dict.fromkeys((r["ordering"], r["pacing"]) for r in points
                             if r["budget"] == budget)
        for ordering, pacing in arms:
            mine = [r for r in points if (r["ordering"], r["pacing"], r["budget"])
                    == (ordering, pacing, budget)]
            label = "standard" if ordering == STANDARD else f"{ordering} / {pacing}"
            band(ax, [r["step"] for r in mine], mine, label,
                 ls="--" if ordering == STANDARD else "-")
        ax.set_title(f"budget {budget} steps")
        ax.set_xlabel("step")
        ax.set_ylabel("test accuracy")
        ax.legend(fontsize=7)
    return fig


def report_markdown(result: CurriculumResult, data, score: str, start: float,
                    full_at: float) -> str:
    """Budget rule, the arms' accuracies, the paired comparisons, the plot, wall time."""
    lines = ["# Curriculum sweep", "", f"Data: `{data}`. Ordering score: `{score}`.", "",
             "Budget rule: at each budget every arm takes exactly that many optimizer steps. "
             f"Paced arms draw each batch from the first g(t) examples of their ordering; g "
             f"grows from {start:g} of the data to all of it at {full_at:g} of the budget.", ""]
    lines += markdown_table(
        ["ordering", "pacing", "budget", "n", "mean test acc", "95% CI"],
        [[r["ordering"], r["pacing"], r["budget"], r["n"], f"{r['mean']:.4f}",
          interval_text(r)] for r in result.summary.to_pylist()])
    lines += ["", "Easy-to-hard minus the other arm, paired by seed (a positive difference "
              "favours the curriculum; an interval containing 0 is no evidence either way):",
              ""]
    lines += markdown_table(
        ["pacing", "budget", "against", "n", "mean difference", "95% CI"],
        [[r["pacing"], r["budget"], r["against"], r["n"], f"{r['mean']:+.4f}",
          interval_text(r)] for r in result.comparisons.to_pylist()])
    lines += ["", f"![test accuracy during training]({PLOT_NAME})", "",
              runs_footer(result), ""]
    return "\n".join(lines)
