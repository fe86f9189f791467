"""Labels for class-balanced policies: join them into a score table by id, and split
a budget over classes."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.core.errors import CurateError
from filters.base import round_half_up


def join_labels(scores: pa.Table, source, column: str = "label",
                id_column: str = "id") -> pa.Table:
    """``scores`` with the dataset's ``column`` appended, row order unchanged.

    Class-balanced policies (``KeepFraction(balance="label")``) need the label in the
    table passed to ``select``; score tables hold only ``id`` and signals, so join it
    here. ``source`` is anything :class:`curate.io.Source` reads (a path,
    ``builtin:NAME``, a table) or a ``Source``. Every score id must exist in the
    source; the score table must not already have ``column``.
    """
    from curate.io import Source

    if column in scores.column_names:
        raise CurateError(f"score table already has a {column!r} column")
    if id_column not in scores.column_names:
        raise CurateError(f"score table has no {id_column!r} column")
    source = source if isinstance(source, Source) else Source(
        source, id_column=id_column, required_columns=(column,))
    data = source.read_all(columns=[column])
    where = pc.index_in(scores.column(id_column), value_set=data.column(id_column))
    if where.null_count:
        missing = scores.column(id_column).filter(pc.is_null(where))[0].as_py()
        raise CurateError(f"id {missing!r} of the score table is not in the dataset "
                          f"({where.null_count} ids missing)")
    return scores.append_column(column, data.column(column).take(where))


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
