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

Each paced arm is a sweep method (:mod:`curate.experiment.methods`): the registered
``curriculum`` filter orders the examples by the score, the registered ``curriculum``
schedule paces them; the standard arm trains on all the data in shuffled epochs.

Budget rule: at each budget every arm takes exactly that many optimizer steps. The
ordering comes from one difficulty score, computed once per fingerprint and cached
(or handed in precomputed); its direction is the scorer's unless given; the random
ordering is redrawn per seed. Label noise is a property of the data (e.g.
``builtin:mnist1d:noise=0.2``); the scores are computed on the noisy labels.

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

import pyarrow as pa

from curate.core.cache import Cache
from curate.core.errors import CurateError
from curate.core.hashing import table_hash
from curate.experiment.cells import (
    Cell,
    Scores,
    cell_key,
    load_data,
    run_cells,
    runs_footer,
    summarize_rows,
)
from curate.experiment.methods import Method
from curate.experiment.outputs import ExperimentResult, write_result
from curate.reporting import band, interval_text, markdown_table

STANDARD = "none"
RESULT_COLUMNS = ("ordering", "pacing", "budget", "seed", "steps", "test_acc", "test_loss",
                  "seconds", "reused")
ARM = ("ordering", "pacing", "budget")
PLOT_NAME = "accuracy_vs_steps.png"


@dataclass
class CurriculumResult(ExperimentResult):
    """What :func:`curriculum_sweep` produced.

    ``results``: one row per run (:data:`RESULT_COLUMNS`); ``curves``: ``ordering``,
    ``pacing``, ``budget``, ``seed``, ``step``, ``test_acc``; ``summary``: per arm and
    budget, ``n``, ``mean``, ``std``, ``ci95_lo``, ``ci95_hi`` of test accuracy;
    ``comparisons``: per pacing and budget, the paired difference (over seeds) of
    easy-to-hard minus ``against`` (``random`` or ``standard``), with its interval;
    ``report``: the path of ``report.md``.
    """

    results: pa.Table
    curves: pa.Table
    summary: pa.Table
    comparisons: pa.Table
    out_dir: Path
    settings: dict = dataclasses.field(default_factory=dict)

    def tables(self) -> dict:
        return {"results.parquet": self.results, "results.csv": self.results,
                "summary.csv": self.summary, "curves.csv": self.curves,
                "comparisons.csv": self.comparisons}

    def figures(self) -> dict:
        return {PLOT_NAME: curves_figure(self.curves)}

    def markdown(self) -> str:
        return report_markdown(self)


def curriculum_sweep(data, test_data, *, score: str, score_params: dict | None = None,
                     by: str | None = None, higher_is_harder: bool | None = None,
                     orderings=("easy_to_hard", "hard_to_easy", "random"),
                     pacings=("linear",), budgets, seeds=(0, 1, 2), start: float = 0.1,
                     full_at: float = 0.8, train_config, eval_points: int = 10, out_dir,
                     workers: int = 1, progress: bool = False,
                     scores: dict | None = None) -> CurriculumResult:
    """Train every ordering x pacing x budget x seed, plus standard training per budget.

    Args:
        data, test_data: as for :func:`curate.experiment.prune_sweep`.
        score, score_params: the registered scorer that orders the examples and its
            parameters (e.g. ``{"model": "cnn1d", "epoch": 5, "seeds": 5}``).
        by: score column (default: the scorer's primary column); ``higher_is_harder``:
            its direction (default: the scorer's declared direction).
        orderings: any of ``easy_to_hard``, ``hard_to_easy``, ``random``.
        pacings: pacing function names (:class:`filters.curriculum.Pacing`).
        budgets: optimizer steps per run; every arm gets each budget.
        start, full_at: the pacing's starting fraction and the fraction of the budget
            at which all data is in.
        train_config: optimizer, model and batch size (its own budget is replaced).
        eval_points: test accuracy is recorded this many times per run (curves).
        workers: > 1 trains runs in that many processes.
        scores: precomputed score tables (scorer name -> table with ``id``).
    """
    from filters.curriculum import ORDERINGS, Pacing

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
    order_params = {k: v for k, v in (("by", by), ("higher_is_harder", higher_is_harder))
                    if v is not None}
    arms = {(o, p): Method({"name": f"{o}/{p}", "filter": "curriculum",
                            "params": {"ordering": o, **order_params}, "score": score,
                            "score_params": score_params,
                            "schedule": "curriculum",
                            "schedule_params": {"pacing": p, "start": start,
                                                "full_at": full_at}})
            for o in orderings for p in pacings}
    out = Path(out_dir)
    table, train_set, test_set, fingerprints = load_data(data, test_data)
    score_tables = Scores(Cache(out / "scores"), fingerprints, scores)
    for method in arms.values():
        method.check_data(table, score_tables)
    params = dict(score_params or {})
    score_key = (table_hash(scores[score]) if score_tables.has(score) else
                 score_tables.key(score, params))

    cells = []
    for budget in budgets:
        config = dataclasses.replace(train_config, steps=budget, epochs=None,
                                     eval_every=max(1, budget // eval_points))
        for seed in seeds:
            stub = {"ordering": STANDARD, "pacing": STANDARD, "budget": budget, "seed": seed}
            cells.append(Cell(stub, config, {}, cell_key(stub, config, None, fingerprints)))
            for (ordering, pacing), method in arms.items():
                choice = method.choose(None, seed, table, train_set.ids, score_tables)
                stub = {"ordering": ordering, "pacing": pacing, "budget": budget, "seed": seed}
                schedule = _schedule(method, choice, config)
                key = cell_key(stub, config, {"score": score_key, "by": by,
                                              "higher": choice.filter.higher_is_harder,
                                              "start": start, "full_at": full_at},
                               fingerprints)
                cells.append(Cell(stub, config, {"batches": schedule}, key))

    rows = run_cells(cells, train_set, test_set, out / "cells", workers=workers,
                     progress=progress, desc="curriculum sweep")
    curves = pa.Table.from_pylist([
        {**{k: row[k] for k in (*ARM, "seed")}, "step": step, "test_acc": acc}
        for row in rows for step, acc in row["curve"]])
    label = data if isinstance(data, str) else getattr(
        data, "spec", f"an in-memory {type(data).__name__}")
    result = CurriculumResult(
        results=pa.Table.from_pylist(rows).select(list(RESULT_COLUMNS)), curves=curves,
        summary=summarize_rows(rows, ARM), comparisons=paired_comparisons(rows),
        trained=sum(not r["reused"] for r in rows), reused=sum(r["reused"] for r in rows),
        scores_computed=score_tables.computed, scores_reused=score_tables.reused,
        seconds=time.perf_counter() - start_time, out_dir=out,
        settings={"data": label, "score": score, "start": start, "full_at": full_at})
    write_result(result, out)
    return result


def _schedule(method: Method, choice, config):
    """The arm's paced schedule over its ordering, for the config's steps."""
    from curate.core.registry import SCHEDULES, build

    try:
        return build(SCHEDULES, method.spec["schedule"],
                     {**choice.schedule_params, "positions": choice.positions,
                      "batch_size": config.batch_size, "steps": config.steps})
    except CurateError as exc:
        raise CurateError(f"curriculum {method.name!r}: {exc}") from None


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


def report_markdown(result: CurriculumResult) -> str:
    """Budget rule, the arms' accuracies, the paired comparisons, the plot, wall time."""
    s = result.settings
    data, score, start, full_at = s["data"], s["score"], s["start"], s["full_at"]
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
