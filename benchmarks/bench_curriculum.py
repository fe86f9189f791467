"""Curricula on MNIST-1D (issue 4): easy-to-hard against a random order with the same
pacing and against standard training, under a standard budget, a short budget and 20%
label noise, over seeds.

    python benchmarks/bench_curriculum.py --seeds 5 --workers 2

Wu, Dyer and Neyshabur (ICLR 2021) found that curricula help only with a short budget
or noisy labels. Every run trains cnn1d with Adam; the ordering is EL2N taken at an
early epoch and averaged over ``--score-seeds`` seeds, computed on the labels the run
trains on (noisy ones in the noisy condition). Writes
``benchmarks/results/curriculum.json`` and keeps each sweep's outputs (tables, curves
plot, report) under ``benchmarks/work/curriculum/<condition>``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

from curate.experiment import curriculum_sweep  # noqa: E402
from curate.train import TrainConfig  # noqa: E402

CONDITIONS = {"clean": "builtin:mnist1d", "noise-0.2": "builtin:mnist1d:noise=0.2,noise_seed=0"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--score-seeds", type=int, default=5)
    parser.add_argument("--budgets", type=int, nargs="+", default=[200, 2000],
                        help="short and standard budgets, in steps")
    parser.add_argument("--pacings", nargs="+", default=["linear"])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/work/curriculum")
    args = parser.parse_args()
    el2n = {"model": "cnn1d", "epochs": 5, "epoch": 5, "optimizer": "adam", "lr": 0.01,
            "batch_size": 100, "seeds": args.score_seeds}
    config = TrainConfig(model="cnn1d", optimizer="adam", lr=0.01, batch_size=100,
                         steps=max(args.budgets))
    conditions = {}
    for name, data in CONDITIONS.items():
        sweep = curriculum_sweep(data, "builtin:mnist1d:split=test", score="el2n",
                                 score_params=el2n, pacings=args.pacings,
                                 budgets=args.budgets, seeds=list(range(args.seeds)),
                                 train_config=config, out_dir=f"{args.out}/{name}",
                                 workers=args.workers)
        conditions[name] = {"data": data, "summary": sweep.summary.to_pylist(),
                            "comparisons": sweep.comparisons.to_pylist(),
                            "wall_seconds": round(sweep.seconds, 1),
                            "runs": sweep.results.num_rows, "trained": sweep.trained}
        print(name)
        print(sweep.comparisons.to_pandas().to_string(index=False))
    write_result("curriculum", {
        "test": "builtin:mnist1d:split=test (1,000 examples)",
        "train": {"model": "cnn1d", "optimizer": "adam", "lr": 0.01, "batch_size": 100,
                  "budgets_steps": args.budgets, "seeds": args.seeds},
        "pacing": {"functions": args.pacings, "start": 0.1, "full_at": 0.8},
        "ordering_score": {"name": "el2n", **el2n},
        "conditions": conditions})


if __name__ == "__main__":
    main()
