"""Curricula: orderings by a score and pacing functions.

A curriculum step in a recipe (:class:`Curriculum`) writes the ``order`` column of
a selection; :func:`curate.core.tables.ordered_positions` turns that order back into
training positions, and :class:`filters.schedules.CurriculumSchedule` paces it into
batches.
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from curate.core import validate as check
from curate.core.errors import CurateError
from curate.core.filter import Decision, Filter, as_numpy
from curate.core.registry import register_filter

ORDERINGS = ("easy_to_hard", "hard_to_easy", "random")


def difficulty_order(values, ordering: str = "easy_to_hard", higher_is_harder: bool = True,
                     seed: int = 0) -> np.ndarray:
    """Positions ``0..n-1`` in the order a curriculum presents them.

    ``values``: [n] scores (NaN = missing; missing scores go last, ties by position).
    ``ordering``: ``"easy_to_hard"`` (curriculum), ``"hard_to_easy"`` (anti-curriculum)
    or ``"random"`` (a seeded permutation: the "random curriculum" control of Wu et al.).
    """
    if ordering not in ORDERINGS:
        raise CurateError(f"ordering must be one of {', '.join(ORDERINGS)}, got {ordering!r}")
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if ordering == "random":
        return np.random.default_rng(seed).permutation(n)
    hardness = values if higher_is_harder else -values
    key = hardness if ordering == "easy_to_hard" else -hardness
    return np.lexsort((np.arange(n), np.nan_to_num(key), np.isnan(key)))


@register_filter
class Curriculum(Filter):
    """Write a training order (the selection's ``order`` column) by a score; drop nothing.

    ``order`` is 0 for the first example to present, over the rows this step sees (the
    examples kept so far). Args as in :func:`difficulty_order`, with ``by`` the score
    column.
    """

    name = "curriculum"
    score_params = ("by",)
    direction_param = "higher_is_harder"

    def __init__(self, by: str, ordering: str = "easy_to_hard", higher_is_harder: bool = True,
                 seed: int = 0):
        self.by = check.string("curriculum", "by", by)
        self.ordering = check.choice("curriculum", "ordering", ordering, ORDERINGS)
        self.higher_is_harder = check.boolean("curriculum", "higher_is_harder",
                                              higher_is_harder)
        self.seed = check.non_negative_int("curriculum", "seed", seed)

    def decide(self, scores: pa.Table) -> Decision:
        values = as_numpy(self.score_column(scores, self.by))
        order = difficulty_order(values, self.ordering, self.higher_is_harder, self.seed)
        rank = np.empty(len(order), dtype=np.int64)
        rank[order] = np.arange(len(order))
        return Decision(order=pa.array(rank, pa.int64()))


# -- pacing -----------------------------------------------------------------------------
PACINGS = ("linear", "quadratic", "root", "step", "exponential", "logarithmic")
_ALIASES = {"quad": "quadratic", "exp": "exponential", "log": "logarithmic"}


class Pacing:
    """How many examples (easiest first) are available at each step: ``g(step)``.

    Wu, Dyer and Neyshabur (ICLR 2021), ``utils.py`` of google-research/understanding-
    curricula: ``g`` starts at ``start * n`` at step 0 and reaches ``n`` at step
    ``full_at * steps`` (T = ``steps``, a = ``full_at``, b = ``start``, c = 10):

    ============  ============================================================
    linear        ``bN + (N - bN) * t / (aT)``
    quadratic     ``bN + (N - bN) * (t / (aT))**2``
    root          ``bN + (N - bN) * (t / (aT))**0.5``
    step          ``bN`` until step ``aT``, then ``N``
    exponential   ``bN + (N - bN) * (exp(c t / (aT)) - 1) / (exp(c) - 1)``
    logarithmic   ``bN + (N - bN) * (1 + log(t / (aT) + exp(-c)) / c)``
    ============  ============================================================

    Values are truncated to integers as in the reference, then clipped to ``[1, n]``.
    ``quad``, ``exp`` and ``log`` are accepted as aliases.
    """

    def __init__(self, name: str, n: int, steps: int, start: float = 0.1, full_at: float = 0.8,
                 c: float = 10.0):
        name = _ALIASES.get(name, name)
        if name not in PACINGS:
            raise CurateError(f"pacing must be one of {', '.join(PACINGS)}, got {name!r}")
        if not 0 < start <= 1:
            raise CurateError(f"pacing start must be in (0, 1], got {start}")
        if not full_at > 0:
            raise CurateError(f"pacing full_at must be positive, got {full_at}")
        if n < 1 or steps < 1:
            raise CurateError(f"pacing needs n >= 1 and steps >= 1, got n={n}, steps={steps}")
        self.name, self.n, self.steps, self.start, self.full_at, self.c = \
            name, n, steps, start, full_at, c

    def __call__(self, step: int) -> int:
        n, first, span = self.n, self.start * self.n, self.full_at * self.steps
        x = step / span
        grow = {"linear": lambda: x, "quadratic": lambda: x * x, "root": lambda: math.sqrt(x),
                "step": lambda: float(step // span),
                "exponential": lambda: math.expm1(min(self.c * x, 700.0)) / math.expm1(self.c),
                "logarithmic": lambda: 1 + math.log(x + math.exp(-self.c)) / self.c}[self.name]
        return int(min(max(int(first + (n - first) * grow()), 1), n))
