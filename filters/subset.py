"""Subset filters: rule verdicts, SQL predicates, thresholds, fractions, random."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import CurateError
from filters.base import Decision, Filter, as_numpy


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
        self.scorers = [scorers] if isinstance(scorers, str) else list(scorers)
        if not self.scorers:
            raise CurateError("rules: give at least one scorer name")

    def decide(self, scores: pa.Table) -> Decision:
        keep = np.ones(scores.num_rows, dtype=bool)
        reason = np.full(scores.num_rows, None, dtype=object)
        for scorer in self.scorers:
            verdict = self.column(scores, f"{scorer}_keep")
            verdict = pc.fill_null(verdict, False).to_numpy(zero_copy_only=False)
            why = (scores.column(f"{scorer}_reason").to_pylist()
                   if f"{scorer}_reason" in scores.column_names else [None] * scores.num_rows)
            newly = keep & ~verdict
            for i in np.flatnonzero(newly):
                reason[i] = f"{scorer}:{why[i] or 'rejected'}"
            keep &= verdict
        return Decision(keep=keep, reason=reason)


class Where(Filter):
    """Keep examples for which a SQL predicate over the score columns is true.

    The predicate runs in DuckDB with external access disabled; NULL counts as
    false. Example: ``"gopher_quality_keep AND fasttext_quality_hq > 0.5"``.
    """

    name = "where"

    def __init__(self, predicate: str, reason: str | None = None):
        self.predicate = predicate
        self.reason = reason or f"where: {predicate}"

    def decide(self, scores: pa.Table) -> Decision:
        from curate.sql import evaluate_predicate

        keep = evaluate_predicate(scores, self.predicate).to_numpy(zero_copy_only=False)
        return Decision(keep=keep, reason=[self.reason] * scores.num_rows)


class Threshold(Filter):
    """Keep examples whose score lies in ``[min, max]`` (inclusive; either may be None).

    Missing (null or NaN) scores are dropped with the reason ``"<column> missing"``.
    """

    name = "threshold"

    def __init__(self, column: str, min: float | None = None, max: float | None = None,
                 reason: str | None = None):
        if min is None and max is None:
            raise CurateError(f"threshold on {column!r}: give min, max or both")
        self.column_name, self.min, self.max, self.reason = column, min, max, reason

    def decide(self, scores: pa.Table) -> Decision:
        values = as_numpy(self.column(scores, self.column_name))
        keep = ~np.isnan(values)
        reason = np.full(len(values), f"{self.column_name} missing", dtype=object)
        if self.min is not None:
            low = keep & (values < self.min)
            reason[low] = self.reason or f"{self.column_name} < {self.min}"
            keep &= ~low
        if self.max is not None:
            high = keep & (values > self.max)
            reason[high] = self.reason or f"{self.column_name} > {self.max}"
            keep &= ~high
        return Decision(keep=keep, reason=reason)


class KeepFraction(Filter):
    """Keep the top (highest) or bottom (lowest) fraction of examples by a score.

    Exactly ``round(fraction * n)`` examples are kept; ties are broken by position,
    so the result is deterministic. Missing scores rank last.

    Args:
        by: score column.
        fraction: share to keep, in [0, 1].
        keep: ``"top"`` (highest scores, the default) or ``"bottom"``.
    """

    name = "keep_fraction"

    def __init__(self, by: str, fraction: float, keep: str = "top", reason: str | None = None):
        if not 0 <= fraction <= 1:
            raise CurateError(f"keep_fraction: fraction must be in [0, 1], got {fraction}")
        if keep not in ("top", "bottom"):
            raise CurateError(f"keep_fraction: keep must be 'top' or 'bottom', got {keep!r}")
        self.by, self.fraction, self.keep, self.reason = by, fraction, keep, reason

    def decide(self, scores: pa.Table) -> Decision:
        values = as_numpy(self.column(scores, self.by))
        n = len(values)
        key = -values if self.keep == "top" else values
        key = np.where(np.isnan(key), np.inf, key)
        ranked = np.lexsort((np.arange(n), key))
        keep = np.zeros(n, dtype=bool)
        keep[ranked[:_rounded(self.fraction * n)]] = True
        side = "highest" if self.keep == "top" else "lowest"
        why = self.reason or f"not in {side} {self.fraction:g} by {self.by}"
        return Decision(keep=keep, reason=[why] * n)


class RandomSubset(Filter):
    """Keep ``round(fraction * n)`` examples chosen uniformly at random with ``seed``."""

    name = "random"

    def __init__(self, fraction: float, seed: int = 0, reason: str | None = None):
        if not 0 <= fraction <= 1:
            raise CurateError(f"random: fraction must be in [0, 1], got {fraction}")
        self.fraction, self.seed = fraction, seed
        self.reason = reason or f"not in random {fraction:g} (seed {seed})"

    def decide(self, scores: pa.Table) -> Decision:
        n = scores.num_rows
        chosen = np.random.default_rng(self.seed).permutation(n)[:_rounded(self.fraction * n)]
        keep = np.zeros(n, dtype=bool)
        keep[chosen] = True
        return Decision(keep=keep, reason=[self.reason] * n)


def _rounded(x: float) -> int:
    """Round half up (Python's round() rounds half to even)."""
    return int(math.floor(x + 0.5))
