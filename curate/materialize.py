"""Materialise a selection against a dataset.

Streams the dataset batch by batch and splits each batch into the kept examples
(optionally tagged, optionally with text rewritten by a cleaning scorer such as
``c4_quality``) and the rejected ones, which carry a ``reason`` column (DataTrove's
exclusion writer, as a table).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from curate.core.errors import CurateError
from curate.io import DEFAULT_BATCH_SIZE, Source
from curate.scoring import Scorer
from curate.selection import validate

TAG_AS = ("column", "prefix")


@dataclass
class ApplyOptions:
    """How to write the result.

    Attributes:
        tag_as: ``"column"`` adds a ``tag`` column; ``"prefix"`` prepends
            ``tag_format`` (a control token, default ``"<|{tag}|> "``) to the text of
            tagged examples; None ignores tags.
        everything: write every example (kept or not) with ``keep``/``reason``/``tag``
            columns instead of only the kept ones.
        transforms: scorers whose ``transform`` rewrites the kept text
            (e.g. C4's line removal), applied in order.
    """

    text_column: str = "text"
    tag_as: str | None = None
    tag_format: str = "<|{tag}|> "
    everything: bool = False
    transforms: list[Scorer] = field(default_factory=list)

    def __post_init__(self):
        if self.tag_as not in (None, *TAG_AS):
            raise CurateError(f"tag_as must be one of {TAG_AS}, got {self.tag_as!r}")


def iter_apply(source: Source, selection: pa.Table, options: ApplyOptions,
               batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Yield ``(kept, rejected)`` table pairs, one per source batch.

    With ``options.everything`` the first table holds every example and the second
    is empty.
    """
    selection = validate(selection, source.id_column)
    sel_ids = selection.column(source.id_column)
    if options.text_column not in source.required_columns and (
            options.transforms or options.tag_as == "prefix"):
        source.required_columns = (*source.required_columns, options.text_column)
    matched = 0
    for batch in source.iter_batches(batch_size):
        ids = batch.column(source.id_column)
        try:
            pos = pc.index_in(ids, value_set=sel_ids)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise CurateError(f"selection ids are {sel_ids.type} but the dataset's ids are "
                              f"{ids.type}: was the selection made from this dataset?") from None
        if pos.null_count:
            missing = ids.filter(pc.is_null(pos))[0].as_py()
            raise CurateError(f"id {missing!r} of the dataset is not in the selection: was the "
                              "selection made from this dataset?")
        matched += batch.num_rows
        chosen = selection.take(pos)
        keep = chosen.column("keep").to_numpy(zero_copy_only=False).astype(bool)
        batch = _tagged(batch, chosen.column("tag"), options)
        if options.everything:
            for col in ("keep", "reason"):
                batch = batch.append_column(col, chosen.column(col))
            yield _transformed(batch, options, mask=keep), batch.slice(0, 0)
            continue
        kept = batch.filter(pa.array(keep))
        rejected = batch.filter(pa.array(~keep)).append_column(
            "reason", chosen.column("reason").filter(pa.array(~keep)))
        yield _transformed(kept, options), rejected
    if matched != selection.num_rows:
        raise CurateError(f"selection has {selection.num_rows} ids but the dataset has "
                          f"{matched}: was the selection made from this dataset?")


def write_applied(source: Source, selection: pa.Table, options: ApplyOptions, *,
                  kept=None, rejected=None, batch_size: int = DEFAULT_BATCH_SIZE) -> dict:
    """Stream the dataset once and write the kept and/or rejected examples atomically.

    ``kept`` and ``rejected`` are output paths (either may be None); with
    ``options.everything`` the ``kept`` path receives every example. Returns the rows
    written per output, e.g. ``{"kept": 170, "rejected": 1830}``.
    """
    import contextlib

    from curate.io import TableWriter

    paths = {"kept": kept, "rejected": rejected}
    with contextlib.ExitStack() as stack:
        writers = {key: stack.enter_context(TableWriter(path))
                   for key, path in paths.items() if path is not None}
        for kept_part, rejected_part in iter_apply(source, selection, options, batch_size):
            for key, part in (("kept", kept_part), ("rejected", rejected_part)):
                if key in writers:
                    writers[key].write(part)
    return {key: writer.rows for key, writer in writers.items()}


def _tagged(batch: pa.Table, tags: pa.ChunkedArray, options: ApplyOptions) -> pa.Table:
    if options.tag_as == "column":
        return batch.append_column("tag", tags)
    if options.tag_as == "prefix":
        texts = batch.column(options.text_column).to_pylist()
        prefixed = [t if tag is None else options.tag_format.format(tag=tag) + (t or "")
                    for t, tag in zip(texts, tags.to_pylist())]
        return _replace(batch, options.text_column, prefixed)
    return batch


def _transformed(batch: pa.Table, options: ApplyOptions, mask: np.ndarray | None = None):
    if not options.transforms or batch.num_rows == 0:
        return batch
    texts = ["" if t is None else t for t in batch.column(options.text_column).to_pylist()]
    rows = range(len(texts)) if mask is None else np.flatnonzero(mask)
    subset = [texts[i] for i in rows]
    for scorer in options.transforms:
        subset = scorer.transform(subset)
    for i, text in zip(rows, subset):
        texts[i] = text
    return _replace(batch, options.text_column, texts)


def _replace(batch: pa.Table, column: str, values: list) -> pa.Table:
    index = batch.column_names.index(column)
    return batch.set_column(index, column, pa.array(values, pa.string()))
