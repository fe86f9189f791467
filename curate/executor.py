"""Executors run picklable functions over tasks; they know nothing about scoring.

* :meth:`Executor.map_batches` maps a function over Arrow batches and hands the results
  back in order: :func:`score_source` scores an in-memory source with it.
* :meth:`Executor.map_unordered` runs one task per item (a shard of the source) and
  hands each result back as it finishes: :func:`curate.sharded.score_to_folder` writes
  sharded, resumable score tables with it. A task writes its own outputs, so the order
  in which results arrive decides nothing.

:class:`LocalExecutor` runs in this process or a pool of processes;
:class:`curate.ray_executor.RayExecutor` runs on a Ray cluster (:func:`make_executor`).
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable, Iterable, Iterator

import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.processes import guard_worker, signals_held, stop_pool
from curate.core.scorer import Scorer
from curate.io import DEFAULT_BATCH_SIZE, Source

#: Executor names accepted by :func:`make_executor` (``--executor``, ``executor:``).
EXECUTORS = ("local", "ray")


class Executor:
    """Maps functions over batches or tasks. ``name`` is what manifests record."""

    name = ""

    def map_batches(self, fn: Callable, batches: Iterable, *, setup: Callable | None = None,
                    setup_args: tuple = ()) -> Iterator:  # pragma: no cover - abstract
        """Yield ``fn(batch)`` for every batch, in input order."""
        raise NotImplementedError

    def map_unordered(self, fn: Callable, tasks: list, *, setup: Callable | None = None,
                      setup_args: tuple = ()) -> Iterator:  # pragma: no cover - abstract
        """Yield ``(i, fn(tasks[i]))`` for every task as it finishes; ``setup(*setup_args)``
        runs once in each worker first."""
        raise NotImplementedError

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc) -> None:
        pass


def make_executor(name: str | Executor | None = "local", *, workers: int | None = 1,
                  address: str | None = None) -> Executor:
    """The executor called ``name`` (``"local"`` or ``"ray"``), or ``name`` itself when it is
    one already.

    Args:
        workers: local processes (0 or None: one per CPU). On Ray, a number above 1 caps
            the actors; otherwise (the command line's default of 1 included) there are as
            many as the cluster has CPUs, less one for the driver.
        address: a running Ray cluster to join (``ray://host:10001`` or ``host:6379``);
            None starts a local Ray instance for the run.
    """
    if isinstance(name, Executor):
        return name
    name = name or "local"
    if name == "local":
        if address is not None:
            raise CurateError("--address joins a Ray cluster: give it with --executor ray")
        return LocalExecutor(workers)
    if name == "ray":
        from curate.ray_executor import RayExecutor

        return RayExecutor(address=address,
                           workers=workers if workers and workers > 1 else None)
    raise CurateError(f"unknown executor {name!r}; expected one of {', '.join(EXECUTORS)}")


class LocalExecutor(Executor):
    """Runs in this process (``workers=1``) or in a pool of processes.

    Args:
        workers: processes to use; 1 runs in-process, 0 or None means one per CPU.
        max_in_flight: batches queued per worker; bounds memory whatever the corpus size.

    Workers ignore SIGINT and die with this process, even when it is killed with
    SIGKILL; a map that is interrupted, fails or is abandoned stops them at once
    rather than finishing the batches in flight.
    """

    name = "local"

    def __init__(self, workers: int | None = 1, max_in_flight: int = 2):
        self.workers = workers or os.cpu_count() or 1
        self.max_in_flight = max_in_flight

    def map_unordered(self, fn, tasks, *, setup=None, setup_args=()):
        tasks = list(tasks)
        if self.workers == 1 or len(tasks) <= 1:
            if setup is not None:
                setup(*setup_args)
            for i, task in enumerate(tasks):
                yield i, fn(task)
            return
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        pool = ProcessPoolExecutor(min(self.workers, len(tasks)), initializer=_start_worker,
                                   initargs=(os.getpid(), setup, setup_args))
        waiting = collections.deque(enumerate(tasks))
        running: dict = {}
        try:
            while waiting or running:
                while waiting and len(running) < self.workers * self.max_in_flight:
                    i, task = waiting.popleft()
                    with signals_held():
                        running[pool.submit(fn, task)] = i
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield running.pop(future), future.result()
        except BaseException:
            stop_pool(pool)
            raise
        pool.shutdown()

    def map_batches(self, fn, batches, *, setup=None, setup_args=()):
        if self.workers == 1:
            if setup is not None:
                setup(*setup_args)
            for batch in batches:
                yield fn(batch)
            return
        from concurrent.futures import ProcessPoolExecutor

        pending: collections.deque = collections.deque()
        limit = self.workers * self.max_in_flight
        pool = ProcessPoolExecutor(self.workers, initializer=_start_worker,
                                   initargs=(os.getpid(), setup, setup_args))
        try:
            for batch in batches:
                with signals_held():  # a worker forked here starts with them blocked
                    pending.append(pool.submit(fn, batch))
                if len(pending) >= limit:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        except BaseException:
            # Ctrl-C, SIGTERM, an error or an abandoned generator: do not wait for the
            # batches in flight (``with pool`` would run every one of them first).
            stop_pool(pool)
            raise
        pool.shutdown()


def _start_worker(parent: int, setup: Callable | None, setup_args: tuple) -> None:
    guard_worker(parent)
    if setup is not None:
        setup(*setup_args)


# Scorers installed in each worker process once, not shipped with every batch.
_WORKER_SCORERS: list[Scorer] = []


def _install_scorers(scorers: list[Scorer]) -> None:
    _WORKER_SCORERS[:] = scorers


def _score_one_batch(batch: pa.Table) -> tuple[int, list[pa.Table]]:
    outputs = []
    for scorer in _WORKER_SCORERS:
        out = scorer.score_batch(batch)
        if out.num_rows != batch.num_rows:
            raise RuntimeError(f"scorer {scorer.name!r} returned {out.num_rows} rows for a batch "
                               f"of {batch.num_rows}")
        outputs.append(out)
    return batch.num_rows, outputs


def score_source(scorers: list[Scorer], source: Source, *, executor: Executor | None = None,
                 batch_size: int | None = None, progress: bool = False) -> dict[str, pa.Table]:
    """Run scorers over every batch of ``source``; return one score table per scorer.

    Each table has the source's id column first, then the scorer's columns, one row
    per example in source order (after the scorer's ``finalize``). The data is read
    once for all scorers.
    """
    executor = executor or LocalExecutor()
    names = [s.name for s in scorers]
    if len(set(names)) != len(names):
        raise CurateError(f"a scorer is listed twice: {', '.join(names)}")
    whole = [s for s in scorers if s.needs_whole_dataset]
    if whole:
        tables = _score_whole(whole, source)
        rest = [s for s in scorers if not s.needs_whole_dataset]
        if rest:
            tables.update(score_source(rest, source, executor=executor, batch_size=batch_size,
                                       progress=progress))
        return {name: tables[name] for name in names}
    columns = sorted({c for s in scorers for c in s.columns_needed()})
    source.required_columns = tuple(dict.fromkeys([*source.required_columns, *columns]))
    size = batch_size or min(s.batch_size for s in scorers) or DEFAULT_BATCH_SIZE

    ids: list[pa.ChunkedArray] = []

    def batches():
        for batch in source.iter_batches(size, columns):
            ids.append(batch.column(source.id_column))
            yield batch.select(columns)

    parts: list[list[pa.Table]] = [[] for _ in scorers]
    bar = _progress(progress, "scoring")
    for rows, outputs in executor.map_batches(_score_one_batch, batches(),
                                              setup=_install_scorers, setup_args=(scorers,)):
        for part, out in zip(parts, outputs):
            part.append(out)
        bar.update(rows)
    bar.close()

    id_column = pa.chunked_array([c for chunk in ids for c in chunk.chunks])
    tables = {}
    for scorer, part in zip(scorers, parts):
        table = pa.concat_tables(part, promote_options="permissive").combine_chunks()
        table = table.add_column(0, source.id_column, id_column)
        tables[scorer.name] = scorer.finalize(table).combine_chunks()
    return tables


def _score_whole(scorers: list[Scorer], source: Source) -> dict[str, pa.Table]:
    """Read the needed columns of every example once; score them all at once.

    A scorer whose ``columns_needed()`` is None sees every column.
    """
    wanted = [s.columns_needed() for s in scorers]
    columns = None if any(w is None for w in wanted) else sorted({c for w in wanted for c in w})
    if columns is not None:
        source.required_columns = tuple(dict.fromkeys([*source.required_columns, *columns]))
    table = source.read_all(columns)
    tables = {}
    for scorer, want in zip(scorers, wanted):
        out = scorer.score_dataset(table if want is None else table.select(want))
        if out.num_rows != table.num_rows:
            raise RuntimeError(f"scorer {scorer.name!r} returned {out.num_rows} rows for "
                               f"{table.num_rows} examples")
        out = out.add_column(0, source.id_column, table.column(source.id_column))
        tables[scorer.name] = scorer.finalize(out).combine_chunks()
    return tables


def _progress(enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(desc=desc, unit=" docs", disable=not enabled, leave=False, dynamic_ncols=True)
