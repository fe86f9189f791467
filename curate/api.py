"""The Python API: load, save, score, select, apply.

Functions that take data accept a path (or ``builtin:NAME``), a
``datasets.Dataset``, a pandas DataFrame or a ``pyarrow.Table``; functions that
return data hand back the same kind they were given (a ``datasets.Dataset`` for
paths).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from curate.core.cache import Cache
from curate.core.errors import CurateError
from curate.core.hashing import fingerprint
from curate.core.registry import make_scorer
from curate.core.tables import join_scores
from curate.executor import Executor, make_executor
from curate.io import DEFAULT_MAX_DOC_BYTES, Source, TableWriter, concat_tables, like, to_arrow
from curate.io.shards import DEFAULT_SHARD_ROWS
from curate.materialize import ApplyOptions, iter_apply


def _warn_skipped(source: Source) -> None:
    if source.skipped:
        warnings.warn(source.skipped_report(), stacklevel=3)


def load(data, *, id_column: str = "id", max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
         on_oversize: str = "error"):
    """Read a dataset into a memory-mapped ``datasets.Dataset`` with an id column.

    The source is converted batch by batch into an Arrow file in the cache
    (``$CURATE_CACHE``, default ``~/.cache/curate``), keyed by its content hash, so
    memory stays bounded and a second load is instant. Shards whose column types
    differ compatibly are unified (see :mod:`curate.io`). ``on_oversize="skip"``
    leaves out documents whose ``text`` is over ``max_doc_bytes`` (with a warning
    giving their number) instead of stopping.
    """
    import datasets

    source = Source(data, id_column=id_column, max_doc_bytes=max_doc_bytes,
                    on_oversize=on_oversize)
    if source.in_memory is not None and not source.files:
        table = source.read_all()
        _warn_skipped(source)
        return like(table, "datasets")
    # The content depends on the id column and, when documents are skipped, on the limit.
    key = fingerprint({"source": source.fingerprint(), "id_column": id_column,
                       "skip": max_doc_bytes if on_oversize == "skip" else None})
    path = Cache().path(key, ".arrow")
    if not path.exists():
        with TableWriter(path, allow_arrow=True) as writer:
            for batch in source.iter_batches():
                writer.write(batch)
        _warn_skipped(source)
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
          joined: bool = True, max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES,
          on_oversize: str = "error", output: str | Path | None = None,
          executor: str | Executor = "local", address: str | None = None,
          shard_rows: int = DEFAULT_SHARD_ROWS):
    """Score a dataset.

    Args:
        data: see the module docstring.
        scorers: scorer objects or specs such as ``"gopher_quality"`` or
            ``"fasttext_quality:model=q.bin"``.
        workers: processes (1 runs in this process), or Ray workers.
        joined: return one table joined by id (default) or a dict of tables by scorer.
        max_doc_bytes: limit on a document's text (UTF-8 bytes; 0 for none).
        on_oversize: ``"error"`` stops at a document over the limit; ``"skip"`` leaves
            it out of the scores (with a warning giving their number).
        output: a score folder to write the sharded tables to, as ``curate score -o``
            does; a second call resumes or reuses it. None: a temporary folder.
        executor: ``"local"``, ``"ray"`` or an :class:`curate.executor.Executor`.
        address: with ``executor="ray"``, the cluster to join (None: a local instance).
        shard_rows: rows per shard.

    Returns:
        The score table(s), as the kind ``data`` was (Arrow for paths).
    """
    import tempfile

    from curate.scores import load_scores
    from curate.sharded import score_to_folder

    scorers = [make_scorer(s).with_text_column(text_column)
               for s in (scorers if isinstance(scorers, (list, tuple)) else [scorers])]
    source = Source(data, id_column=id_column, text_column=text_column,
                    max_doc_bytes=max_doc_bytes, on_oversize=on_oversize)
    with tempfile.TemporaryDirectory(prefix="curate-score-") as scratch, \
            make_executor(executor, workers=workers, address=address) as runner:
        folder = Path(output) if output is not None else Path(scratch)
        score_to_folder(scorers, source, folder, executor=runner, shard_rows=shard_rows,
                        batch_size=batch_size, progress=progress)
        tables = load_scores([folder / s.name for s in scorers])
    _warn_skipped(source)
    kind = source.kind if source.kind != "path" else "arrow"
    if not joined:
        return {name: like(t, kind) for name, t in tables.items()}
    return like(join_scores(tables, id_column), kind)


def select(scores, *steps, id_column: str = "id"):
    """Run filter steps (from :mod:`filters`) over a score table; return the selection,
    as the kind ``scores`` was (Arrow, pandas or ``datasets.Dataset``)."""
    from filters import select as run_steps

    table, kind = to_arrow(scores)
    return like(run_steps(table, list(steps), id_column=id_column), kind)


def apply(data, selection, *, rejected: bool = False, tag_as: str | None = None,
          tag_format: str = "<|{tag}|> ", transform=(), everything: bool = False,
          text_column: str = "text", id_column: str = "id",
          max_doc_bytes: int = DEFAULT_MAX_DOC_BYTES, on_oversize: str = "error"):
    """Materialise a selection: the kept examples (or the rejected ones, with
    ``reason``, when ``rejected=True``), as the kind ``data`` was.

    ``transform`` names cleaning scorers (e.g. ``["c4_quality"]``) whose rewritten
    text replaces the kept text; ``tag_as`` is ``"column"``, ``"prefix"`` or
    ``"none"``; by default tags become a ``tag`` column when the selection has any.
    ``max_doc_bytes`` and ``on_oversize`` are as for :func:`score` (use the same values,
    so that the same documents are left out).
    """
    selection, _ = to_arrow(selection)
    options = ApplyOptions(text_column=text_column, tag_as=tag_as, tag_format=tag_format,
                           everything=everything,
                           transforms=[make_scorer(t).with_text_column(text_column)
                                       for t in transform])
    source = Source(data, id_column=id_column, text_column=text_column,
                    max_doc_bytes=max_doc_bytes, on_oversize=on_oversize)
    parts = [pair[1 if rejected else 0] for pair in iter_apply(source, selection, options)]
    if not parts:
        raise CurateError("nothing to apply: the dataset is empty")
    _warn_skipped(source)
    table = concat_tables(parts)
    return like(table, "datasets" if source.kind == "path" else source.kind)
