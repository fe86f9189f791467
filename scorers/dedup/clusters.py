"""Cluster columns shared by the dedup scorers, written shard by shard."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from curate.core.parts import Parts


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


def cluster_columns(name: str, reps: np.ndarray, sizes: np.ndarray, first: int = 0
                    ) -> dict[str, pa.Array]:
    """Keep/reason, cluster, cluster size and duplicate flag of some rows.

    Args:
        reps: shape (n,) global position of each row's representative (the cluster id).
        sizes: shape (n,) size of each row's cluster.
        first: global position of the first of these rows.

    Every row but the representative is a duplicate to drop. Like a rule set, the scorer
    writes ``<name>_keep`` and ``<name>_reason`` (``"duplicate"``), so the ``rules``
    filter and the quality card treat it like any other.
    """
    reps = np.asarray(reps, dtype=np.int64)
    duplicate = reps != np.arange(first, first + len(reps))
    return {
        f"{name}_keep": pa.array(~duplicate, pa.bool_()),
        f"{name}_reason": pa.array(np.where(duplicate, "duplicate", None).tolist(), pa.string()),
        f"{name}_cluster": pa.array(reps, pa.int64()),
        f"{name}_cluster_size": pa.array(np.asarray(sizes, np.int64), pa.int64()),
        f"{name}_duplicate": pa.array(duplicate, pa.bool_()),
    }


def cluster_tables(name: str, parts: Parts, reps: np.ndarray, drop: list[str],
                   extra=None) -> Iterator[pa.Table]:
    """Each part's id column and cluster columns from the global representatives.

    Args:
        reps: shape (N,) representative of every row, N = ``parts.num_rows``.
        drop: the parts' intermediate columns, left out of the output.
        extra: ``extra(i, first, stop)`` -> more columns for part ``i`` (rows
            ``first`` to ``stop``), or None.
    """
    sizes = np.bincount(reps, minlength=len(reps)) if len(reps) else np.zeros(0, np.int64)
    for i in range(len(parts.parts)):
        first, stop = int(parts.offsets[i]), int(parts.offsets[i + 1])
        ids = parts.table(i).drop_columns(drop)
        here = reps[first:stop]
        columns = cluster_columns(name, here, sizes[here], first)
        if extra is not None:
            columns.update(extra(i, first, stop))
        yield replace_columns(ids, [], columns)


class ShardedFinalize:
    """Mixin for scorers that implement ``finalize_parts``: ``finalize`` of one table is
    ``finalize_parts`` over it as a single part, so both run the same code."""

    def finalize(self, scores: pa.Table) -> pa.Table:
        return pa.concat_tables(list(self.finalize_parts(Parts([scores]))))


def replace_columns(scores: pa.Table, drop: list[str], columns: dict[str, pa.Array]) -> pa.Table:
    """``scores`` without its intermediate columns ``drop``, with ``columns`` appended.

    Keeps the id column whatever its name, so the executor's id survives ``finalize``.
    """
    table = scores.drop_columns([c for c in drop if c in scores.column_names])
    for key, values in columns.items():
        table = table.append_column(key, values)
    return table
