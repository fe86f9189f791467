"""One scorer's per-shard tables, read a column at a time: what a cross-shard ``finalize`` sees.

A scorer that needs the whole corpus (deduplication) scores each shard separately, then
finalises over :class:`Parts`: the shards' tables in shard order, as in-memory tables or
Parquet files. A global position is a row's index in the concatenation of all parts (the
dataset order of the scored rows); :meth:`Parts.column` reads one column of every part,
:meth:`Parts.take` gathers the rows at some positions, and only the parts it needs are
read, one at a time.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa


class Parts:
    """Tables of one scorer, one per shard, in order (each a ``pa.Table`` or a Parquet path).

    Attributes:
        rows: shape (P,) rows of each part.
        offsets: shape (P + 1,) global position of each part's first row, then the total.
    """

    def __init__(self, parts: list):
        import pyarrow.parquet as pq

        self.parts = list(parts)
        self.rows = np.array([p.num_rows if isinstance(p, pa.Table) else
                              pq.ParquetFile(p).metadata.num_rows for p in self.parts], np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.rows)]).astype(np.int64)

    @property
    def num_rows(self) -> int:
        return int(self.offsets[-1])

    def table(self, i: int, columns: list[str] | None = None) -> pa.Table:
        """Part ``i`` (only ``columns`` when given)."""
        part = self.parts[i]
        if isinstance(part, pa.Table):
            return part if columns is None else part.select(columns)
        import pyarrow.parquet as pq

        return pq.read_table(Path(part), columns=columns).replace_schema_metadata(None)

    def column(self, name: str) -> pa.ChunkedArray:
        """Column ``name`` of every part, concatenated (shape (num_rows,))."""
        chunks = [c for i in range(len(self.parts)) for c in self.table(i, [name]).column(0).chunks]
        return pa.chunked_array(chunks, self.table(0, [name]).schema.field(0).type)

    def take(self, name: str, positions: np.ndarray) -> pa.Array:
        """Values of column ``name`` at global ``positions`` (shape (M,), any order)."""
        positions = np.asarray(positions, np.int64)
        order = np.argsort(positions, kind="stable")
        ranked = positions[order]
        bounds = np.searchsorted(ranked, self.offsets)
        pieces = []
        for i in range(len(self.parts)):
            lo, hi = bounds[i], bounds[i + 1]
            if hi > lo:
                column = self.table(i, [name]).column(0)
                pieces.append(column.take(pa.array(ranked[lo:hi] - self.offsets[i])))
        gathered = pa.chunked_array([c for p in pieces for c in p.chunks],
                                    self.table(0, [name]).schema.field(0).type).combine_chunks()
        return gathered.take(pa.array(np.argsort(order, kind="stable")))

    def read_all(self) -> pa.Table:
        """Every part concatenated (memory: the whole table)."""
        return pa.concat_tables([self.table(i) for i in range(len(self.parts))],
                                promote_options="permissive")

    def split(self, table: pa.Table) -> Iterator[pa.Table]:
        """``table`` (num_rows rows) cut back into one table per part."""
        for i in range(len(self.parts)):
            yield table.slice(int(self.offsets[i]), int(self.rows[i]))
