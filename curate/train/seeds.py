"""Repeat a training run over seeds and summarise with Student-t confidence intervals."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

import torch

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
    """
    jobs = list(jobs)
    if workers > 1 and len(jobs) > 1:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(jobs)),
                                   mp_context=get_context("spawn"),
                                   initializer=_start_worker, initargs=(os.getpid(),))
        try:
            with _signals_held():  # map submits every job: the processes start here
                results = pool.map(fn, jobs)
            yield from results
        except BaseException:
            _stop_pool(pool)
            raise
        pool.shutdown()
    else:
        yield from map(fn, jobs)


# -- worker processes that neither outlive nor outwait their parent ----------------------
# The same as ``curate.executor.guard_worker`` and ``stop_pool``, which this layer may not
# import; keep the two copies alike.

_HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_held():
    """Block SIGINT and SIGTERM here: a process started in the block inherits the mask,
    so a Ctrl-C reaching it before :func:`_start_worker` stays pending (then ignored)."""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _start_worker(parent: int) -> None:
    """In a worker of process ``parent``: ignore SIGINT (the parent stops its workers),
    die at once on SIGTERM, die when the parent dies (``PR_SET_PDEATHSIG`` on Linux, and
    a watchdog thread everywhere); then use one torch thread."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
    ppid = os.getppid()
    if not _alive(parent):  # it died before this worker got here
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent, ppid), name="curate-watchdog",
                     daemon=True).start()
    torch.set_num_threads(1)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except FileNotFoundError:
        return False
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _watch_parent(parent: int, ppid: int, interval: float = 0.25) -> None:
    while os.getppid() == ppid and _alive(parent):
        time.sleep(interval)
    os._exit(1)


def _stop_pool(pool, grace: float = 1.0) -> None:
    """Cancel what is queued, SIGTERM the workers, SIGKILL those alive after ``grace``."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    pool.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        with contextlib.suppress(Exception):
            if process.is_alive():
                process.kill()
                process.join(grace)


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
