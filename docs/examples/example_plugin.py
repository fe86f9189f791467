"""An example plugin: one scorer and one filter, registered by name on import.

Load it with ``--plugin example_plugin`` (or ``plugins: [example_plugin]`` in a recipe)
with this folder on ``PYTHONPATH``::

    PYTHONPATH=docs/examples curate --plugin example_plugin scorers
    PYTHONPATH=docs/examples curate run docs/examples/plugin.yaml --out /tmp/docs-check-plugin
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.core import validate as check
from curate.core.filter import Decision, Filter, as_numpy
from curate.core.registry import register_filter, register_scorer
from curate.core.scorer import EASIER, Scorer


@register_scorer
class Length(Scorer):
    """Characters and whitespace-separated words of each text.

    Output: ``length_chars`` and ``length_words`` (int64).
    """

    name = "length"
    kind = "rule"
    input_columns = ("text",)          # "text" stands for the run's text column
    directions = {"length_words": EASIER}
    primary = "length_words"

    def __init__(self, text_column: str = "text"):
        self.text_column = check.string(self.name, "text_column", text_column)

    def score_batch(self, batch: pa.Table) -> pa.Table:
        texts = self.texts(batch)
        return pa.table({self.col("chars"): pa.array([len(t) for t in texts], pa.int64()),
                         self.col("words"): pa.array([len(t.split()) for t in texts],
                                                     pa.int64())})


@register_filter
class TopN(Filter):
    """Keep the ``n`` examples with the highest ``by`` (ties by position; missing last)."""

    name = "top_n"
    score_params = ("by",)

    def __init__(self, by: str, n: int, reason: str | None = None):
        self.by = check.string(self.name, "by", by)
        self.n = check.non_negative_int(self.name, "n", n)
        self.reason = check.string(self.name, "reason", reason, optional=True)

    def decide(self, scores: pa.Table) -> Decision:
        values = as_numpy(self.score_column(scores, self.by))
        key = np.where(np.isnan(values), -np.inf, values)
        ranked = np.lexsort((np.arange(len(values)), -key))
        keep = np.zeros(len(values), dtype=bool)
        keep[ranked[:self.n]] = True
        reason = self.reason or f"not in top {self.n} by {self.by}"
        return Decision(keep=keep, reason=[reason] * len(values))
