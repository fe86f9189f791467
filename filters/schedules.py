"""Per-step index schedules: paced curricula, RS2 and domain mixtures.

An *index schedule* says which training positions make up the batch at each
optimizer step. Every schedule here is

* a callable ``schedule(step) -> np.ndarray`` (int64 positions, 0-based step), which
  ``curate.train.train(..., batches=schedule)`` consumes, and
* a ``torch.utils.data.Sampler`` over batches (iterating yields one list of positions
  per step, ``len`` is the number of steps), usable as a ``DataLoader``'s
  ``batch_sampler``.

Batches depend only on ``(seed, step)`` (RS2: ``(seed, pass)``), so a schedule is
deterministic and can be queried at any step, in any order. ``epoch_size`` is the
number of examples one epoch of the schedule presents (RS2: one round).

Experiments build schedules by registered name (``curate.core.registry.SCHEDULES``)
with one call, ``builder(positions=..., batch_size=..., steps=... | epochs=..., seed=...,
**params)``: ``positions`` are the training positions the schedule draws from (for a
curriculum, in presentation order), and the budget is given either as optimizer steps
or as epochs of the schedule. Registered here: ``rs2`` and ``curriculum``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pyarrow as pa
import torch.utils.data

from curate.core import validate as check
from curate.core.errors import CurateError
from curate.core.registry import register_schedule
from filters.curriculum import Pacing


class IndexSchedule(torch.utils.data.Sampler):
    """Base class: ``steps`` batches; ``schedule(step)`` gives step's positions."""

    steps: int
    #: Examples one epoch of the schedule presents.
    epoch_size: int

    def __call__(self, step: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def __iter__(self):
        for step in range(self.steps):
            yield self(step).tolist()

    def __len__(self) -> int:
        return self.steps

    def _check_step(self, step: int) -> None:
        if not 0 <= step < self.steps:
            raise CurateError(f"step {step} is outside the schedule's 0..{self.steps - 1}")


def _check_budget(batch_size: int, steps: int) -> None:
    for label, value in (("batch_size", batch_size), ("steps", steps)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise CurateError(f"{label} must be a positive integer, got {value!r}")


class CurriculumSchedule(IndexSchedule):
    """Paced curriculum: at step t, a batch drawn uniformly without replacement from the
    first ``g(t)`` positions of ``order``.

    Args:
        order: [n] training positions, first to present first (:func:`difficulty_order`,
            :func:`curate.core.tables.ordered_positions`).
        batch_size: examples per step; ``g(t)`` is raised to at least ``batch_size``
            (or ``n`` if smaller), so every batch is full.
        steps: number of optimizer steps.
        pacing: a :class:`Pacing` or its name; ``start``/``full_at`` build it.
        seed: batch sampling seed.
    """

    def __init__(self, order, batch_size: int, steps: int, pacing: Pacing | str = "linear",
                 start: float = 0.1, full_at: float = 0.8, seed: int = 0):
        _check_budget(batch_size, steps)
        self.order = np.asarray(order, dtype=np.int64)
        if len(self.order) == 0:
            raise CurateError("curriculum order is empty: nothing to train on")
        self.pacing = pacing if isinstance(pacing, Pacing) else Pacing(
            pacing, len(self.order), steps, start=start, full_at=full_at)
        self.batch_size, self.steps, self.seed = batch_size, steps, seed
        self.epoch_size = len(self.order)

    def available(self, step: int) -> int:
        """How many positions of ``order`` the batch at ``step`` is drawn from."""
        return max(self.pacing(step), min(self.batch_size, len(self.order)))

    def __call__(self, step: int) -> np.ndarray:
        self._check_step(step)
        g = self.available(step)
        rng = np.random.default_rng([self.seed, step])
        return self.order[rng.choice(g, size=min(self.batch_size, g), replace=False)]


class RS2Schedule(IndexSchedule):
    """RS2 without replacement (Okanovic et al., 2023): each round (a short "epoch") trains
    on a fresh random ``fraction`` of the data, drawn without replacement across rounds
    until the data is exhausted, then from a new permutation.

    The rounds read one stream of seeded permutations of ``positions``, so every block of
    ``n`` consecutive draws (one pass) holds each position exactly once; a round that
    straddles two passes takes the end of one and the start of the next. A round has
    ``k = max(1, round(fraction * n))`` examples in ``ceil(k / batch_size)`` batches (the
    last may be smaller).

    Args:
        positions: [n] training positions, or an int n meaning ``0..n-1``.
        fraction: share of the data per round, in (0, 1].
        batch_size, steps: as for the trainer.
        seed: permutation seed.
    """

    def __init__(self, positions, fraction: float, batch_size: int, steps: int, seed: int = 0):
        _check_budget(batch_size, steps)
        if not 0 < fraction <= 1:
            raise CurateError(f"rs2: fraction must be in (0, 1], got {fraction}")
        self.positions = np.arange(positions) if isinstance(positions, (int, np.integer)) \
            else np.asarray(positions, dtype=np.int64)
        n = len(self.positions)
        if n == 0:
            raise CurateError("rs2: no positions to sample from")
        self.round_size = self.epoch_size = rs2_round_size(n, fraction)
        self.steps_per_round = math.ceil(self.round_size / batch_size)
        self.batch_size, self.steps, self.seed = batch_size, steps, seed
        self._passes: dict[int, np.ndarray] = {}  # the last two passes' permutations

    def _permutation(self, number: int) -> np.ndarray:
        if number not in self._passes:
            self._passes = {k: v for k, v in self._passes.items() if k == number - 1}
            self._passes[number] = np.random.default_rng([self.seed, number]).permutation(
                self.positions)
        return self._passes[number]

    def stream(self, start: int, stop: int) -> np.ndarray:
        """Draws ``start..stop-1`` of the concatenated per-pass permutations."""
        n = len(self.positions)
        index = np.arange(start, stop)
        out = np.empty(len(index), dtype=np.int64)
        for number in np.unique(index // n):
            here = index // n == number
            out[here] = self._permutation(int(number))[index[here] % n]
        return out

    def __call__(self, step: int) -> np.ndarray:
        self._check_step(step)
        round_, batch = divmod(step, self.steps_per_round)
        first = round_ * self.round_size + batch * self.batch_size
        last = round_ * self.round_size + min((batch + 1) * self.batch_size, self.round_size)
        return self.stream(first, last)


def rs2_round_size(n: int, fraction: float) -> int:
    """Examples in one RS2 round: ``max(1, round(fraction * n))`` (half up)."""
    return max(1, int(math.floor(fraction * n + 0.5)))


# -- registered builders ----------------------------------------------------------------
def _steps(name: str, steps, epochs, epoch_size: int, batch_size: int) -> int:
    """The budget in optimizer steps: ``steps``, or ``epochs`` of ``epoch_size`` examples."""
    if (steps is None) == (epochs is None):
        raise CurateError(f"schedule {name!r}: give exactly one of steps and epochs")
    if steps is not None:
        return check.positive_int(name, "steps", steps)
    return check.positive_int(name, "epochs", epochs) * math.ceil(epoch_size / batch_size)


@register_schedule(name="rs2")
def rs2_schedule(*, positions, fraction: float, batch_size: int, steps: int | None = None,
                 epochs: int | None = None, seed: int = 0) -> RS2Schedule:
    """RS2 over ``positions``: every round a fresh random ``fraction`` of them; an epoch
    is one round (see :class:`RS2Schedule`)."""
    fraction = check.number("rs2", "fraction", fraction, minimum=0.0, maximum=1.0,
                            strict_minimum=True)
    n = positions if isinstance(positions, (int, np.integer)) else len(positions)
    steps = _steps("rs2", steps, epochs, rs2_round_size(n, fraction), batch_size)
    return RS2Schedule(positions, fraction, batch_size, steps, seed=seed)


@register_schedule(name="curriculum")
def curriculum_schedule(*, positions, batch_size: int, steps: int | None = None,
                        epochs: int | None = None, seed: int = 0, pacing: str = "linear",
                        start: float = 0.1, full_at: float = 0.8) -> CurriculumSchedule:
    """A paced curriculum over ``positions`` in their order, first presented first (see
    :class:`CurriculumSchedule`); an epoch is ``len(positions)`` examples."""
    order = np.asarray(positions, dtype=np.int64)
    steps = _steps("curriculum", steps, epochs, len(order), batch_size)
    return CurriculumSchedule(order, batch_size, steps, pacing, start=start, full_at=full_at,
                              seed=seed)


# Builders that present their positions in order need an order (a selection's ``order``).
curriculum_schedule.needs_order = True


class MixtureSchedule(IndexSchedule):
    """Batches mixed from groups (domains, tags) with per-phase weights.

    At each step the batch's group counts are a multinomial draw with the current
    phase's weights; examples are drawn uniformly within a group (without replacement
    inside a batch unless the group is smaller than its count), and the batch is
    shuffled.

    Args:
        groups: ``{name: positions}``, or a sequence with one group name per training
            position (None: never drawn), e.g. the selection's ``tag`` column.
        phases: ``[{"until": 0.85, "weights": {"web": 0.8, "code": 0.2}},
            {"until": 1.0, "weights": {"web": 0.4, "code": 0.6}}]``; ``until`` is the
            share of ``steps`` where the phase ends (increasing, the last is 1.0);
            weights need not sum to 1, groups left out get 0.
        batch_size, steps: as for the trainer.
        seed: sampling seed.
    """

    def __init__(self, groups, phases: Sequence[Mapping], batch_size: int, steps: int,
                 seed: int = 0):
        _check_budget(batch_size, steps)
        self.groups = _groups(groups)
        self.names = sorted(self.groups)
        self.ends, self.weights = _phases(phases, self.groups)
        self.batch_size, self.steps, self.seed = batch_size, steps, seed
        self.epoch_size = int(sum(len(g) for g in self.groups.values()))

    def phase(self, step: int) -> int:
        """Index of the phase ``step`` falls in."""
        return int(np.searchsorted(self.ends, step / self.steps, side="right"))

    def __call__(self, step: int) -> np.ndarray:
        self._check_step(step)
        rng = np.random.default_rng([self.seed, step])
        counts = rng.multinomial(self.batch_size, self.weights[self.phase(step)])
        parts = [rng.choice(self.groups[name], size=count,
                            replace=count > len(self.groups[name]))
                 for name, count in zip(self.names, counts) if count]
        return rng.permutation(np.concatenate(parts))


def _groups(groups) -> dict[str, np.ndarray]:
    if isinstance(groups, Mapping):
        out = {str(k): np.asarray(v, dtype=np.int64) for k, v in groups.items()}
    else:
        labels = groups.to_pylist() if isinstance(groups, (pa.Array, pa.ChunkedArray)) \
            else list(groups)
        names = sorted({str(v) for v in labels if v is not None})
        values = np.array([None if v is None else str(v) for v in labels], dtype=object)
        out = {name: np.flatnonzero(values == name) for name in names}
    if not out:
        raise CurateError("mixture: no groups to draw from")
    return out


def _phases(phases, groups: dict) -> tuple[np.ndarray, np.ndarray]:
    """Phase ends [p] (all but the last) and normalised weights [p, groups]."""
    if not phases:
        raise CurateError("mixture: give at least one phase")
    names, ends, weights = sorted(groups), [], []
    for number, phase in enumerate(phases, start=1):
        unknown = set(phase) - {"until", "weights"}
        if unknown or "weights" not in phase:
            raise CurateError(f"mixture phase {number}: expected keys 'until' and 'weights'")
        bad = [g for g in phase["weights"] if str(g) not in groups]
        if bad:
            raise CurateError(f"mixture phase {number}: unknown group {bad[0]!r}; groups are: "
                              f"{', '.join(names)}")
        row = np.array([float(phase["weights"].get(g, 0.0)) for g in names])
        empty = [g for g, w in zip(names, row) if w > 0 and len(groups[g]) == 0]
        if (row < 0).any() or row.sum() <= 0 or empty:
            raise CurateError(f"mixture phase {number}: weights must be >= 0 with a positive "
                              "sum, on groups that have examples")
        weights.append(row / row.sum())
        ends.append(float(phase.get("until", 1.0)))
    if ends[-1] != 1.0 or any(b <= a for a, b in zip(ends, ends[1:])) or ends[0] <= 0:
        raise CurateError(f"mixture: phase 'until' values must increase and end at 1.0, "
                          f"got {ends}")
    return np.array(ends[:-1]), np.array(weights)

