"""The Ray executor: the same tasks as the local executor, on a Ray cluster.

Shards go to a bounded pool of actors. Each actor runs ``setup`` once when it starts
(the scorers, with their models, are built there from a single object in Ray's store,
so a fastText model is loaded once per actor and never shipped with a shard), then
scores one shard at a time. The driver keeps at most one shard in flight per actor and
decides everything else: which shards exist, what they are called, where their output
goes (each shard task writes and commits its own files), and what is retried.

* A shard whose actor dies (killed, out of memory, node lost) is retried on a fresh
  actor, up to ``retries`` times; a dead actor never hangs the run.
* An error in the data (:class:`curate.core.errors.CurateError`) is not retried: it
  stops the run with its one-line message.
* The pool leaves one CPU of the cluster to the driver's own tasks (an actor pool that
  takes every CPU of a small instance can hang), and never has more actors than shards.
  A local instance is therefore started with one logical CPU more than the machine
  has: the actors get every core, and the spare one is only ever taken by the driver's
  light tasks.

Without ``address`` a local Ray instance starts for the run and shuts down at its end;
with one (or when Ray is already initialised in this process, as in a test session) the
executor joins that cluster and leaves it running. While it is active, training seeds
and experiment cells run as Ray tasks too (:mod:`curate.core.tasks`).
"""

from __future__ import annotations

import contextlib
import os

from curate.core import tasks
from curate.core.errors import CurateError
from curate.executor import Executor

#: Times a shard is retried after its actor died.
DEFAULT_RETRIES = 2


def _ray():
    try:
        import ray
    except ImportError:
        raise CurateError("--executor ray needs Ray: pip install 'curate[ray]'") from None
    return ray


