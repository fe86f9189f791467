"""Labels for class-balanced policies: join them into a score table by id, and split
a budget over classes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.filter import round_half_up
from curate.core.tables import positions


def join_labels(scores: pa.Table, labels: pa.Table, column: str = "label",
                id_column: str = "id") -> pa.Table:
    """``scores`` with ``labels[column]`` appended by id, row order unchanged.

    Class-balanced policies (``KeepFraction(balance="label")``) need the label in the
    table passed to ``select``; score tables hold only ``id`` and signals, so join it
    here. ``labels`` holds ``id_column`` and ``column`` (e.g. the dataset's columns read
    with :class:`curate.io.Source`); every score id must be in it, and ``scores`` must
    not already have ``column``.
    """
    if column in scores.column_names:
        raise CurateError(f"score table already has a {column!r} column")
    for table, what in ((scores, "score table"), (labels, "label table")):
        if id_column not in table.column_names:
            raise CurateError(f"{what} has no {id_column!r} column")
    if column not in labels.column_names:
        raise CurateError(f"the data has no label column {column!r}; columns are: "
                          f"{', '.join(labels.column_names)}")
    where = positions(scores.column(id_column), labels.column(id_column), "score table")
    return scores.append_column(column, labels.column(column).take(pa.array(where)))


def class_budgets(labels, n: int, shares):
    """Yield ``(rows, counts)``: the budget ``round(share * n)`` of each share, per class.

    ``labels``: None (one group, all ``n`` rows) or [n] class labels (an Arrow array or
    a sequence; a missing label is a class of its own). Each share's total is split
    over the classes in proportion to their sizes by :func:`apportion`, so the counts
    add up to the unbalanced budget. ``rows`` are positions in ``0..n-1``.
    """
    if labels is None:
        yield np.arange(n), [round_half_up(share * n) for share in shares]
        return
    labels = labels.to_pylist() if hasattr(labels, "to_pylist") else list(labels)
    classes = sorted({v for v in labels if v is not None})
    if len(classes) < len(set(labels)):
        classes.append(None)
    values = np.array(labels, dtype=object)
    groups = [np.flatnonzero(values == c) for c in classes]
    sizes = np.array([len(g) for g in groups])
    per_share = [apportion(round_half_up(share * n), sizes, share) for share in shares]
    for g, rows in enumerate(groups):
        yield rows, [int(counts[g]) for counts in per_share]


def apportion(total: int, sizes: np.ndarray, share: float) -> np.ndarray:
    """Split ``total`` over groups of ``sizes`` as ``share * size`` each (largest remainder).

    Each group gets ``floor(share * size)`` or one more; the extra units go to the
    largest fractional parts, ties to the earlier group.
    """
    quota = share * np.asarray(sizes, dtype=np.float64)
    base = np.minimum(np.floor(quota + 1e-9).astype(int), sizes)
    extra = total - int(base.sum())
    order = np.lexsort((np.arange(len(sizes)), -(quota - base)))
    for g in order:
        if extra <= 0:
            break
        if base[g] < sizes[g]:
            base[g] += 1
            extra -= 1
    return base
