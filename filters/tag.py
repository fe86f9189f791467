"""Tagging: label examples instead of dropping them (Dolma-style)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.core import validate as check
from curate.core.errors import CurateError
from curate.core.filter import Decision, Filter
from curate.core.registry import register_filter


@register_filter
class Tag(Filter):
    """Give each example the tag of the first rule whose SQL predicate holds.

    Args:
        rules: ``[{"when": "<SQL predicate>", "tag": "<tag>"}, ...]`` (or
            ``(tag, predicate)`` pairs), checked in order.
        default: tag for examples no rule matches (None leaves them untagged).

    Tags never drop an example; ``apply`` writes them as a column or as a text
    prefix (a control token such as ``<|hq|>``).
    """

    name = "tag"

    def __init__(self, rules, default: str | None = None):
        self.rules = [_rule(r) for r in rules]
        if not self.rules:
            raise CurateError("tag: give at least one rule")
        self.default = check.string("tag", "default", default, optional=True)

    def decide(self, scores: pa.Table) -> Decision:
        from curate.sql import evaluate_predicate

        tags = np.full(scores.num_rows, self.default, dtype=object)
        untagged = np.ones(scores.num_rows, dtype=bool)
        for tag, predicate in self.rules:
            hit = untagged & evaluate_predicate(scores, predicate).to_numpy(
                zero_copy_only=False)
            tags[hit] = tag
            untagged &= ~hit
        return Decision(tag=pa.array(tags.tolist(), pa.string()))


def _rule(rule) -> tuple[str, str]:
    if isinstance(rule, dict):
        unknown = set(rule) - {"when", "tag"}
        if unknown or not {"when", "tag"} <= set(rule):
            raise CurateError(f"tag rule {rule!r}: expected keys 'when' and 'tag'")
        return str(rule["tag"]), str(rule["when"])
    tag, predicate = rule
    return str(tag), str(predicate)
