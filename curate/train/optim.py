"""Optimizers and learning-rate schedules for the trainer.

A schedule is a function ``step -> learning rate`` (``step`` 0-based, the step
about to be taken) built from the config's ``lr``, ``schedule`` and
``schedule_params``:

* ``warmup_steps`` (every schedule, default 0): linear ramp ``lr * (step + 1) / warmup``.
* ``constant``: ``lr``.
* ``cosine``: half cosine from ``lr`` to ``lr * min_factor`` (default 0) at the end.
* ``linear``: straight line from ``lr`` to ``lr * end_factor`` (default 0) at the end.
* ``step``: ``lr * gamma ** k`` (``gamma`` default 0.1) after the k-th milestone; the
  milestones are steps (``milestones=[...]``) or epochs (``milestone_epochs=[...]``).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

import torch

from curate.core.errors import CurateError

SCHEDULES = ("constant", "cosine", "step", "linear")
OPTIMIZERS = ("sgd", "adam")
_PARAMS = {"constant": {"warmup_steps"},
           "cosine": {"warmup_steps", "min_factor"},
           "linear": {"warmup_steps", "end_factor"},
           "step": {"warmup_steps", "milestones", "milestone_epochs", "gamma"}}


def make_optimizer(config, params) -> torch.optim.Optimizer:
    """SGD (``momentum``, ``nesterov``) or Adam, both with ``weight_decay`` (L2)."""
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               nesterov=config.nesterov, weight_decay=config.weight_decay)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    raise CurateError(f"unknown optimizer {config.optimizer!r}; known: {', '.join(OPTIMIZERS)}")


def check_schedule(name: str, params: dict) -> None:
    if name not in SCHEDULES:
        raise CurateError(f"unknown schedule {name!r}; known: {', '.join(SCHEDULES)}")
    unknown = sorted(set(params) - _PARAMS[name])
    if unknown:
        raise CurateError(f"unknown parameter {unknown[0]!r} for schedule {name!r}; known: "
                          f"{', '.join(sorted(_PARAMS[name]))}")
    if name == "step" and ("milestones" in params) == ("milestone_epochs" in params):
        raise CurateError("schedule 'step' needs exactly one of milestones (steps) or "
                          "milestone_epochs")


def lr_schedule(config, total_steps: int, steps_per_epoch: int) -> Callable[[int], float]:
    """The learning rate at each 0-based step of a run of ``total_steps`` steps."""
    params = config.schedule_params
    check_schedule(config.schedule, params)
    base, warmup = config.lr, int(params.get("warmup_steps", 0))

    if config.schedule == "step":
        milestones = (sorted(params["milestones"]) if "milestones" in params else
                      sorted(round(e * steps_per_epoch) for e in params["milestone_epochs"]))
        gamma = params.get("gamma", 0.1)

        def decayed(step: int) -> float:
            return base * gamma ** bisect.bisect_right(milestones, step)
    elif config.schedule in ("cosine", "linear"):
        floor = params.get("min_factor" if config.schedule == "cosine" else "end_factor", 0.0)
        span = max(total_steps - warmup, 1)

        def decayed(step: int) -> float:
            progress = min(max(step - warmup, 0) / span, 1.0)
            shape = (0.5 * (1 + math.cos(math.pi * progress)) if config.schedule == "cosine"
                     else 1 - progress)
            return base * (floor + (1 - floor) * shape)
    else:
        def decayed(step: int) -> float:
            return base

    def lr_at(step: int) -> float:
        if step < warmup:
            return base * (step + 1) / warmup
        return decayed(step)

    return lr_at
