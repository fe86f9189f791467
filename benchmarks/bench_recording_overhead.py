"""Wall-time cost of recording training dynamics on the training pass.

Trains the same run (MNIST-1D, ``--epochs`` epochs, batch 128, SGD, one torch
thread) three ways, alternated round by round so that machine load hits all arms
alike:

* ``plain``: no callbacks (the baseline);
* ``recorder``: one :class:`PresentationRecorder`, which is everything the loss,
  forgetting, AUM and cartography scores are computed from;
* ``four_recorders``: four recorders on the same run, as if each of those four
  scores recorded on its own (an upper bound).

Reports, for wall time and for this process's CPU time (less disturbed by other
jobs on a shared machine), the median over rounds of each round's ratio against
``plain`` and the ratio of the fastest runs; and checks the recorded run's
parameters equal the plain run's (recording is read-only).

    python benchmarks/bench_recording_overhead.py [--rounds 9] [--epochs 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from curate.train import TensorData, TrainConfig, train
from scorers.dynamics import PresentationRecorder

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

ARMS = {"plain": 0, "recorder": 1, "four_recorders": 4}


def run(config, data, recorders: int):
    callbacks = [PresentationRecorder() for _ in range(recorders)]
    wall, cpu = time.perf_counter(), time.process_time()
    result = train(config, data, seed=0, callbacks=callbacks)
    return (time.perf_counter() - wall, time.process_time() - cpu), result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--models", default="mlp,cnn1d")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = TensorData.from_source("builtin:mnist1d")
    cases = []
    for model in args.models.split(","):
        config = TrainConfig(model=model, epochs=args.epochs, batch_size=128, lr=0.05)
        run(config, data, 1)  # warm-up
        times = {clock: {arm: [] for arm in ARMS} for clock in ("wall", "cpu")}
        identical = True
        for r in range(args.rounds):
            order = list(ARMS)[r % 3:] + list(ARMS)[:r % 3]
            finals = {}
            for arm in order:
                (wall, cpu), result = run(config, data, ARMS[arm])
                times["wall"][arm].append(wall)
                times["cpu"][arm].append(cpu)
                finals[arm] = result.model.state_dict()
            identical &= all(torch.equal(finals["plain"][k], finals["recorder"][k])
                             for k in finals["plain"])
        steps = config.total_steps(len(data))
        row = {"model": model, "epochs": args.epochs, "steps": steps, "n": len(data),
               "seconds": times, "identical_parameters": identical}
        for clock, by_arm in times.items():
            for arm in ("recorder", "four_recorders"):
                ratios = [t / p for t, p in zip(by_arm[arm], by_arm["plain"])]
                row[f"{clock}_{arm}_overhead_median"] = statistics.median(ratios) - 1
                row[f"{clock}_{arm}_overhead_of_fastest"] = min(by_arm[arm]) / min(
                    by_arm["plain"]) - 1
            row[f"{clock}_plain_ms_per_step"] = 1000 * min(by_arm["plain"]) / steps
            print(f"{model} {clock}: plain {row[f'{clock}_plain_ms_per_step']:.2f} ms/step; "
                  "overhead one recorder "
                  f"{100 * row[f'{clock}_recorder_overhead_median']:+.1f}% median, "
                  f"{100 * row[f'{clock}_recorder_overhead_of_fastest']:+.1f}% fastest; four "
                  f"{100 * row[f'{clock}_four_recorders_overhead_median']:+.1f}% median, "
                  f"{100 * row[f'{clock}_four_recorders_overhead_of_fastest']:+.1f}% fastest")
        cases.append(row)
    path = write_result("recording_overhead", {
        "what": "train() wall time with dynamics recorders vs without, alternated rounds",
        "torch": torch.__version__, "torch_threads": 1, "target_overhead": 0.05,
        "cases": cases})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
