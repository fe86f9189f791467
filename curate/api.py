"""The Python API: load, save, score, select, apply.

Functions that take data accept a path (or ``builtin:NAME``), a
``datasets.Dataset``, a pandas DataFrame or a ``pyarrow.Table``; functions that
return data hand back the same kind they were given (a ``datasets.Dataset`` for
paths).
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from curate.core.errors import CurateError
from curate.executor import LocalExecutor, score_source
from curate.io import DEFAULT_MAX_DOC_BYTES, Source, TableWriter, atomic_path, like, to_arrow
from curate.materialize import ApplyOptions, iter_apply
from curate.core.registry import make_scorer
from curate.core.tables import join_scores


def _cache_dir() -> Path:
    return Path(os.environ.get("CURATE_CACHE", Path.home() / ".cache" / "curate"))


def load(data, *, id_column: str = "id", max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES):
    """Read a dataset into a memory-mapped ``datasets.Dataset`` with an id column.

    The source is converted batch by batch into an Arrow file in the cache
    (``$CURATE_CACHE``, default ``~/.cache/curate``), keyed by its content hash, so
    memory stays bounded and a second load is instant.
    """
    import datasets

    source = Source(data, id_column=id_column, max_doc_bytes=max_doc_bytes)
    if source.in_memory is not None and not source.files:
        return like(source.read_all(), "datasets")
    path = _cache_dir() / f"{source.fingerprint()}-{id_column}.arrow"
    if not path.exists():
        with atomic_path(path) as tmp:
            writer = None
            try:
                for batch in source.iter_batches():
                    if writer is None:
                        schema = batch.schema
                        writer = pa.ipc.new_stream(str(tmp), schema)
                    elif batch.schema != schema:
                        batch = batch.cast(schema)
                    writer.write_table(batch)
            finally:
                if writer is not None:
                    writer.close()
    return datasets.Dataset.from_file(str(path))


def save(data, path: str | Path) -> Path:
    """Write data to ``path`` atomically; the format follows the extension
    (``.jsonl``, ``.jsonl.gz``, ``.parquet``, ``.csv``), or a ``save_to_disk``
    folder when the path has no extension."""
    table, _ = to_arrow(data) if not isinstance(data, (str, Path)) else (
        Source(data).read_all(), "arrow")
    path = Path(path)
    if not path.suffix:
        import datasets

        datasets.Dataset(table).save_to_disk(str(path))
        return path
    with TableWriter(path) as writer:
        writer.write(table)
    return path


def score(data, scorers, *, text_column: str = "text", id_column: str = "id",
          workers: int = 1, batch_size: int | None = None, progress: bool = False,
          joined: bool = True):
    """Score a dataset.

    Args:
        data: see the module docstring.
        scorers: scorer objects or specs such as ``"gopher_quality"`` or
            ``"fasttext_quality:model=q.bin"``.
        workers: processes (1 runs in this process).
        joined: return one table joined by id (default) or a dict of tables by scorer.

    Returns:
        The score table(s), as the kind ``data`` was (Arrow for paths).
    """
    scorers = [make_scorer(s).with_text_column(text_column)
               for s in (scorers if isinstance(scorers, (list, tuple)) else [scorers])]
    source = Source(data, id_column=id_column)
    tables = score_source(scorers, source, executor=LocalExecutor(workers),
                          batch_size=batch_size, progress=progress)
    kind = source.kind if source.kind != "path" else "arrow"
    if not joined:
        return {name: like(t, kind) for name, t in tables.items()}
    return like(join_scores(tables, id_column), kind)


def select(scores, *steps, id_column: str = "id") -> pa.Table:
    """Run filter steps (from :mod:`filters`) over a score table; return the selection."""
    from filters import select as run_steps

    table, _ = to_arrow(scores)
    return run_steps(table, list(steps), id_column=id_column)


def apply(data, selection, *, rejected: bool = False, tag_as: str | None = None,
          tag_format: str = "<|{tag}|> ", transform=(), everything: bool = False,
          text_column: str = "text", id_column: str = "id"):
    """Materialise a selection: the kept examples (or the rejected ones, with
    ``reason``, when ``rejected=True``), as the kind ``data`` was.

    ``transform`` names cleaning scorers (e.g. ``["c4_quality"]``) whose rewritten
    text replaces the kept text; ``tag_as`` is ``"column"`` or ``"prefix"``.
    """
    selection, _ = to_arrow(selection)
    options = ApplyOptions(text_column=text_column, tag_as=tag_as, tag_format=tag_format,
                           everything=everything,
                           transforms=[make_scorer(t).with_text_column(text_column)
                                       for t in transform])
    source = Source(data, id_column=id_column)
    parts = [pair[1 if rejected else 0] for pair in iter_apply(source, selection, options)]
    if not parts:
        raise CurateError("nothing to apply: the dataset is empty")
    table = pa.concat_tables(parts, promote_options="permissive")
    return like(table, "datasets" if source.kind == "path" else source.kind)
