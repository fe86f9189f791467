"""Selections: which examples to keep, why the others were dropped, tags and order.

A selection is an Arrow table with one row per input id:

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
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from curate.core.errors import CurateError

COLUMNS = ("keep", "reason", "tag", "order")


def new_selection(ids: pa.Array | pa.ChunkedArray, id_column: str = "id") -> pa.Table:
    """Everything kept, no reason, no tag, no order."""
    n = len(ids)
    return pa.table({id_column: ids, "keep": pa.array([True] * n, pa.bool_()),
                     "reason": pa.nulls(n, pa.string()), "tag": pa.nulls(n, pa.string()),
                     "order": pa.nulls(n, pa.int64())})


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


def validate(selection: pa.Table, id_column: str = "id") -> pa.Table:
    """Check a selection read from disk has the expected columns; return it."""
    missing = [c for c in (id_column, *COLUMNS[:2]) if c not in selection.column_names]
    if missing:
        raise CurateError(f"selection has no {missing[0]!r} column; columns are: "
                          f"{', '.join(selection.column_names)}")
    for col, typ in (("tag", pa.string()), ("order", pa.int64()), ("reason", pa.string())):
        if col not in selection.column_names:
            selection = selection.append_column(col, pa.nulls(selection.num_rows, typ))
    return selection