class RayExecutor(Executor):
    """Run tasks on a Ray cluster.

    Args:
        address: the cluster to join (``auto``, ``host:6379`` or ``ray://host:10001``);
            None starts a local instance for the run.
        workers: actors for shard tasks (None: the cluster's CPUs less one, at least 1).
        num_cpus: CPUs each actor or task requests (default 1).
        memory: bytes of memory each actor requests (None: no request).
        retries: times a shard is retried when its actor dies (default 2).
        local_cpus: logical CPUs of a local instance started without ``address`` (None:
            the machine's CPUs plus the one kept free).
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None,
                 num_cpus: float = 1, memory: int | None = None,
                 retries: int = DEFAULT_RETRIES, local_cpus: int | None = None):
        self.address, self.workers, self.num_cpus = address, workers, num_cpus
        self.memory, self.retries, self.local_cpus = memory, retries, local_cpus
        self._started = False
        self._depth = 0
        self._stack: contextlib.ExitStack | None = None

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> RayExecutor:
        self._depth += 1
        if self._depth > 1:
            return self
        ray = _ray()
        if not ray.is_initialized():
            options = {"include_dashboard": False, "log_to_driver": False,
                       "configure_logging": False}
            try:
                if self.address is not None:
                    ray.init(address=self.address, **options)
                else:
                    cpus = self.local_cpus or (os.cpu_count() or 1) + 1
                    ray.init(num_cpus=cpus, **options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or "a local instance"
                cause = exc.__cause__ or exc.__context__
                why = " ".join(f"{exc}{f' ({cause})' if cause else ''}".split())[:400]
                hint = ("; a cluster started with `ray start` may need RAY_AUTH_MODE=token "
                        "in this environment" if self.address else "")
                raise CurateError(f"cannot start Ray on {where}: {why}{hint}") from None
            self._started = True
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(tasks.running_on(self))
        return self

    def __exit__(self, *exc) -> None:
        self._depth -= 1
        if self._depth:
            return
        self._stack.close()
        if self._started:
            _ray().shutdown()
            self._started = False

    def _pool_size(self, n_tasks: int) -> int:
        ray = _ray()
        cpus = int(ray.cluster_resources().get("CPU", 1))
        room = max(1, int((cpus - 1) // max(self.num_cpus, 1e-9)))
        return max(1, min(self.workers or room, room, n_tasks))

    # -- shards on actors ------------------------------------------------------------
    def map_unordered(self, fn, tasks_, *, setup=None, setup_args=()):
        with self:
            yield from self._map_unordered(fn, list(tasks_), setup, setup_args)

    def _map_unordered(self, fn, items, setup, setup_args):
        ray = _ray()
        if not items:
            return
        from ray.exceptions import RayActorError, RayTaskError

        options = {"num_cpus": self.num_cpus, "max_restarts": 0}
        if self.memory:
            options["memory"] = self.memory
        actor_class = ray.remote(**options)(_Worker)
        state = ray.put((setup, setup_args))
        pool = [actor_class.remote(state) for _ in range(self._pool_size(len(items)))]
        waiting = list(range(len(items)))[::-1]
        attempts = [0] * len(items)
        running: dict = {}  # object ref -> (task index, actor)

        def submit(actor):
            i = waiting.pop()
            attempts[i] += 1
            running[actor.run.remote(fn, items[i])] = (i, actor)

        try:
            for actor in pool:
                if waiting:
                    submit(actor)
            while running:
                done, _ = ray.wait(list(running), num_returns=1)
                ref = done[0]
                i, actor = running.pop(ref)
                try:
                    result = ray.get(ref)
                except RayActorError:
                    # The actor died with the shard: replace it and try the shard again.
                    if attempts[i] > self.retries:
                        raise CurateError(f"task {i} failed {attempts[i]} times: its Ray "
                                          "worker died each time (out of memory?)") from None
                    waiting.append(i)
                    actor = actor_class.remote(state)
                    pool.append(actor)
                    submit(actor)
                    continue
                except RayTaskError as exc:
                    cause = exc.cause if hasattr(exc, "cause") else None
                    if isinstance(cause, CurateError):
                        raise CurateError(str(cause)) from None
                    if attempts[i] > self.retries:
                        raise
                    waiting.append(i)
                    submit(actor)
                    continue
                yield i, result
                if waiting:
                    submit(actor)
        finally:
            for actor in pool:
                with contextlib.suppress(Exception):
                    ray.kill(actor)

    # -- seeds and cells as tasks ----------------------------------------------------
    def map_tasks(self, fn, jobs):
        """Yield ``fn(job)`` for every job, in job order, each a Ray task of ``num_cpus``
        CPUs with one torch thread (the task runner of :mod:`curate.core.tasks`).

        A job that is a tuple is sent as its parts, and a part shared by several jobs (the
        training set of every cell) is put in Ray's object store once, not once per task.
        """
        ray = _ray()
        remote = ray.remote(num_cpus=self.num_cpus, max_retries=self.retries)(_one_thread)
        stored: dict[int, object] = {}

        def put_once(part):
            if id(part) not in stored:
                stored[id(part)] = ray.put(part)
            return stored[id(part)]

        def parts(job):
            if not isinstance(job, tuple):
                return False, [job]
            return True, [put_once(p) if id(p) in shared else p for p in job]

        counts: dict[int, int] = {}
        for job in jobs:
            for part in job if isinstance(job, tuple) else ():
                counts[id(part)] = counts.get(id(part), 0) + 1
        shared = {key for key, n in counts.items() if n > 1}
        # At most one task per free CPU in flight, so tasks never oversubscribe the cores
        # and finished results are handed back (and cached) in job order as they come.
        limit = self._pool_size(len(jobs))
        refs: list = []
        try:
            for i in range(len(jobs)):
                while len(refs) < min(len(jobs), i + limit):
                    packed, args = parts(jobs[len(refs)])
                    refs.append(remote.remote(fn, packed, *args))
                yield ray.get(refs[i])
        finally:
            for ref in refs:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)


class _Worker:
    """A Ray actor: ``setup`` once, then one task at a time.

    An error in ``setup`` (a missing model file, a plugin that does not import) is kept
    and raised by every task, so the driver sees the error itself, not a dead actor.
    """

    def __init__(self, state):
        setup, setup_args = state
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        self.setup_error: BaseException | None = None
        try:
            if setup is not None:
                setup(*setup_args)
        except Exception as exc:  # noqa: BLE001 - re-raised by run()
            self.setup_error = exc

    def run(self, fn, item):
        if self.setup_error is not None:
            raise self.setup_error
        return fn(item)

    def pid(self) -> int:
        return os.getpid()


def _one_thread(fn, packed: bool, *args):
    """``fn(job)`` on one torch thread; ``packed``: the job is the tuple of ``args``."""
    import torch

    torch.set_num_threads(1)
    return fn(tuple(args) if packed else args[0])
