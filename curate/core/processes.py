"""Worker processes that neither outlive nor outwait their parent.

Used by every process pool in curate (the scoring executor and the training harness's
spawned seeds and cells): :func:`signals_held` around starting workers,
:func:`guard_worker` first in each worker, :func:`stop_pool` when the caller is
interrupted, fails or stops early. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time

_HELD = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_held():
    """Block SIGINT and SIGTERM in this thread for the block.

    A process forked or spawned in the block inherits the mask, so a Ctrl-C that reaches
    it before :func:`guard_worker` has set its handlers stays pending (then is ignored)
    instead of printing a traceback from a half-started worker.
    """
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _HELD)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def guard_worker(parent: int) -> None:
    """Run first in a worker process whose parent is process ``parent``.

    The worker ignores SIGINT (a terminal's Ctrl-C goes to the whole process group; the
    parent stops its workers), dies at once on SIGTERM, and dies when the parent dies,
    even by SIGKILL: by ``PR_SET_PDEATHSIG`` on Linux and by a watchdog thread that
    polls its parent everywhere.
    """
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _HELD)
    ppid = os.getppid()
    if not _alive(parent):  # it died before this worker got here
        os._exit(1)
    threading.Thread(target=_watch_parent, args=(parent, ppid), name="curate-watchdog",
                     daemon=True).start()


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


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
    # ``ppid`` is ``parent`` except under a fork server, which dies with ``parent``.
    while os.getppid() == ppid and _alive(parent):
        time.sleep(interval)
    os._exit(1)


def stop_pool(pool, grace: float = 1.0) -> None:
    """Stop a ``ProcessPoolExecutor`` now: cancel what is queued, SIGTERM its workers,
    SIGKILL those still alive after ``grace`` seconds; wait for nothing else."""
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
