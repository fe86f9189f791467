"""Cluster columns shared by the dedup scorers."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def representatives(labels: np.ndarray) -> np.ndarray:
    """Row position of each row's representative: the first row with the same label.

    Args:
        labels: shape (n,), any integer labels; equal labels mean one cluster.

    Returns:
        shape (n,) int64, where ``out[i] <= i`` and ``out[i] == i`` for representatives.
    """
    if len(labels) == 0:
        return np.zeros(0, dtype=np.int64)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    return first.astype(np.int64)[inverse.reshape(-1)]


def cluster_columns(name: str, reps: np.ndarray) -> dict[str, pa.Array]:
    """Keep/reason, cluster, cluster size and duplicate flag from representatives.

    The cluster id is the representative's 0-based row position in the scored
    dataset; every row but the representative is a duplicate to drop. Like a rule
    set, the scorer writes ``<name>_keep`` and ``<name>_reason`` (``"duplicate"``),
    so the ``rules`` filter and the quality card treat it like any other.
    """
    reps = np.asarray(reps, dtype=np.int64)
    sizes = np.bincount(reps, minlength=len(reps))[reps] if len(reps) else reps
    duplicate = reps != np.arange(len(reps))
    return {
        f"{name}_keep": pa.array(~duplicate, pa.bool_()),
        f"{name}_reason": pa.array(np.where(duplicate, "duplicate", None).tolist(), pa.string()),
        f"{name}_cluster": pa.array(reps, pa.int64()),
        f"{name}_cluster_size": pa.array(sizes, pa.int64()),
        f"{name}_duplicate": pa.array(duplicate, pa.bool_()),
    }


def replace_columns(scores: pa.Table, drop: list[str], columns: dict[str, pa.Array]) -> pa.Table:
    """``scores`` without its intermediate columns ``drop``, with ``columns`` appended.

    Keeps the id column whatever its name, so the executor's id survives ``finalize``.
    """
    table = scores.drop_columns([c for c in drop if c in scores.column_names])
    for key, values in columns.items():
        table = table.append_column(key, values)
    return table
