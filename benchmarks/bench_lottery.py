"""Lottery tickets on MNIST-1D (issue 5): IMP with rewinding on the paper's MLP, 3 seeds,
with the reinit and random-mask controls and the successive-level error barriers.

    python benchmarks/bench_lottery.py --steps 1000 --levels 11 --rewind 0 20 --workers 2

Every run trains the MNIST-1D MLP (hidden 100, depth 2) with Adam at lr 1e-2, batch 100,
for ``--steps`` steps in all; each level prunes 20% of the remaining weights globally
(to 0.8^11 = 8.6% remaining, 91% sparse after 11 levels). One IMP per rewind step.

Checks, per rewind step (reported whether or not they hold): a ticket *matches* at a level
when its mean test accuracy is at least the lower end of the dense network's 95% interval
over seeds; reinit *falls below* when its mean is under that lower end; the successive-level
barrier (levels L-1 and L) is *low* under 2 points of error. Writes
``benchmarks/results/lottery.json``; the IMP outputs (tables, plots, report) go to
``benchmarks/work/lottery/rewind_<k>``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

from curate.experiment.lottery import LotteryResult  # noqa: E402
from curate.experiment.outputs import write_result as write_experiment  # noqa: E402
from curate.train import TensorData, TrainConfig  # noqa: E402
from curate.train.lottery import imp  # noqa: E402

STABLE = 0.02  # Frankle et al.'s 2-point barrier threshold, as an error fraction


def checks(summary: list[dict], barrier_summary: list[dict]) -> dict:
    """The claims, evaluated level by level against the dense 95% interval."""
    dense = next(r for r in summary if r["kind"] == "dense")
    floor = dense["ci95_lo"]
    by = {(r["level"], r["kind"]): r for r in summary}
    successive = {r["other_level"]: r for r in barrier_summary if r["kind"] == "successive"}
    levels = []
    for level in sorted({r["level"] for r in summary if r["level"] > 0}):
        ticket, reinit = by[(level, "ticket")], by.get((level, "reinit"))
        random_mask = by.get((level, "random_mask"))
        barrier = successive.get(level)
        levels.append({
            "level": level, "sparsity": round(ticket["sparsity"], 4),
            "ticket": ticket["mean"], "reinit": reinit and reinit["mean"],
            "random_mask": random_mask and random_mask["mean"],
            "ticket_matches": ticket["mean"] >= floor,
            "reinit_below": reinit is not None and reinit["mean"] < floor,
            "random_mask_below": random_mask is not None and random_mask["mean"] < floor,
            "barrier": barrier and barrier["mean"],
            "barrier_low": barrier is not None and barrier["mean"] < STABLE})
    matching = [row for row in levels if row["ticket_matches"]]
    # The matching run: consecutive levels from 1 on where the ticket matches.
    run = []
    for row in levels:
        if not row["ticket_matches"]:
            break
        run.append(row)
    after = [row for row in levels if row["level"] > (run[-1]["level"] if run else 0)]
    return {
        "dense_floor": floor,
        "max_matching_sparsity": max((r["sparsity"] for r in matching), default=0.0),
        "matching_from_level_1_up_to_sparsity": run[-1]["sparsity"] if run else 0.0,
        "tickets_match_at_80pct": any(r["sparsity"] >= 0.8 for r in matching),
        "reinit_below_where_ticket_matches_at_80pct": any(
            r["sparsity"] >= 0.8 and r["reinit_below"] for r in matching),
        "barriers_low_while_matching": all(r["barrier_low"] for r in run),
        "max_barrier_while_matching": max((r["barrier"] for r in run), default=None),
        "max_barrier_after": max((r["barrier"] for r in after), default=None),
        "levels": levels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--levels", type=int, default=11)
    parser.add_argument("--rewind", type=int, nargs="+", default=[0, 20])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/work/lottery")
    args = parser.parse_args()
    started = time.perf_counter()
    train = TensorData.from_source("builtin:mnist1d")
    test = TensorData.from_source("builtin:mnist1d:split=test")
    config = TrainConfig(model="mlp", optimizer="adam", lr=args.lr, batch_size=100,
                         steps=args.steps, eval_every=100)
    per_rewind = {}
    for k in args.rewind:
        result = LotteryResult.from_runs(imp(
            config, train, test, levels=args.levels, fraction=0.2, rewind_step=k,
            seeds=range(args.seeds), target_acc=0.6, instability="dense", workers=args.workers))
        write_experiment(result, Path(args.out) / f"rewind_{k}")
        summary = result.summary.to_pylist()
        barriers = result.barrier_summary.to_pylist()
        per_rewind[str(k)] = {"settings": result.settings, "summary": summary,
                              "barrier_summary": barriers,
                              "checks": checks(summary, barriers),
                              "wall_seconds": round(result.seconds, 1)}
        print(f"rewind {k}: {result.seconds:.0f} s")
        print(result.summary.select(["level", "kind", "sparsity", "mean", "ci95_lo",
                                     "ci95_hi"]).to_pandas().to_string(index=False))
        print(result.barrier_summary.to_pandas().to_string(index=False))
    # Pick the rewind step whose tickets match from level 1 to the highest sparsity.
    picked = max(per_rewind, key=lambda k: (
        per_rewind[k]["checks"]["matching_from_level_1_up_to_sparsity"], -int(k)))
    write_result("lottery", {
        "data": "builtin:mnist1d (4,000 train / 1,000 test)",
        "train": {"model": "mlp", "model_params": {"hidden": 100, "depth": 2},
                  "optimizer": "adam", "lr": args.lr, "batch_size": 100, "steps": args.steps,
                  "seeds": args.seeds, "workers": args.workers},
        "imp": {"levels": args.levels, "fraction": 0.2, "scope": "global",
                "controls": ["random_mask", "reinit"], "rewind_steps": args.rewind},
        "picked_rewind_step": int(picked), "rewind": per_rewind,
        "wall_seconds": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    main()
