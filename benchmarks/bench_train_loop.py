"""Training-loop throughput: curate's ``train`` vs a DataLoader loop vs a hand-written loop.

Same model (MLP and the MNIST-1D paper CNN), same data (MNIST-1D train split,
4,000 examples), same optimizer (SGD momentum 0.9), batch 128, same number of
steps, same process. The three loops run alternately, repetition by repetition
(the first loop rotates), and the median time of each is compared. Wall time is
the figure; process CPU time is recorded too, because on a shared machine wall
time also counts waiting for a core.

* ``dataloader``: ``torch.utils.data.DataLoader(TensorDataset(x, y), batch_size=128,
  shuffle=True, num_workers=0)``, the conventional PyTorch loop;
* ``hand``: a hand-written loop indexing the tensors with ``torch.randperm``;
* ``curate``: ``curate.train.train``, which also computes per-example losses
  (``reduction="none"``, then the mean) for callbacks, builds the model and
  evaluates it on the training set once at the end (all timed).

    python benchmarks/bench_train_loop.py --steps 1000 --reps 9 --threads 1

Targets: curate >= 2x the DataLoader loop and within 5% of the hand-written loop.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

from curate.train import TensorData, TrainConfig, make_model, train  # noqa: E402

BATCH = 128
LR, MOMENTUM = 0.05, 0.9


def _model_and_optimizer(name: str, data: TensorData, seed: int):
    torch.manual_seed(seed)
    model = make_model(name, data.input_shape, data.num_classes)
    return model, torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)


def run_dataloader(name: str, data: TensorData, steps: int, seed: int) -> int:
    model, opt = _model_and_optimizer(name, data, seed)
    loader = DataLoader(TensorDataset(data.x, data.y), batch_size=BATCH, shuffle=True,
                        num_workers=0, generator=torch.Generator().manual_seed(seed))
    step = examples = 0
    while step < steps:
        for xb, yb in loader:
            if step == steps:
                break
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step, examples = step + 1, examples + len(yb)
    return examples


def run_hand(name: str, data: TensorData, steps: int, seed: int) -> int:
    model, opt = _model_and_optimizer(name, data, seed)
    rng = torch.Generator().manual_seed(seed)
    step = examples = 0
    while step < steps:
        for idx in torch.randperm(len(data), generator=rng).split(BATCH):
            if step == steps:
                break
            loss = F.cross_entropy(model(data.x[idx]), data.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            step, examples = step + 1, examples + len(idx)
    return examples


def run_curate(name: str, data: TensorData, steps: int, seed: int) -> int:
    config = TrainConfig(model=name, optimizer="sgd", lr=LR, momentum=MOMENTUM,
                         batch_size=BATCH, steps=steps)
    return train(config, data, seed=seed).final["examples"]


LOOPS = {"dataloader": run_dataloader, "hand": run_hand, "curate": run_curate}


def measure(name: str, data: TensorData, steps: int, reps: int) -> dict:
    wall = {loop: [] for loop in LOOPS}
    cpu = {loop: [] for loop in LOOPS}
    examples = {}
    order = list(LOOPS)
    for rep in range(reps):
        for loop in order[rep % 3:] + order[:rep % 3]:  # rotate who goes first
            start, start_cpu = time.perf_counter(), time.process_time()
            examples[loop] = LOOPS[loop](name, data, steps, seed=rep)
            wall[loop].append(time.perf_counter() - start)
            cpu[loop].append(time.process_time() - start_cpu)
    throughput = {loop: examples[loop] / statistics.median(t) for loop, t in wall.items()}
    cpu_throughput = {loop: examples[loop] / statistics.median(t) for loop, t in cpu.items()}
    return {
        "examples_per_run": examples,
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "examples_per_s_median": throughput,
        "curate_vs_dataloader": throughput["curate"] / throughput["dataloader"],
        "curate_vs_hand": throughput["curate"] / throughput["hand"],
        "cpu_time": {
            "examples_per_cpu_s_median": cpu_throughput,
            "curate_vs_dataloader": cpu_throughput["curate"] / cpu_throughput["dataloader"],
            "curate_vs_hand": cpu_throughput["curate"] / cpu_throughput["hand"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--reps", type=int, default=9)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = TensorData.from_source("builtin:mnist1d")
    results = {}
    for name in ("mlp", "cnn1d"):
        results[name] = measure(name, data, args.steps, args.reps)
        r = results[name]
        print(f"{name}: " + ", ".join(f"{k} {v:,.0f} ex/s" for k, v in
                                      r["examples_per_s_median"].items())
              + f"; curate/dataloader {r['curate_vs_dataloader']:.2f}x, "
                f"curate/hand {r['curate_vs_hand']:.3f} (CPU time: "
                f"{r['cpu_time']['curate_vs_dataloader']:.2f}x, "
                f"{r['cpu_time']['curate_vs_hand']:.3f})")
    met = {name: {"ge_2x_dataloader": r["curate_vs_dataloader"] >= 2.0,
                  "within_5pct_of_hand": r["curate_vs_hand"] >= 0.95}
           for name, r in results.items()}
    path = write_result("train_loop", {
        "setup": {"data": "builtin:mnist1d (4,000 train)", "batch_size": BATCH,
                  "optimizer": f"SGD lr {LR} momentum {MOMENTUM}", "steps": args.steps,
                  "reps": args.reps, "threads": args.threads, "statistic": "median time",
                  "load_average_before": os.getloadavg()},
        "torch": metadata.version("torch"),
        "targets": {"curate_vs_dataloader": ">= 2.0", "curate_vs_hand": ">= 0.95"},
        "targets_met": met,
        "results": results,
    })
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
