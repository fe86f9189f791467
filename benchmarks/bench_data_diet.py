"""Data-diet prune sweep on MNIST-1D (issue 4's first figure): EL2N-selected subsets
against random subsets at several kept fractions, same-steps budget, several seeds.

    python benchmarks/bench_data_diet.py --seeds 3 --workers 2

EL2N is taken at an early epoch of cnn1d training and averaged over ``--score-seeds``
seeds; every cell trains cnn1d with Adam for the full data's number of steps. Writes
``benchmarks/results/data_diet.json`` (the sweep's summary and wall time) and keeps the
sweep's own outputs (results table, plot, report) in ``benchmarks/work/data_diet``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

from curate.experiment import prune_sweep  # noqa: E402
from curate.train import TrainConfig  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--score-seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.1, 0.3, 0.5, 0.7])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/work/data_diet")
    args = parser.parse_args()
    el2n = {"model": "cnn1d", "epochs": 5, "epoch": 5, "optimizer": "adam", "lr": 0.01,
            "batch_size": 100}
    methods = ["random",
               {"name": "el2n-hard", "score": "el2n", "score_params": el2n,
                "policy": "keep_fraction", "keep": "hard"},
               {"name": "el2n-easy", "score": "el2n", "score_params": el2n,
                "policy": "keep_fraction", "keep": "easy"},
               {"name": "el2n-ccs", "score": "el2n", "score_params": el2n, "policy": "ccs",
                "beta": 0.1}]
    config = TrainConfig(model="cnn1d", optimizer="adam", lr=0.01, batch_size=100,
                         steps=args.steps)
    sweep = prune_sweep("builtin:mnist1d", "builtin:mnist1d:split=test", methods=methods,
                        fractions=args.fractions, seeds=list(range(args.seeds)),
                        budget="same-steps", train_config=config, score_seeds=args.score_seeds,
                        out_dir=args.out, workers=args.workers)
    write_result("data_diet", {
        "data": "builtin:mnist1d (4,000 train / 1,000 test)", "budget": "same-steps",
        "train": {"model": "cnn1d", "optimizer": "adam", "lr": 0.01, "batch_size": 100,
                  "steps": args.steps, "seeds": args.seeds},
        "el2n": {**el2n, "seeds": args.score_seeds},
        "summary": sweep.summary.to_pylist(), "wall_seconds": round(sweep.seconds, 1),
        "runs": sweep.results.num_rows})
    print(sweep.summary.to_pandas().to_string(index=False))


if __name__ == "__main__":
    main()
