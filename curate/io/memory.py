"""In-memory data (``datasets.Dataset``, pandas, Arrow): to Arrow and back to the kind it
was."""

from __future__ import annotations

import pyarrow as pa

from curate.core.errors import CurateError
from curate.io.formats import one_line


def to_arrow(data) -> tuple[pa.Table, str]:
    """Convert an in-memory dataset to Arrow; also return its kind for :func:`like`."""
    if isinstance(data, pa.Table):
        return data, "arrow"
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data]), "arrow"
    try:
        import datasets

        if isinstance(data, datasets.Dataset):
            table = data.data.table
            if data._indices is not None:  # a select()/shuffle() view: materialise its rows
                table = data.flatten_indices().data.table
            return table, "datasets"
    except ImportError:  # pragma: no cover - datasets is a required dependency
        pass
    if type(data).__module__.startswith("pandas"):
        return _from_pandas(data), "pandas"
    raise CurateError(f"cannot read data of type {type(data).__name__}; expected a path, "
                      "'builtin:NAME', a datasets.Dataset, a pandas DataFrame or a pyarrow.Table")


def _from_pandas(frame) -> pa.Table:
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
        for name in frame.columns:  # name the column whose values have no one type
            try:
                pa.array(frame[name], from_pandas=True)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
                raise CurateError(f"DataFrame column {name!r} mixes value types "
                                  f"({one_line(exc)}); give every column one type") from None
        raise


def like(table: pa.Table, kind: str):
    """Hand a table back as the kind the user passed in (``arrow``, ``datasets``, ``pandas``)."""
    if kind == "datasets":
        import datasets

        return datasets.Dataset(table)
    if kind == "pandas":
        return table.to_pandas()
    return table
