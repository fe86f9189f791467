"""Where independent tasks (training seeds, experiment grid cells) run.

By default :func:`curate.train.seeds.map_processes` runs them in local processes. While a
cluster executor is active (``--executor ray``), :func:`active` returns it and the tasks
go to the cluster instead, each with its own CPU request. The executor registers itself
with :func:`running_on`; this module only holds the current one, so the training layer
needs no cluster code.
"""

from __future__ import annotations

import contextlib

_ACTIVE: list = []


@contextlib.contextmanager
def running_on(runner):
    """Make ``runner`` (an object with ``map_tasks(fn, jobs)``) the task runner in the block."""
    _ACTIVE.append(runner)
    try:
        yield runner
    finally:
        _ACTIVE.remove(runner)


def active():
    """The task runner in use, or None for local processes."""
    return _ACTIVE[-1] if _ACTIVE else None
