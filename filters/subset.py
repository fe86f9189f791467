"""Subset filters: rule verdicts, SQL predicates, thresholds, fractions, random."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.core import validate as check
from curate.core.errors import CurateError
from curate.core.filter import Decision, Filter, as_numpy, round_half_up
from curate.core.registry import register_filter
from filters.labels import class_budgets


@register_filter
class Rules(Filter):
    """Drop examples a rule set rejected, with the rule's own reason.

    Every scorer that writes ``<name>_keep`` (and ``<name>_reason``) is a rule
    set: Gopher, C4, FineWeb, and the deduplicators (which keep one example per
    cluster). Scorers are checked in the order given, and the first that rejects
    an example names the reason, as ``"<scorer>:<reason>"``.

    Args:
        scorers: scorer names, e.g. ``["gopher_repetition", "gopher_quality"]``.
    """

    name = "rules"

    def __init__(self, scorers: list[str] | str):
        self.scorers = check.string_list("rules", "scorers", scorers)
        if not self.scorers:
            raise CurateError("rules: give at least one scorer name")

    def decide(self, scores: pa.Table) -> Decision:
        keep = np.ones(scores.num_rows, dtype=bool)
        reason = np.full(scores.num_rows, None, dtype=object)
        for scorer in self.scorers:
            verdict = self.score_column(scores, f"{scorer}_keep")
            verdict = pc.fill_null(verdict, False).to_numpy(zero_copy_only=False)
            why = (scores.column(f"{scorer}_reason").to_pylist()
                   if f"{scorer}_reason" in scores.column_names else [None] * scores.num_rows)
            newly = keep & ~verdict
            for i in np.flatnonzero(newly):
                reason[i] = f"{scorer}:{why[i] or 'rejected'}"
            keep &= verdict
        return Decision(keep=keep, reason=reason)


@register_filter
class Where(Filter):
    """Keep examples for which a SQL predicate over the score columns is true.

    The predicate runs in DuckDB with external access disabled; NULL counts as
    false. Example: ``"gopher_quality_keep AND fasttext_quality_hq > 0.5"``.
    """

    name = "where"

    def __init__(self, predicate: str, reason: str | None = None):
        self.predicate = check.string("where", "predicate", predicate)
        self.reason = check.string("where", "reason", reason, optional=True)

    def decide(self, scores: pa.Table) -> Decision:
        from curate.sql import evaluate_predicate

        keep = evaluate_predicate(scores, self.predicate).to_numpy(zero_copy_only=False)
        reason = self.reason or f"where: {self.predicate}"
        return Decision(keep=keep, reason=[reason] * scores.num_rows)


@register_filter
class Threshold(Filter):
    """Keep examples whose score lies in ``[min, max]`` (inclusive; either may be None).

    Missing (null or NaN) scores are dropped with the reason ``"<column> missing"``.
    """

    name = "threshold"
    score_params = ("column",)

    def __init__(self, column: str, min: float | None = None, max: float | None = None,
                 reason: str | None = None):
        self.column = check.string("threshold", "column", column)
        self.min = check.number("threshold", "min", min, optional=True)
        self.max = check.number("threshold", "max", max, optional=True)
        self.reason = check.string("threshold", "reason", reason, optional=True)
        if self.min is None and self.max is None:
            raise CurateError(f"threshold on {column!r}: give min, max or both")

    def decide(self, scores: pa.Table) -> Decision:
        values = as_numpy(self.score_column(scores, self.column))
        keep = ~np.isnan(values)
        reason = np.full(len(values), f"{self.column} missing", dtype=object)
        if self.min is not None:
            low = keep & (values < self.min)
            reason[low] = self.reason or f"{self.column} < {self.min}"
            keep &= ~low
        if self.max is not None:
            high = keep & (values > self.max)
            reason[high] = self.reason or f"{self.column} > {self.max}"
            keep &= ~high
        return Decision(keep=keep, reason=reason)


@register_filter
class KeepFraction(Filter):
    """Keep a fraction of examples by a score: the easiest, the hardest or the middle.

    For difficulty scores (loss, EL2N, GraNd, forgetting) higher means harder, the
    default. Pass ``higher_is_harder=False`` for scores where lower means harder (AUM,
    cartography confidence). ``"top"`` and ``"bottom"`` name raw score values (the
    highest / the lowest) whatever the direction; with the default direction they are
    the same as ``"hard"`` and ``"easy"``.

    ``offset`` first drops the hardest ``round(offset * n)`` examples (Paul et al.'s
    offset; Sorscher et al.: the hardest examples are often mislabelled), then the
    policy picks ``round(fraction * n)`` of the rest, so ``fraction + offset <= 1``.
    ``"middle"`` keeps the block centred in the difficulty ranking of what is left.

    Ties are broken by position, so the result is deterministic. Missing (null or NaN)
    scores are ranked after every scored example, whatever the policy.

    ``balance`` names a label column: the same fraction (and offset) is then applied
    within each class, and per-class counts are apportioned by largest remainder so
    that the total is still ``round(fraction * n)``. The column must be in the table
    passed to :meth:`select`; :func:`filters.labels.join_labels` joins it from the
    dataset by id.

    Args:
        by: score column.
        fraction: share of the input to keep, in [0, 1].
        keep: ``"easy"``, ``"hard"``, ``"middle"``, ``"top"`` (the default) or ``"bottom"``.
        offset: share of the input to drop first from the hardest end, in [0, 1].
        higher_is_harder: direction of ``by`` (default True).
        balance: label column for a class-balanced budget (default None: global).
    """

    name = "keep_fraction"
    score_params = ("by",)
    direction_param = "higher_is_harder"
    POLICIES = ("easy", "hard", "middle", "top", "bottom")

    def __init__(self, by: str, fraction: float, keep: str = "top", offset: float = 0.0,
                 higher_is_harder: bool = True, balance: str | None = None,
                 reason: str | None = None):
        by = check.string("keep_fraction", "by", by)
        fraction = check.fraction("keep_fraction", "fraction", fraction)
        keep = check.choice("keep_fraction", "keep", keep, self.POLICIES)
        offset = check.fraction("keep_fraction", "offset", offset)
        higher_is_harder = check.boolean("keep_fraction", "higher_is_harder", higher_is_harder)
        balance = check.string("keep_fraction", "balance", balance, optional=True)
        reason = check.string("keep_fraction", "reason", reason, optional=True)
        if not offset <= 1 - fraction + 1e-12:
            raise CurateError(f"keep_fraction: offset must be in [0, 1 - fraction], got {offset}")
        self.by, self.fraction, self.keep, self.offset = by, fraction, keep, offset
        self.higher_is_harder, self.balance, self.reason = higher_is_harder, balance, reason

    def decide(self, scores: pa.Table) -> Decision:
        values = as_numpy(self.score_column(scores, self.by))
        n = len(values)
        # "top"/"bottom" are raw-value aliases: rank by value, highest = "hard".
        hardness = values if (self.higher_is_harder or self.keep in ("top", "bottom")) \
            else -values
        policy = {"top": "hard", "bottom": "easy"}.get(self.keep, self.keep)
        keep = np.zeros(n, dtype=bool)
        skipped = np.zeros(n, dtype=bool)
        labels = None if self.balance is None else self.score_column(scores, self.balance)
        for rows, (k, o) in class_budgets(labels, n, (self.fraction, self.offset)):
            chosen, hardest = _pick(hardness[rows], k, o, policy)
            keep[rows[chosen]] = True
            skipped[rows[hardest]] = True
        reason = np.full(n, self.reason or self._why(), dtype=object)
        if self.offset:
            reason[skipped] = self.reason or f"among hardest {self.offset:g} by {self.by}"
        return Decision(keep=keep, reason=reason)

    def _why(self) -> str:
        side = {"top": "highest", "bottom": "lowest", "easy": "easiest", "hard": "hardest",
                "middle": "middle"}[self.keep]
        return f"not in {side} {self.fraction:g} by {self.by}"


def _pick(hardness: np.ndarray, k: int, o: int, policy: str) -> tuple[np.ndarray, np.ndarray]:
    """Positions kept and positions skipped as hardest, within one group.

    ``hardness``: [m] floats (NaN = missing); ``k`` to keep, ``o`` hardest to skip.
    """
    m = len(hardness)
    position = np.arange(m)
    missing = np.isnan(hardness)
    scored = np.flatnonzero(~missing)
    easy_first = scored[np.lexsort((scored, hardness[scored]))]
    hard_first = scored[np.lexsort((scored, -hardness[scored]))]
    hardest = hard_first[:o]
    rest = hard_first[o:] if policy == "hard" else easy_first[~np.isin(easy_first, hardest)]
    if policy == "middle":
        start = max(0, (len(rest) - k) // 2)
        rest = np.concatenate([rest[start:], rest[:start]])
    ranked = np.concatenate([rest, position[missing]])
    return ranked[:k], hardest


@register_filter
class RandomSubset(Filter):
    """Keep ``round(fraction * n)`` examples chosen uniformly at random with ``seed``."""

    name = "random"

    def __init__(self, fraction: float, seed: int = 0, reason: str | None = None):
        self.fraction = check.fraction("random", "fraction", fraction)
        self.seed = check.non_negative_int("random", "seed", seed)
        self.reason = check.string("random", "reason", reason, optional=True)

    def decide(self, scores: pa.Table) -> Decision:
        n = scores.num_rows
        chosen = np.random.default_rng(self.seed).permutation(n)[:round_half_up(self.fraction * n)]
        keep = np.zeros(n, dtype=bool)
        keep[chosen] = True
        reason = self.reason or f"not in random {self.fraction:g} (seed {self.seed})"
        return Decision(keep=keep, reason=[reason] * n)
