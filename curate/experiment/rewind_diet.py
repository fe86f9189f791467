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
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from curate.core.errors import CurateError
from curate.io import write_figure, write_text
from curate.reporting import band, baseline_band, interval_text, markdown_table

PLOT_NAME = "ticket_accuracy_vs_rewind_step.png"


@dataclass
class DietResult:
    """What :func:`rewind_diet` measured.

    ``rows``: one per (subset, rewind step): ``subset``, ``n_pretrain`` (examples in the
    0..k phase), ``rewind_step``, ``level``, ``sparsity``, ``n``, ``mean``, ``ci95_lo``,
    ``ci95_hi`` (ticket test accuracy at the last level over seeds) and ``matches``.
    ``dense``: the dense reference's ``mean``, ``ci95`` and ``n``.
    ``first_matching``: subset -> smallest matching rewind step (None: none matched).
    ``speedup``: subset -> full data's first matching k / the subset's (None when
    undefined). ``seconds``: wall time.
    """

    rows: pa.Table
    dense: dict
    first_matching: dict
    speedup: dict
    settings: dict
    seconds: float

    def write(self, out_dir) -> Path:
        """``rewind_diet.csv``, the plot and ``report.md`` in ``out_dir``."""
        from curate.io import write_table

        out = Path(out_dir)
        write_table(self.rows, out / "rewind_diet.csv")
        write_figure(out / PLOT_NAME, diet_figure(self))
        write_text(out / "report.md", report_markdown(self))
        return out


def rewind_diet(config, train_data, test_data, *, subsets: dict, rewind_steps, levels: int,
                fraction: float = 0.2, seeds=(0, 1, 2), tolerance: float | None = None,
                full: str = "full", workers: int = 1, **imp_options) -> DietResult:
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
        imp_options: passed to :func:`curate.train.lottery.imp` (e.g. ``scope``).
    """
    from curate.train import train_seeds
    from curate.train.lottery import imp

    started = time.perf_counter()
    if full not in subsets or subsets[full] is not None:
        raise CurateError(f"subsets needs the full data as {full!r}: None")
    steps = sorted({int(k) for k in rewind_steps})
    if not steps or steps[0] < 0:
        raise CurateError(f"rewind_steps must be non-negative integers, got {rewind_steps}")
    seeds = list(seeds)
    dense = train_seeds(config, train_data, test_data, seeds=seeds, workers=workers)
    dense = dense.summary["test_acc"]
    if tolerance is not None:
        threshold = dense["mean"] - tolerance
    elif dense["ci95"] is not None:
        threshold = dense["ci95"][0]
    else:
        raise CurateError("one seed has no interval: give two or more seeds or a tolerance")

    rows, cache = [], {}
    for name, positions in subsets.items():
        for k in steps:
            # k = 0 pre-trains nothing: every subset shares the full data's run.
            key = (None, 0) if k == 0 else (name, k)
            if key not in cache:
                result = imp(config, train_data, test_data, levels=levels, fraction=fraction,
                             rewind_step=k, seeds=seeds, controls=(), instability="none",
                             pretrain=None if k == 0 else positions, workers=workers,
                             **imp_options)
                last = [r for r in result.summary.to_pylist()
                        if r["kind"] == "ticket" and r["level"] == levels]
                if not last:  # levels == 0: the "ticket" is the dense run of level 0
                    last = [r for r in result.summary.to_pylist() if r["kind"] == "dense"]
                cache[key] = last[0]
            row = cache[key]
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
                      seconds=time.perf_counter() - started)


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
              f"Wall time: {result.seconds:.1f} s.", ""]
    return "\n".join(lines)
