"""Score tables and selections: their schemas, the join by id, and id alignment.

A **score table** is an Arrow table with the dataset's id column plus one column per
signal, prefixed by the scorer's name (``gopher_quality_keep``, ``el2n``).

A **selection** is an Arrow table with one row per input id:

=========  ==========  ===============================================
column     type        meaning
=========  ==========  ===============================================
``id``     as input    the example's id
``keep``   bool        kept by every step so far
``reason`` string      why it was dropped (null when kept)
``tag``    string      a tag from a tagging step (nullable)
``order``  int64       position in a training order (nullable)
=========  ==========  ===============================================

Every step accounts for every id: kept + dropped = input.

Ids are matched by value with one function, :func:`positions`, which also unifies
compatible id types (``string``/``large_string``, integer widths) so that a table
read from JSONL lines up with one read from Parquet.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.core.errors import CurateError
from curate.core.types import unify_types

SELECTION_COLUMNS = ("keep", "reason", "tag", "order")


# -- ids --------------------------------------------------------------------------------
def unify_ids(left, right, what: str = "ids"):
    """``left`` and ``right`` (Arrow arrays) cast to one id type (:func:`unify_types` with
    ``ids=True``: strings of either width become ``string``, integers ``int64``), or a
    :class:`CurateError`."""
    if left.type == right.type:
        return left, right
    target = unify_types(left.type, right.type, ids=True)
    if target is None:
        raise CurateError(f"{what}: ids are {left.type} on one side and {right.type} on the "
                          "other; were they made from the same dataset?")
    return left.cast(target), right.cast(target)


def positions(ids, within, what: str = "ids") -> np.ndarray:
    """Position in ``within`` of each of ``ids`` ([len(ids)] int64).

    Both are Arrow arrays (or Python sequences); every id must be present, else a
    :class:`CurateError` names the first missing one and how many are missing.
    """
    ids, within = _as_arrow(ids), _as_arrow(within)
    ids, within = unify_ids(ids, within, what)
    where = pc.index_in(ids, value_set=within)
    if where.null_count:
        missing = ids.filter(pc.is_null(where))[0].as_py()
        raise CurateError(f"{what}: id {missing!r} is not in the data ({where.null_count} ids "
                          "missing); was it made from this dataset?")
    return np.asarray(where.to_numpy(zero_copy_only=False), dtype=np.int64)


def _as_arrow(values):
    if isinstance(values, pa.ChunkedArray):
        return values.combine_chunks()
    if isinstance(values, pa.Array):
        return values
    return pa.array(list(values))


# -- score tables -----------------------------------------------------------------------
def join_scores(tables: dict[str, pa.Table], id_column: str = "id") -> pa.Table:
    """Join score tables on ``id_column``, in the row order of the first table.

    Every table must hold the same set of ids; a column name that appears in two
    tables is an error (scorer prefixes keep them apart).
    """
    if not tables:
        raise CurateError("no score tables given")
    names = list(tables)
    base = tables[names[0]]
    for name in names:
        if id_column not in tables[name].column_names:
            raise CurateError(f"score table {name!r} has no {id_column!r} column; columns are: "
                              f"{', '.join(tables[name].column_names)}")
    joined = base
    seen = set(base.column_names)
    for name in names[1:]:
        table = tables[name]
        clash = (seen & set(table.column_names)) - {id_column}
        if clash:
            raise CurateError(f"score table {name!r} repeats column(s) {sorted(clash)}")
        seen |= set(table.column_names)
        if table.num_rows != base.num_rows:
            raise CurateError(f"score table {name!r} has {table.num_rows} rows but "
                              f"{names[0]!r} has {base.num_rows}: were they scored on the same "
                              "data?")
        if not table.column(id_column).equals(base.column(id_column)):
            table = table.take(positions(base.column(id_column), table.column(id_column),
                                         f"score table {name!r}"))
        for col in table.column_names:
            if col != id_column:
                joined = joined.append_column(col, table.column(col))
    return joined


# -- selections -------------------------------------------------------------------------
def new_selection(ids, id_column: str = "id") -> pa.Table:
    """Everything kept, no reason, no tag, no order."""
    n = len(ids)
    return pa.table({id_column: ids, "keep": pa.array(np.ones(n, dtype=bool)),
                     "reason": pa.nulls(n, pa.string()), "tag": pa.nulls(n, pa.string()),
                     "order": pa.nulls(n, pa.int64())})


def validate_selection(selection: pa.Table, id_column: str = "id") -> pa.Table:
    """Check a selection (e.g. read from disk) has ``id`` and ``keep``; add absent optional
    columns as nulls; return it."""
    missing = [c for c in (id_column, "keep") if c not in selection.column_names]
    if missing:
        raise CurateError(f"selection has no {missing[0]!r} column; columns are: "
                          f"{', '.join(selection.column_names)}")
    for col, typ in (("reason", pa.string()), ("tag", pa.string()), ("order", pa.int64())):
        if col not in selection.column_names:
            selection = selection.append_column(col, pa.nulls(selection.num_rows, typ))
    return selection


def counts(selection: pa.Table) -> dict:
    """Counts kept and dropped, and dropped per reason (sorted by count, then name)."""
    keep = selection.column("keep")
    kept = pc.sum(keep).as_py() or 0
    reasons = {}
    dropped = selection.filter(pc.invert(keep)).column("reason")
    if len(dropped):
        for row in pc.value_counts(dropped).to_pylist():
            reasons[row["values"] if row["values"] is not None else "unknown"] = row["counts"]
    reasons = dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
    out = {"input": selection.num_rows, "kept": kept, "dropped": selection.num_rows - kept,
           "dropped_by_reason": reasons}
    tags = selection.column("tag")
    if tags.null_count < len(tags):
        out["tags"] = {r["values"]: r["counts"] for r in pc.value_counts(
            tags.drop_null()).to_pylist()}
    return out


def kept_positions(selection: pa.Table, ids, id_column: str = "id") -> np.ndarray:
    """Sorted positions into ``ids`` (e.g. ``TensorData.ids``) of the rows ``selection`` keeps."""
    kept = selection.filter(selection.column("keep")).column(id_column)
    return np.sort(positions(kept, ids, "selection"))


def ordered_positions(selection: pa.Table, ids, id_column: str = "id") -> np.ndarray:
    """Positions into ``ids`` of the kept examples, sorted by the selection's ``order``.

    Kept rows without an order are an error (run a curriculum step first).
    """
    kept = selection.filter(selection.column("keep"))
    if kept.column("order").null_count:
        raise CurateError("selection has kept rows without an order: run a curriculum step")
    where = positions(kept.column(id_column), ids, "selection")
    return where[np.argsort(kept.column("order").to_numpy(), kind="stable")]
