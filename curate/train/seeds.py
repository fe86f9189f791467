"""Repeat a training run over seeds and summarise with Student-t confidence intervals."""

from __future__ import annotations

import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import torch

from curate.core.processes import guard_worker, signals_held, stop_pool
from curate.train.trainer import RunResult, TrainConfig, train

#: ``final`` metrics that get a mean and confidence interval over seeds.
SUMMARY_METRICS = ("test_acc", "test_loss", "train_acc", "train_loss", "seconds")


@dataclass
class SeedsResult:
    """Runs in seed order; ``summary``: metric -> {mean, std, ci95: [lo, hi], n}."""

    runs: list[RunResult]
    summary: dict
    budget: dict


def summarize(values) -> dict:
    """Mean, sample std (ddof=1) and 95% Student-t interval of ``values``.

    With one value, std and the interval are None (undefined).
    """
    from scipy import stats

    values = [float(v) for v in values]
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"mean": mean, "std": None, "ci95": None, "n": n}
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "ci95": [mean - half, mean + half], "n": n}


def map_processes(fn, jobs, workers: int = 1):
    """Yield ``fn(job)`` for every job, in job order, as the results come in.

    With ``workers > 1`` (and more than one job) the jobs run in that many spawned
    processes with one torch thread each, so ``fn`` and the jobs must pickle (``fn`` a
    module-level function, not a lambda); otherwise they run here, one after another.
    The processes ignore SIGINT and die with this process, even when it is killed with
    SIGKILL; when the caller is interrupted, fails or stops iterating, they are stopped
    at once instead of running the jobs left.

    While a cluster executor is active (:func:`curate.core.tasks.active`), the jobs run
    there as tasks of one CPU each instead, whatever ``workers`` is.
    """
    from curate.core import tasks

    jobs = list(jobs)
    runner = tasks.active()
    if runner is not None and jobs:
        yield from runner.map_tasks(fn, jobs)
        return
    if workers > 1 and len(jobs) > 1:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                                   mp_context=get_context("spawn"),
                                   initializer=_start_worker, initargs=(os.getpid(),))
        try:
            with signals_held():  # map submits every job: the processes start here
                results = pool.map(fn, jobs)
            yield from results
        except BaseException:
            stop_pool(pool)
            raise
        pool.shutdown()
    else:
        yield from map(fn, jobs)


def _start_worker(parent: int) -> None:
    """In a spawned training process: guarded as every curate worker, one torch thread."""
    guard_worker(parent)
    torch.set_num_threads(1)


def train_seeds(config: TrainConfig, train_data, test_data=None, *, seeds=(0, 1, 2),
                callbacks_factory=None, workers: int = 1, positions=None,
                batches_factory=None, initial_state=None, masks=None) -> SeedsResult:
    """Run :func:`curate.train.train` once per seed.

    Args:
        callbacks_factory: ``seed -> list[Callback]``, called here; the callbacks come
            back (with their recorded state) in each run's ``callbacks``.
        workers: > 1 runs seeds in that many spawned processes, each with one torch
            thread; config, data and callbacks are pickled there and back (so a
            custom model factory must be importable, not a lambda).
        positions: passed to every run.
        batches_factory: ``seed -> batches`` (a schedule such as
            :class:`filters.schedules.CurriculumSchedule`, called as ``batches(step)``),
            built here per seed and passed to that run as ``batches``.
        initial_state, masks: passed to every run (see :func:`curate.train.train`).
    """
    seeds = list(seeds)
    jobs = [(config, train_data, test_data, seed,
             list(callbacks_factory(seed)) if callbacks_factory else [], positions,
             batches_factory(seed) if batches_factory else None, initial_state, masks)
            for seed in seeds]
    runs = list(map_processes(_run, jobs, workers))
    summary = {}
    for metric in SUMMARY_METRICS:
        values = [run.final[metric] for run in runs]
        if all(v is not None for v in values):
            summary[metric] = summarize(values)
    return SeedsResult(runs=runs, summary=summary, budget=config.budget())


def _run(job) -> RunResult:
    config, train_data, test_data, seed, callbacks, positions, batches, initial_state, masks = job
    return train(config, train_data, test_data, seed=seed, callbacks=callbacks,
                 positions=positions, batches=batches, initial_state=initial_state, masks=masks)
