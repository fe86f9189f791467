"""The filter contract and the composition of filter steps.

A filter step looks at the joined score table of the examples still kept and
returns a :class:`Decision` for exactly those rows. :func:`select` runs steps in
order (each sees only what the previous steps kept) and folds their decisions into
a selection (see :mod:`curate.core.tables`).

Capabilities are class attributes: ``name`` (the registered name), ``score_params``
(the constructor parameters that name a score column, so that an experiment can point
them at any scorer's column) and ``direction_param`` (the parameter, if any, that
says whether a higher score is harder; an experiment sets it from the scorer's
declared direction). A filter whose output depends on a seed takes ``seed``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.core.errors import CurateError
from curate.core.tables import new_selection


@dataclass
class Decision:
    """A step's verdict on the rows it saw (all arrays have one entry per row).

    ``keep`` may be None for steps that only tag or order. ``reason`` explains each
    drop; ``tag`` and ``order`` are set where not null.
    """

    keep: np.ndarray | None = None
    reason: list | None = None
    tag: pa.Array | None = None
    order: pa.Array | None = None


class Filter:
    """Base class: parameters in ``__init__`` (each stored as an attribute of the same
    name, so that ``type(f)(**f.params())`` rebuilds it), the work in :meth:`decide`."""

    name = ""
    #: Constructor parameters that name a score column (e.g. ``("by",)``).
    score_params: tuple[str, ...] = ()
    #: Constructor parameter that says a higher score is harder (None: no direction).
    direction_param: str | None = None

    def params(self) -> dict:
        """The constructor parameters and their values."""
        import inspect

        return {key: getattr(self, key) for key in inspect.signature(type(self).__init__)
                .parameters if key not in ("self", "args", "kwargs")}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"

    def decide(self, scores: pa.Table) -> Decision:  # pragma: no cover - abstract
        raise NotImplementedError

    def select(self, scores: pa.Table, id_column: str = "id") -> pa.Table:
        """This filter alone as a selection over every row of ``scores``."""
        return select(scores, [self], id_column=id_column)

    def score_column(self, scores: pa.Table, name: str) -> pa.ChunkedArray:
        if name not in scores.column_names:
            raise CurateError(f"{self.name}: no score column {name!r}; columns are: "
                              f"{', '.join(c for c in scores.column_names)}")
        return scores.column(name)


def select(scores: pa.Table, steps: list[Filter], id_column: str = "id",
           start: pa.Table | None = None) -> pa.Table:
    """Run filter steps in order and return the selection over all rows of ``scores``.

    ``start`` is an earlier selection over the same rows to continue from (its
    dropped rows stay dropped with their reasons).
    """
    if id_column not in scores.column_names:
        raise CurateError(f"score table has no {id_column!r} column")
    start = start if start is not None else new_selection(scores.column(id_column), id_column)
    keep = start.column("keep").to_numpy(zero_copy_only=False).astype(bool)
    reason, tag, order = (np.array(start.column(c).to_pylist(), dtype=object)
                          for c in ("reason", "tag", "order"))
    for step in steps:
        rows = np.flatnonzero(keep)
        decision = step.decide(scores.take(pa.array(rows, pa.int64())))
        if decision.keep is not None:
            dropped = rows[~np.asarray(decision.keep, dtype=bool)]
            keep[dropped] = False
            reason[dropped] = np.asarray(decision.reason, dtype=object)[
                ~np.asarray(decision.keep, dtype=bool)]
        for target, values in ((tag, decision.tag), (order, decision.order)):
            if values is not None:
                values = np.asarray(values.to_pylist() if isinstance(values, (pa.Array,
                                    pa.ChunkedArray)) else values, dtype=object)
                has = np.array([v is not None for v in values], dtype=bool)
                target[rows[has]] = values[has]
    return pa.table({id_column: start.column(id_column), "keep": pa.array(keep),
                     "reason": pa.array(reason.tolist(), pa.string()),
                     "tag": pa.array(tag.tolist(), pa.string()),
                     "order": pa.array(order.tolist(), pa.int64())})


def as_numpy(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Numeric column as float64 numpy, nulls as NaN."""
    values = pc.cast(column, pa.float64())
    return np.asarray(pc.fill_null(values, np.nan).to_numpy(zero_copy_only=False),
                      dtype=np.float64)


def round_half_up(x: float) -> int:
    """Round half up, so that a budget of 0.5 examples keeps one (Python's round() rounds
    half to even)."""
    return int(math.floor(x + 0.5))
