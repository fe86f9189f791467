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
from curate.core.scorer import Scorer
from curate.core.tables import validate_selection
from curate.core.types import unify_types
from curate.io import DEFAULT_BATCH_SIZE, Source, cast_column

#: How tags are written; None (the default) is "column" when the selection has tags.
TAG_AS = ("column", "prefix", "none")


@dataclass
class ApplyOptions:
    """How to write the result.

    Attributes:
        tag_as: ``"column"`` adds a ``tag`` column; ``"prefix"`` prepends
            ``tag_format`` (a control token, default ``"<|{tag}|> "``) to the text of
            tagged examples; ``"none"`` leaves tags out. None (the default) writes a
            ``tag`` column when the selection has any tag, and nothing when it has none,
            so tags are never dropped unless asked.
        everything: write every example (kept or not) with ``keep``/``reason`` columns
            (and tags as ``tag_as`` says) instead of only the kept ones.
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
            raise CurateError(f"tag_as must be one of {', '.join(TAG_AS)} (or None: a column "
                              f"when the selection has tags), got {self.tag_as!r}")
        for scorer in self.transforms:
            if type(scorer).transform is Scorer.transform:
                raise CurateError(f"scorer {scorer.name!r} does not rewrite text; transforms "
                                  "are cleaning scorers such as c4_quality")

    def tag_mode(self, tags: pa.ChunkedArray) -> str:
        """``"column"``, ``"prefix"`` or ``"none"`` for a selection with these tags."""
        if self.tag_as is not None:
            return self.tag_as
        return "column" if tags.null_count < len(tags) else "none"


def iter_apply(source: Source, selection: pa.Table, options: ApplyOptions,
               batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[tuple[pa.Table, pa.Table]]:
    """Yield ``(kept, rejected)`` table pairs, one per source batch.

    With ``options.everything`` the first table holds every example and the second
    is empty. Ids match by value across compatible types (``string``/``large_string``,
    integer widths); integer ids against string ids are an error. The source's size
    limit measures ``options.text_column``, whatever the format.
    """
    selection = validate_selection(selection, source.id_column)
    ids_of = _IdMatcher(selection.column(source.id_column), source.id_column)
    tag_as = options.tag_mode(selection.column("tag"))
    source.text_column = options.text_column
    if options.text_column not in source.required_columns and (
            options.transforms or tag_as == "prefix"):
        source.required_columns = (*source.required_columns, options.text_column)
    matched = 0
    for batch in source.iter_batches(batch_size):
        ids = batch.column(source.id_column)
        pos = ids_of(ids)
        if pos.null_count:
            missing = ids.filter(pc.is_null(pos))[0].as_py()
            raise CurateError(f"id {missing!r} of the dataset is not in the selection: was the "
                              "selection made from this dataset?")
        matched += batch.num_rows
        chosen = selection.take(pos)
        keep = chosen.column("keep").to_numpy(zero_copy_only=False).astype(bool)
        batch = _tagged(batch, chosen.column("tag"), options, tag_as)
        if options.everything:
            for col in ("keep", "reason"):
                batch = _appended(batch, col, chosen.column(col))
            yield _transformed(batch, options, mask=keep), batch.slice(0, 0)
            continue
        kept = batch.filter(pa.array(keep))
        rejected = _appended(batch.filter(pa.array(~keep)), "reason",
                             chosen.column("reason").filter(pa.array(~keep)))
        yield _transformed(kept, options), rejected
    if matched != selection.num_rows:
        skipped = (f" after skipping {source.skipped} over --max-doc-bytes"
                   if source.skipped else "")
        raise CurateError(f"selection has {selection.num_rows} ids but the dataset has "
                          f"{matched}{skipped}: was the selection made from this dataset?")


class _IdMatcher:
    """Positions in the selection of a batch's ids, across compatible id types."""

    def __init__(self, sel_ids: pa.ChunkedArray, id_column: str):
        self.sel_ids, self.id_column = sel_ids, id_column
        self._cast: dict = {}  # unified type -> the selection's ids as that type

    def __call__(self, ids: pa.ChunkedArray) -> pa.Array:
        sel = self.sel_ids
        if ids.type != sel.type:
            target = unify_types(ids.type, sel.type, ids=True)
            if target is None:
                raise CurateError(f"the selection's ids are {sel.type} but the dataset's ids "
                                  f"are {ids.type}: was the selection made from this "
                                  "dataset?")
            if target not in self._cast:
                self._cast[target] = cast_column(sel, target, "selection", self.id_column)
            sel = self._cast[target]
            ids = cast_column(ids, target, "dataset", self.id_column)
        return pc.index_in(ids, value_set=sel)


def _appended(batch: pa.Table, name: str, values) -> pa.Table:
    if name in batch.column_names:
        raise CurateError(f"the dataset already has a {name!r} column, which applying a "
                          f"selection adds; rename it (or, for tags, choose --tag-as prefix "
                          "or none)")
    return batch.append_column(name, values)


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


def _tagged(batch: pa.Table, tags: pa.ChunkedArray, options: ApplyOptions,
            tag_as: str) -> pa.Table:
    if tag_as == "column":
        return _appended(batch, "tag", tags)
    if tag_as == "prefix":
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
