"""Lottery tickets on a data diet (issue 5) on MNIST-1D with the paper's MLP: how many
pre-training steps a rewind point needs to yield matching tickets when the 0..k phase
trains on all the data, on the easiest examples by EL2N, or on a random subset of the
same size.

    python benchmarks/bench_ticket_diet.py --seeds 3 --workers 2

IMP prunes 20% per level for ``--levels`` levels (11: 91.4% sparse, where the
``bench_lottery.py`` run found tickets rewound to the initialisation stop matching).
Tickets *match* when their mean test accuracy over seeds is at least the lower end of
the dense network's 95% interval. EL2N is taken at ``--el2n-epoch`` of MLP training and
averaged over ``--score-seeds`` seeds. Writes ``benchmarks/results/ticket_diet.json``
and the experiment's report under ``benchmarks/work/ticket_diet``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

from curate.core.registry import make_scorer  # noqa: E402
from curate.core.tables import kept_positions  # noqa: E402
from curate.executor import score_source  # noqa: E402
from curate.experiment.outputs import write_result as write_experiment  # noqa: E402
from curate.experiment.rewind_diet import rewind_diet  # noqa: E402
from curate.io import Source  # noqa: E402
from curate.train import TensorData, TrainConfig  # noqa: E402
from filters import KeepFraction, select  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--levels", type=int, default=11)
    parser.add_argument("--rewind", type=int, nargs="+", default=[0, 5, 10, 20, 40])
    parser.add_argument("--subset", type=float, default=0.1,
                        help="share of the training data in the diet subsets")
    parser.add_argument("--score-seeds", type=int, default=5)
    parser.add_argument("--el2n-epoch", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/work/ticket_diet")
    parser.add_argument("--name", default="ticket_diet", help="results/<name>.json")
    args = parser.parse_args()

    table = Source("builtin:mnist1d").read_all()
    train_set = TensorData.from_table(table)
    test_set = TensorData.from_source("builtin:mnist1d:split=test")
    el2n = {"model": "mlp", "epochs": args.el2n_epoch, "epoch": args.el2n_epoch,
            "optimizer": "adam", "lr": 0.01, "batch_size": 100, "seeds": args.score_seeds}
    scores = score_source([make_scorer("el2n", el2n)], Source(table))["el2n"]
    easy = kept_positions(select(scores, [KeepFraction("el2n", args.subset, keep="easy")]),
                          train_set.ids)
    rng = np.random.default_rng(0)
    random = np.sort(rng.choice(len(train_set), size=len(easy), replace=False))
    share = f"{100 * args.subset:g}%"
    config = TrainConfig(model="mlp", optimizer="adam", lr=0.01, batch_size=100,
                         steps=args.steps)
    result = rewind_diet(config, train_set, test_set,
                         subsets={"full": None, f"easiest {share} by EL2N": easy,
                                  f"random {share}": random},
                         rewind_steps=args.rewind, levels=args.levels,
                         seeds=list(range(args.seeds)), workers=args.workers)
    write_experiment(result, args.out)
    write_result(args.name, {
        "data": "builtin:mnist1d (4,000 train / 1,000 test)", "settings": result.settings,
        "el2n": el2n, "subset_size": len(easy), "dense": result.dense,
        "rows": result.rows.to_pylist(), "first_matching": result.first_matching,
        "speedup": result.speedup, "wall_seconds": round(result.seconds, 1)})
    print(result.rows.to_pandas().to_string(index=False))
    print("first matching:", result.first_matching, "speed-up:", result.speedup)


if __name__ == "__main__":
    main()
