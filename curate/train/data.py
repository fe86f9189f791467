"""A classification dataset held in memory as tensors.

:class:`TensorData` converts any table ``curate.load`` reads (numeric columns, or
one list column per example such as the built-in datasets' ``x``) into an input
tensor ``x`` ``[N, *shape]`` float32, labels ``y`` ``[N]`` int64 and the list of
ids, so that training indexes tensors instead of iterating over rows.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from curate.core.errors import CurateError

#: Columns never used as inputs: they describe labels, not examples.
BOOKKEEPING_COLUMNS = ("label_original", "label_flipped")
#: Rows per chunk when fitting the input standardization (bounds its float64 copies).
STATS_CHUNK = 8192


class TensorData:
    """Inputs, labels and ids of N examples; position ``i`` <-> ``ids[i]``.

    Attributes:
        x: ``[N, *shape]`` float32 inputs (``[N, 40]`` for MNIST-1D, ``[N, 1, 28, 28]``
            for Fashion-MNIST).
        y: ``[N]`` int64 labels in ``0 .. num_classes - 1``.
        ids: the N example ids (the dataset's id column).
        num_classes: number of classes.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, ids: list, num_classes: int):
        if len(x) != len(y) or len(y) != len(ids):
            raise ValueError(f"x, y and ids disagree in length: {len(x)}, {len(y)}, {len(ids)}")
        self.x, self.y, self.ids, self.num_classes = x, y, list(ids), int(num_classes)

    def __len__(self) -> int:
        return len(self.y)

    def __repr__(self) -> str:
        return (f"TensorData(n={len(self)}, shape={list(self.input_shape)}, "
                f"num_classes={self.num_classes})")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one example's input, e.g. ``(40,)`` or ``(1, 28, 28)``."""
        return tuple(self.x.shape[1:])

    def standardization(self, positions=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-feature ``(mean, scale)`` of the rows at ``positions`` (default: all rows).

        Both are float32 tensors of :attr:`input_shape`; ``(x - mean) / scale`` gives
        every feature mean 0 and (population) standard deviation 1 over those rows, as
        scikit-learn's ``StandardScaler`` does. Computed in float64. A feature that is
        constant over those rows gets scale 1 (it is centred, not divided by 0).
        ``positions`` may repeat; each row counts once. Fit this on the training rows
        only and apply it to any rows (test rows included).
        """
        index = None if positions is None else torch.unique(
            torch.as_tensor(positions, dtype=torch.long).reshape(-1))
        n = len(self.x) if index is None else len(index)
        if n == 0:
            raise CurateError("cannot fit input standardization on zero rows")

        def chunks():  # float64 copies of STATS_CHUNK rows at a time, never all N at once
            for start in range(0, n, STATS_CHUNK):
                part = (self.x[start:start + STATS_CHUNK] if index is None
                        else self.x[index[start:start + STATS_CHUNK]])
                yield part.double()

        total = low = high = None
        for part in chunks():
            sums, lows, highs = part.sum(dim=0), part.amin(dim=0), part.amax(dim=0)
            total = sums if total is None else total + sums
            low = lows if low is None else torch.minimum(low, lows)
            high = highs if high is None else torch.maximum(high, highs)
        mean = total / n
        squares = sum((part - mean).pow(2).sum(dim=0) for part in chunks())
        std = (squares / n).sqrt()
        scale = torch.where((high == low) | (std == 0), torch.ones_like(std), std)
        return mean.float(), scale.float()

    def standardized(self, mean: torch.Tensor, scale: torch.Tensor) -> TensorData:
        """A copy whose inputs are ``(x - mean) / scale`` (see :meth:`standardization`)."""
        return TensorData((self.x - mean) / scale, self.y, self.ids, self.num_classes)

    def subset(self, positions) -> TensorData:
        """The examples at ``positions`` (a sequence or LongTensor), in that order."""
        index = torch.as_tensor(positions, dtype=torch.long)
        ids = [self.ids[i] for i in index.tolist()]
        return TensorData(self.x[index], self.y[index], ids, self.num_classes)

    @classmethod
    def from_source(cls, data, *, id_column: str = "id", **kwargs) -> TensorData:
        """Read anything :class:`curate.io.Source` reads (path, ``builtin:NAME``, table...).

        Keyword arguments go to :meth:`from_table`.
        """
        from curate.io import Source

        table = Source(data, id_column=id_column).read_all()
        return cls.from_table(table, id_column=id_column, **kwargs)

    @classmethod
    def from_table(cls, table: pa.Table, *, label_column: str = "label", input_columns=None,
                   shape=None, id_column: str = "id", num_classes: int | None = None
                   ) -> TensorData:
        """Build from an Arrow table.

        Args:
            label_column: integer class labels (default ``"label"``).
            input_columns: the input columns. ``None``: the single list column if there
                is one (e.g. ``x``), otherwise every numeric column except the id, the
                label and bookkeeping columns (``label_original``, ``label_flipped``).
                A list column must hold equal-length lists.
            shape: per-example shape to reshape to, e.g. ``(1, 28, 28)``; default: the
                ``curate.shape`` schema metadata of the built-in datasets, else flat.
            id_column: the id column; without one, ids are positions.
            num_classes: default: the ``curate.num_classes`` metadata, else max label + 1.
        """
        names = table.column_names
        if label_column not in names:
            raise CurateError(f"label column {label_column!r} not found; columns are: "
                              f"{', '.join(names)}")
        if table.num_rows == 0:
            raise CurateError("dataset is empty: expected at least one example")
        columns = _input_columns(table, input_columns, {label_column, id_column})
        x = _inputs(table, columns)
        meta = table.schema.metadata or {}
        if shape is None and len(columns) == 1 and b"curate.shape" in meta:
            shape = json.loads(meta[b"curate.shape"])
        if shape is not None:
            shape = tuple(int(s) for s in shape)
            if int(np.prod(shape)) != x.shape[1]:
                raise CurateError(f"shape {list(shape)} holds {int(np.prod(shape))} values but "
                                  f"each example has {x.shape[1]}")
            x = x.reshape(len(x), *shape)
        y = _labels(table.column(label_column), label_column)
        if num_classes is None:
            num_classes = int(meta.get(b"curate.num_classes", int(y.max()) + 1))
        if int(y.max()) >= num_classes:
            raise CurateError(f"label {int(y.max())} is out of range for {num_classes} classes")
        ids = (table.column(id_column).to_pylist() if id_column in names
               else list(range(table.num_rows)))
        return cls(torch.from_numpy(x), torch.from_numpy(y), ids, num_classes)


def _input_columns(table: pa.Table, wanted, excluded: set) -> list[str]:
    names = table.column_names
    if wanted is not None:
        wanted = [wanted] if isinstance(wanted, str) else list(wanted)
        missing = [c for c in wanted if c not in names]
        if missing:
            raise CurateError(f"input column {missing[0]!r} not found; columns are: "
                              f"{', '.join(names)}")
        return wanted
    candidates = [f for f in table.schema
                  if f.name not in excluded and f.name not in BOOKKEEPING_COLUMNS]
    lists = [f.name for f in candidates if _is_list(f.type)]
    if len(lists) == 1:
        return lists
    if len(lists) > 1:
        raise CurateError(f"several list columns ({', '.join(lists)}); choose the input with "
                          "input_columns=...")
    numeric = [f.name for f in candidates
               if pa.types.is_integer(f.type) or pa.types.is_floating(f.type)]
    if not numeric:
        raise CurateError(f"no numeric or list input columns; columns are: {', '.join(names)}")
    return numeric


def _is_list(dtype: pa.DataType) -> bool:
    return (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)
            or pa.types.is_fixed_size_list(dtype))


def _inputs(table: pa.Table, columns: list[str]) -> np.ndarray:
    """``[N, D]`` float32 from one list column or from D numeric columns."""
    if len(columns) == 1 and _is_list(table.schema.field(columns[0]).type):
        name = columns[0]
        col = table.column(name).combine_chunks()
        if col.null_count:
            raise CurateError(f"column {name!r} has {col.null_count} null examples")
        lengths = pc.list_value_length(col).to_numpy()
        if lengths.min() != lengths.max():
            raise CurateError(f"column {name!r} holds lists of different lengths "
                              f"({lengths.min()} to {lengths.max()}); inputs need one length")
        values = col.flatten()
        if not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
            raise CurateError(f"column {name!r} holds {values.type} values, not numbers")
        if values.null_count:
            raise CurateError(f"column {name!r} has null values inside its lists")
        x = values.to_numpy(zero_copy_only=False).astype(np.float32)
        x = x.reshape(table.num_rows, int(lengths[0]))
    else:
        parts = []
        for name in columns:
            col = table.column(name)
            if not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
                raise CurateError(f"input column {name!r} is {col.type}, not numeric")
            if col.null_count:
                raise CurateError(f"input column {name!r} has {col.null_count} nulls")
            parts.append(col.to_numpy().astype(np.float32))
        x = np.stack(parts, axis=1)
    if not np.isfinite(x).all():
        raise CurateError(f"inputs {', '.join(columns)} contain NaN or infinite values")
    return np.ascontiguousarray(x)


def _labels(col: pa.ChunkedArray, name: str) -> np.ndarray:
    if not pa.types.is_integer(col.type):
        raise CurateError(f"label column {name!r} is {col.type}; expected integer class ids")
    if col.null_count:
        raise CurateError(f"label column {name!r} has {col.null_count} nulls")
    y = col.to_numpy().astype(np.int64)
    if y.min() < 0:
        raise CurateError(f"label column {name!r} has negative label {int(y.min())}")
    return y
