"""Bring a dataset column (usually the label) into a score table, matched by id."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from curate.errors import CurateError


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
