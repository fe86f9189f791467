"""The scorer contract.

A scorer turns examples into a score table: one row per example, columns
prefixed by the scorer's name (``gopher_quality_keep``, ``fasttext_quality_hq``).

* :class:`Scorer` is stateless and per example. ``score_batch`` receives an Arrow
  table holding (at least) the columns it needs and returns a table with exactly
  one row per input row, in the same order, without an id column. It must be
  pure, deterministic and picklable so that any executor can run it.
* A scorer that needs the whole corpus (deduplication) also overrides
  ``finalize``: the executor concatenates the per-batch outputs, adds the ``id``
  column, and hands that table to ``finalize`` once. A sharded run instead hands the
  per-shard tables to ``finalize_parts`` (:class:`curate.core.parts.Parts`), which by
  default reads them all and calls ``finalize``; the dedup scorers override it to read
  one column at a time, so memory grows by a few bytes per document, not by the scores.
* A scorer that must see the whole dataset at once in memory (training-dynamics
  scores, which train models on it) sets ``needs_whole_dataset = True`` and
  implements ``score_dataset(table)`` instead of ``score_batch``: the executor
  reads the needed columns of every example once and calls it in this process
  (it may use its own processes, e.g. one per seed).
* A scorer that can rewrite text (C4's line removal) overrides ``transform``;
  ``apply`` calls it when the user asks for the rewritten text.

Capabilities are class attributes that the engine, the card and the experiments read
instead of guessing from names or module paths:

* ``kind``: one of :data:`KINDS` (``"rule"`` for heuristic text rules, ``"model"``
  for classifiers and language models, ``"dedup"``, ``"dynamics"`` for training
  dynamics).
* ``input_columns``: the columns read (``"text"`` stands for ``text_column``).
* ``directions``: for each score column with a direction, :data:`HARDER` when a
  higher value means harder or worse, :data:`EASIER` when it means easier or better.
  Columns not listed (reasons, raw counts) have no direction.
* ``primary``: the column a selection ranks by when none is named.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.parts import Parts

#: Scorer kinds.
KINDS = ("rule", "model", "dedup", "dynamics")
#: Directions of a score column: a higher value is harder/worse, or easier/better.
HARDER, EASIER = "harder", "easier"


class Scorer:
    """Base class for every scorer.

    Subclasses set ``name`` (the registered name, also the column prefix) and
    take their parameters as keyword arguments in ``__init__``, storing each one
    as an attribute of the same name (scikit-learn style) so that ``params()``
    can report them for fingerprints and manifests.
    """

    name: str = ""
    #: One of :data:`KINDS`.
    kind: str = "rule"
    #: Input columns this scorer reads. ``text_column`` is substituted for "text".
    input_columns: tuple[str, ...] = ("text",)
    text_column: str = "text"
    #: Score column -> :data:`HARDER` or :data:`EASIER` (columns with a direction only).
    directions: dict[str, str] = {}
    #: The column to rank by when a selection names none (None: the scorer has none).
    primary: str | None = None
    #: Preferred rows per batch for the executor.
    batch_size: int = 1000
    #: True for scorers that implement ``score_dataset`` over all rows at once.
    needs_whole_dataset: bool = False

    def direction(self, column: str | None = None) -> str:
        """:data:`HARDER` or :data:`EASIER` for ``column`` (default: :attr:`primary`)."""
        column = column or self.primary
        if column not in self.directions:
            raise CurateError(f"scorer {self.name!r}: column {column!r} has no direction; "
                              f"columns with one: {', '.join(self.directions) or 'none'}")
        return self.directions[column]

    def with_text_column(self, text_column: str) -> Scorer:
        """A copy reading ``text_column`` (the original is left as it was)."""
        if text_column == self.text_column:
            return self
        clone = copy.copy(self)
        clone.text_column = text_column
        return clone

    def columns_needed(self) -> list[str]:
        return [self.text_column if c == "text" else c for c in self.input_columns]

    def params(self) -> dict:
        """The constructor parameters, for fingerprints and manifests."""
        import inspect

        out = {}
        for key in inspect.signature(type(self).__init__).parameters:
            if key in ("self", "args", "kwargs"):
                continue
            out[key] = _plain(getattr(self, key, None))
        return out

    def texts(self, batch: pa.Table) -> list[str]:
        """The batch's text column as Python strings (nulls become "")."""
        return ["" if t is None else t for t in batch.column(self.text_column).to_pylist()]

    def score_batch(self, batch: pa.Table) -> pa.Table:  # pragma: no cover - abstract
        raise NotImplementedError

    def score_dataset(self, table: pa.Table) -> pa.Table:  # pragma: no cover - abstract
        """Score every row of ``table`` at once (for ``needs_whole_dataset`` scorers).

        Returns one row per input row, same order, without an id column.
        """
        raise NotImplementedError

    def finalize(self, scores: pa.Table) -> pa.Table:
        """Whole-corpus step over the concatenated scores (with ``id``). Default: none."""
        return scores

    def finalize_parts(self, parts: Parts) -> Iterator[pa.Table]:
        """The whole-corpus step over per-shard scores: one output table per part, in order.

        Default: ``finalize`` of every part concatenated, cut back into parts.
        """
        yield from parts.split(self.finalize(parts.read_all()))

    @property
    def finalizes(self) -> bool:
        """Whether this scorer has a whole-corpus step (``finalize`` or ``finalize_parts``)."""
        cls = type(self)
        return (cls.finalize is not Scorer.finalize
                or cls.finalize_parts is not Scorer.finalize_parts)

    def transform(self, texts: list[str]) -> list[str]:
        """Rewrite texts (only scorers that clean text override this)."""
        raise NotImplementedError(f"scorer {self.name!r} does not rewrite text")

    def col(self, signal: str) -> str:
        """Column name of one of this scorer's signals: ``<name>_<signal>``."""
        return f"{self.name}_{signal}"

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


class FittedScorer(Scorer):
    """A scorer with a model: ``fit``, ``save`` and ``load`` (never pickle)."""

    def fit(self, dataset, **kwargs) -> FittedScorer:  # pragma: no cover - abstract
        raise NotImplementedError

    def save(self, path) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def load(cls, path, **kwargs) -> FittedScorer:  # pragma: no cover - abstract
        raise NotImplementedError


def rule_columns(name: str, keep: list[bool], reason: list[str | None],
                 signals: dict[str, list]) -> pa.Table:
    """Build a rule set's output: ``<name>_keep``, ``<name>_reason``, then raw signals."""
    cols = {f"{name}_keep": pa.array(keep, pa.bool_()),
            f"{name}_reason": pa.array(reason, pa.string())}
    for key, values in signals.items():
        cols[f"{name}_{key}"] = values if isinstance(values, pa.Array) else pa.array(values)
    return pa.table(cols)


def _plain(value):
    """A parameter value as plain JSON-able data (tuples become lists; others ``repr``)."""
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)
