"""Data-diet prune sweeps on MNIST-1D with the paper's CNN (issue 4), same-steps budget.

    python benchmarks/bench_data_diet.py --seeds 3 --workers 2

Sweep 1 (targets T1, T2, T4): random (static), RS2 (a fresh random subset every
round), EL2N-hardest, EL2N-easiest, EL2N-CCS and a
class-balanced EL2N-hardest that first skips the hardest 10% (likely ambiguous) at
kept fractions 0.1 .. 0.9. EL2N is taken at epoch 5 of cnn1d training (a tenth of
the cells' 50 epochs, as Paul et al.'s epoch 20 of 200) and averaged over
``--score-seeds`` seeds.

Sweep 2 (target T3): forgetting events summed over ``--score-seeds`` runs; the
``u`` unforgettable examples (learned and never forgotten in any run: summed count
0, never-learned examples count as most forgettable) are removed, against ``u``
removed at random. Keeping the hardest ``1 - u/n`` by the count drops exactly the
count-0 examples because ties break by position; the script checks that.

Every cell trains cnn1d with Adam (lr 1e-2, batch 100) for the full data's steps.
Both sweeps then run a second time in the same process, which must reuse every
score and cell. Writes ``benchmarks/results/data_diet.json``; the sweeps' own
outputs (tables, plot, report) stay in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

from curate.experiment import prune_sweep  # noqa: E402
from curate.train import TensorData, TrainConfig, summarize  # noqa: E402

EXPLORATION = Path(__file__).parent / "results" / "data_diet_exploration.json"


def el2n_params(epoch: int) -> dict:
    """EL2N scorer: cnn1d trained as the cells are, scored at ``epoch``."""
    return {"model": "cnn1d", "epochs": epoch, "epoch": epoch, "optimizer": "adam",
            "lr": 0.01, "batch_size": 100}


def forgetting_params(epochs: int) -> dict:
    """Forgetting scorer: cnn1d trained as the cells are, for ``epochs`` epochs."""
    return {"model": "cnn1d", "epochs": epochs, "optimizer": "adam", "lr": 0.01,
            "batch_size": 100}


def diet_methods(el2n: dict, offset: float, beta: float) -> list:
    """The methods of sweep 1."""
    def scored(name, **policy):
        return {"name": name, "score": "el2n", "score_params": el2n, **policy}

    return ["random", "rs2",
            scored("el2n-hard", policy="keep_fraction", keep="hard"),
            scored("el2n-easy", policy="keep_fraction", keep="easy"),
            scored("el2n-ccs", policy="ccs", beta=beta),
            scored(f"el2n-hard-bal-off{round(offset * 100)}", policy="keep_fraction",
                   keep="hard", offset=offset, balance="label")]


def unforgettable(data: str, params: dict, seeds: int, out: str) -> np.ndarray:
    """Positions (in the dataset's row order) whose summed forgetting count is 0.

    The scores go through the sweep's own score cache in ``out``, so the forgetting
    sweep reuses them instead of training the scorer again.
    """
    import curate
    from curate.core.cache import Cache
    from curate.experiment.cells import Scores
    from curate.io import Source

    source = Source(data)
    cache = Scores(Cache(Path(out) / "scores"), {"data": source.fingerprint(),
                                                 "curate": curate.__version__})
    scores = cache.get("forgetting", {**params, "seeds": seeds}, source.read_all())
    count = scores.column("forgetting").to_numpy()
    flagged = scores.column("forgetting_unforgettable").to_numpy(zero_copy_only=False)
    if not np.array_equal(count == 0, flagged):
        raise AssertionError("forgetting count 0 and the unforgettable flag disagree")
    return np.flatnonzero(count == 0)


def paired(rows: list, method: str, fraction: float, other: str, other_fraction: float) -> dict:
    """Test-accuracy difference ``method - other``, paired by training seed."""
    def by_seed(m, f):
        return {r["seed"]: r["test_acc"] for r in rows
                if r["method"] == m and abs(r["fraction"] - f) < 1e-9}

    mine, theirs = by_seed(method, fraction), by_seed(other, other_fraction)
    return summarize([mine[s] - theirs[s] for s in sorted(mine) if s in theirs])


def cell(summary: list, method: str, fraction: float) -> dict:
    row = next(r for r in summary if r["method"] == method and abs(r["fraction"] - fraction) < 1e-9)
    return {"mean": row["mean"], "ci95": [row["ci95_lo"], row["ci95_hi"]], "n": row["n"]}


def targets(diet, forget, best: str, u: int, n: int) -> dict:
    """T1..T4 figures from the two sweeps' runs and summaries."""
    rows, summary = diet.results.to_pylist(), diet.summary.to_pylist()
    fractions = sorted({r["fraction"] for r in rows} - {1.0})
    t1 = {m: {"kept_0.5": cell(summary, m, 0.5), "vs_full_0.5": paired(rows, m, 0.5, "full", 1.0),
              "vs_random_0.5": paired(rows, m, 0.5, "random", 0.5),
              "vs_random_0.3": paired(rows, m, 0.3, "random", 0.3)}
          for m in ("el2n-hard", best)}
    t2 = {m: {"kept_0.1": cell(summary, m, 0.1),
              "vs_random_0.1": paired(rows, m, 0.1, "random", 0.1)}
          for m in ("el2n-hard", "el2n-ccs", best)}
    t2["random"] = {"kept_0.1": cell(summary, "random", 0.1)}
    t4 = [{"fraction": f, "easy": cell(summary, "el2n-easy", f),
           "hard": cell(summary, "el2n-hard", f),
           "hard_minus_easy": paired(rows, "el2n-hard", f, "el2n-easy", f)} for f in fractions]
    f3rows, f3summary = forget.results.to_pylist(), forget.summary.to_pylist()
    kept = 1 - u / n
    t3 = {"unforgettable": u, "n": n, "share": u / n, "kept_fraction": kept,
          "full": cell(f3summary, "full", 1.0),
          "drop_unforgettable": cell(f3summary, "forgetting-drop-unforgettable", kept),
          "drop_random": cell(f3summary, "random", kept),
          "unforgettable_minus_random": paired(f3rows, "forgetting-drop-unforgettable", kept,
                                               "random", kept)}
    return {"full": cell(summary, "full", 1.0), "T1": t1, "T2": t2, "T3": t3, "T4": t4}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="builtin:mnist1d")
    parser.add_argument("--test", default="builtin:mnist1d:split=test")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--score-seeds", type=int, default=5)
    parser.add_argument("--el2n-epoch", type=int, default=5)
    parser.add_argument("--forgetting-epochs", type=int, default=20)
    parser.add_argument("--offset", type=float, default=0.1)
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--fractions", type=float, nargs="+",
                        default=[0.1, 0.2, 0.3, 0.5, 0.7, 0.9])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/work/data_diet")
    parser.add_argument("--name", default="data_diet")
    args = parser.parse_args()

    config = TrainConfig(model="cnn1d", optimizer="adam", lr=0.01, batch_size=100,
                         steps=args.steps)
    methods = diet_methods(el2n_params(args.el2n_epoch), args.offset, args.beta)
    best = methods[-1]["name"]
    common = {"seeds": list(range(args.seeds)), "budget": "same-steps", "train_config": config,
              "score_seeds": args.score_seeds, "out_dir": args.out, "workers": args.workers}

    def diet_sweep():
        return prune_sweep(args.data, args.test, methods=methods, fractions=args.fractions,
                           **common)

    forget = forgetting_params(args.forgetting_epochs)
    start = time.perf_counter()
    zero = unforgettable(args.data, forget, args.score_seeds, args.out)
    forget_seconds = time.perf_counter() - start
    n = len(TensorData.from_source(args.data))
    u = len(zero)
    forget_methods = ["random", {"name": "forgetting-drop-unforgettable", "score": "forgetting",
                                 "score_params": forget, "policy": "keep_fraction",
                                 "keep": "hard"}]

    def forget_sweep():
        return prune_sweep(args.data, args.test, methods=forget_methods,
                           fractions=[1 - u / n], **common)

    first = [diet_sweep(), forget_sweep()]
    again = [diet_sweep(), forget_sweep()]
    dropped = np.setdiff1d(np.arange(n), first[1].subsets[("forgetting-drop-unforgettable",
                                                            1 - u / n, 0)])
    first_s, again_s = sum(s.seconds for s in first), sum(s.seconds for s in again)
    exploration = (json.loads(EXPLORATION.read_text()) if EXPLORATION.exists() else None)
    write_result(args.name, {
        "data": {"train": args.data, "test": args.test, "n_train": n},
        "budget": "same-steps",
        "train": {**{k: getattr(config, k) for k in ("model", "optimizer", "lr", "batch_size",
                                                    "steps", "schedule")},
                  "seeds": args.seeds, "workers": args.workers},
        "el2n": {**el2n_params(args.el2n_epoch), "seeds": args.score_seeds},
        "forgetting": {**forget, "seeds": args.score_seeds,
                       "unforgettable_check": bool(np.array_equal(dropped, zero)),
                       "scoring_seconds": round(forget_seconds, 1)},
        "methods": methods, "fractions": args.fractions,
        "targets": targets(first[0], first[1], best, u, n),
        "summary": {"diet": first[0].summary.to_pylist(),
                    "unforgettable": first[1].summary.to_pylist()},
        "timing": {"first_run_seconds": round(first_s, 1), "rerun_seconds": round(again_s, 2),
                   "rerun_ratio": round(again_s / first_s, 4),
                   "first_run": [{"trained": s.trained, "reused": s.reused,
                                  "scores_computed": s.scores_computed,
                                  "scores_reused": s.scores_reused} for s in first],
                   "rerun": [{"trained": s.trained, "reused": s.reused,
                              "scores_computed": s.scores_computed,
                              "scores_reused": s.scores_reused} for s in again],
                   "cell_train_seconds_sum": round(float(sum(
                       sum(s.results.column("seconds").to_pylist()) for s in first)), 1)},
        "runs": {"diet": first[0].results.num_rows, "unforgettable": first[1].results.num_rows},
        "exploration": exploration})
    print(first[0].summary.to_pandas().to_string(index=False))
    print(first[1].summary.to_pandas().to_string(index=False))
    print(f"u={u} of n={n}; first {first_s:.1f}s, re-run {again_s:.2f}s")


if __name__ == "__main__":
    main()
