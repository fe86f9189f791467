"""What the language-model experiments share: reading text pools, packing them, training
(arm, seed) cells in processes with a cache, and summarising per held-out slice.

A **pool** is the training documents one arm sees (all of them, those a selection keeps,
a random subset of the same size, ...); **held-out slices** are the test documents
grouped by a column (``slice`` in curate's corpus), each packed on its own so every arm
is measured on every slice. Cells are cached in ``<out_dir>/cells`` under the fingerprint
of the config, the packed pool and held-out texts, the seed and what the cell
generates, so a re-run trains only what changed.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.core.cache import Cache
from curate.core.errors import CurateError
from curate.core.hashing import fingerprint

#: Rows packed per batch of texts (bounded memory for the Python strings).
TEXT_BATCH = 1000
#: Metrics of a run that vary between machines: kept out of the result tables.
TIMING = ("seconds", "tokens_per_second", "first_step_seconds")


def read_text_table(data, text_column: str, what: str) -> pa.Table:
    """The table ``data`` names (anything :class:`curate.io.Source` reads), checked to have
    an ``id`` and a string ``text_column`` (a null text is packed as an empty document)."""
    from curate.io import Source

    source = data if isinstance(data, Source) else Source(data)
    table = source.read_all()
    for column in ("id", text_column):
        if column not in table.column_names:
            raise CurateError(f"{what}: no column {column!r}; columns are: "
                              f"{', '.join(table.column_names)}")
    if not pa.types.is_string(table.schema.field(text_column).type) and not \
            pa.types.is_large_string(table.schema.field(text_column).type):
        raise CurateError(f"{what}: column {text_column!r} must hold text")
    if table.num_rows == 0:
        raise CurateError(f"{what}: no documents")
    return table


def describe(data) -> str:
    """How a report names ``data``: its path or spec, or ``a table of N rows``."""
    from curate.io import Source

    if isinstance(data, Source):
        return data.spec if data.spec != "Table" else f"a table of {data.read_all().num_rows} rows"
    if isinstance(data, pa.Table):
        return f"a table of {data.num_rows} rows"
    return str(data)


def batches_of(texts: pa.ChunkedArray | pa.Array | list):
    """A callable giving a fresh iterator of lists of at most :data:`TEXT_BATCH` texts
    (nulls as empty strings), as :func:`curate.train.lm.pack_pool` wants."""
    def batches():
        for start in range(0, len(texts), TEXT_BATCH):
            chunk = texts[start:start + TEXT_BATCH]
            values = chunk.to_pylist() if hasattr(chunk, "to_pylist") else list(chunk)
            yield [v or "" for v in values]
    return batches


def text_bytes(texts) -> np.ndarray:
    """``[n]`` UTF-8 byte length of each text (nulls 0)."""
    import pyarrow.compute as pc

    return pc.fill_null(pc.binary_length(texts), 0).to_numpy().astype(np.int64)


def heldout_pools(table: pa.Table, text_column: str, slice_column: str | None, tokenizer,
                  cache) -> dict:
    """Slice name -> packed pool of the held-out documents of that slice (one slice,
    ``heldout``, when ``slice_column`` is None or absent)."""
    from curate.train.lm import pack_pool

    if not slice_column or slice_column not in table.column_names:
        return {"heldout": pack_pool(batches_of(table.column(text_column)), tokenizer,
                                     cache=cache, name="heldout")}
    slices = table.column(slice_column).to_numpy(zero_copy_only=False)
    out = {}
    for name in sorted({str(s) for s in slices if s is not None}):
        rows = np.flatnonzero(slices == name)
        out[name] = pack_pool(batches_of(table.column(text_column).take(rows)), tokenizer,
                              cache=cache, name=name)
    return out


def tokenizer_for(spec, train_texts, out_dir: Path, control=()):
    """The tokenizer ``spec`` names (``bytes``, ``bpe:VOCAB`` trained on ``train_texts``, or
    a saved one), saved as ``<out_dir>/tokenizer.json`` (a trained BPE is reused from there
    when its training texts and size are unchanged)."""
    from curate.train.lm import load_tokenizer, make_tokenizer
    from curate.train.lm.pool import _text_digest

    path = out_dir / "tokenizer.json"
    key_path = out_dir / "tokenizer.key"
    if isinstance(spec, str) and spec.startswith("bpe"):
        key = fingerprint({"spec": spec, "control": list(control),
                           "texts": _text_digest(batches_of(train_texts)())[0]})
        if path.is_file() and key_path.is_file() and key_path.read_text() == key:
            return load_tokenizer(path)
        tokenizer = make_tokenizer(spec, control=control, train_batches=batches_of(train_texts))
        tokenizer.save(path)
        key_path.write_text(key)
        return tokenizer
    tokenizer = make_tokenizer(spec, control=control)
    tokenizer.save(path)
    return tokenizer


@dataclasses.dataclass
class LMCell:
    """One (arm, seed) run: ``stub`` (its row labels, ``seed`` among them), the pool it
    trains on, ``generate``: None, or the keyword arguments of
    :func:`curate.train.lm.generate` plus ``prompts`` and ``tokenizer`` (a path), and
    ``config``: its own :class:`curate.train.lm.LMConfig` (None: the experiment's)."""

    stub: dict
    pool: object
    generate: dict | None = None
    config: object = None


def run_lm_cells(cells: list[LMCell], config, heldout: dict, folder: Path, *,
                 workers: int = 1, progress: bool = False) -> list[dict]:
    """One record per cell, in order: ``{**stub, "history", "final", "generations",
    "reused"}``. Cached cells are read back; the rest train in ``workers`` spawned
    processes (one torch thread each) and are cached."""
    import curate
    from curate.train.seeds import map_processes

    cache = Cache(folder)
    keys = [fingerprint({"cell": c.stub, "config": (c.config or config).as_dict(),
                         "pool": c.pool.meta,
                         "heldout": {k: p.meta for k, p in heldout.items()},
                         "generate": _without_path(c.generate), "curate": curate.__version__})
            for c in cells]
    records: list = [None] * len(cells)
    todo = []
    for i, key in enumerate(keys):
        stored = cache.get_json(key)
        if stored is None:
            todo.append(i)
        else:
            records[i] = {**cells[i].stub, **stored, "reused": True}
    bar = None
    if progress and todo:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(todo), desc="language models", unit="run")
    jobs = [(cells[i], cells[i].config or config, heldout) for i in todo]
    for i, done in zip(todo, map_processes(_train_cell, jobs, workers)):
        cache.put_json(keys[i], done)
        records[i] = {**cells[i].stub, **done, "reused": False}
        if bar is not None:
            bar.update()
    if bar is not None:
        bar.close()
    return records


def _without_path(spec: dict | None) -> dict | None:
    """A generation spec as it enters the cache key: the pool's key already names the
    tokenizer, whose file path may move."""
    return None if spec is None else {k: v for k, v in spec.items() if k != "tokenizer"}


def _train_cell(job) -> dict:
    from curate.train.lm import build_lm, generate, load_tokenizer, train_lm

    cell, config, heldout = job
    run = train_lm(config, cell.pool, heldout, seed=cell.stub["seed"])
    texts = None
    if cell.generate is not None:
        spec = dict(cell.generate)
        tokenizer = load_tokenizer(spec.pop("tokenizer"))
        prompts = spec.pop("prompts")
        model = build_lm(config, tokenizer.vocab_size)
        model.load_state_dict(run.state)
        texts = generate(model, tokenizer, prompts, **spec)
    return {"history": run.history, "final": run.final, "generations": texts}


def generation_rows(records: list[dict], label: str) -> list[dict]:
    """One row per generated sample: ``id`` (``<arm>/<seed>/<sample>``, so the table can be
    scored like any dataset: ``curate score generations.parquet -s NAME``), the ``label``
    column, ``seed``, ``sample`` and ``text``."""
    return [{"id": f"{r[label]}/{r['seed']}/{i}", label: r[label], "seed": r["seed"],
             "sample": i, "text": text}
            for r in records for i, text in enumerate(r["generations"] or [])]


def slice_rows(records: list[dict], slices, labels: tuple[str, ...]) -> list[dict]:
    """Tidy rows: one per (record, slice) with the ``labels`` columns, ``seed``, ``slice``,
    final ``loss`` and ``bpb``, and the run's ``epochs`` and trained ``tokens``."""
    rows = []
    for r in records:
        for name in slices:
            rows.append({**{k: r[k] for k in labels}, "seed": r["seed"], "slice": name,
                         "loss": r["final"][f"{name}_loss"], "bpb": r["final"][f"{name}_bpb"],
                         "epochs": r["final"]["epochs"], "tokens": r["final"]["tokens"]})
    return rows


def curve_rows(records: list[dict], slices, labels: tuple[str, ...]) -> list[dict]:
    """Tidy learning-curve rows: (labels, seed, step, tokens, train_loss, slice, bpb)."""
    rows = []
    for r in records:
        for point in r["history"]:
            for name in slices:
                rows.append({**{k: r[k] for k in labels}, "seed": r["seed"],
                             "step": point["step"], "tokens": point["tokens"],
                             "train_loss": point["train_loss"], "slice": name,
                             "bpb": point[f"{name}_bpb"]})
    return rows


def paired_differences(rows: list[dict], arm: str, baseline: str, value: str,
                       by: tuple[str, ...] = ()) -> pa.Table:
    """Each arm minus ``baseline``, paired by seed, per ``by`` key: one row per (arm, by)
    with ``against``, ``n``, the mean difference and its 95% Student-t interval."""
    from curate.train import summarize

    values = {(r[arm], *(r[k] for k in by), r["seed"]): r[value] for r in rows}
    groups = dict.fromkeys((r[arm], *(r[k] for k in by)) for r in rows if r[arm] != baseline)
    out = []
    for key in groups:
        name, rest = key[0], key[1:]
        diffs = [values[key + (s,)] - values[(baseline, *rest, s)]
                 for (*k, s) in values if tuple(k) == key and (baseline, *rest, s) in values]
        if not diffs:
            continue
        stats = summarize(diffs)
        low, high = stats["ci95"] or (None, None)
        out.append({arm: name, **dict(zip(by, rest)), "against": baseline, "n": stats["n"],
                    "mean": stats["mean"], "ci95_lo": low, "ci95_hi": high})
    return pa.Table.from_pylist(out)


def timing(records: list[dict], labels: tuple[str, ...]) -> list[dict]:
    """Wall-clock figures per run (they vary between machines, so they live apart from the
    result tables)."""
    return [{**{k: r[k] for k in labels}, "seed": r["seed"], "reused": r["reused"],
             **{k: r["final"].get(k) for k in TIMING}} for r in records]


def slice_table(table: pa.Table, label: str, header: str, sign: str = "") -> list[str]:
    """Markdown lines of a summary or paired table by (``label``, slice): n, the mean as
    ``header`` (``sign="+"`` for differences) and the 95% interval."""
    from curate.reporting import interval_text, markdown_table

    return markdown_table([label, "slice", "n", header, "95% CI"],
                          [[r[label], r["slice"], r["n"], f"{r['mean']:{sign}.4f}",
                            interval_text(r)] for r in table.to_pylist()])


def curves_figure(curves: pa.Table, arm: str, ylabel: str = "held-out bits per byte"):
    """Bits per byte against training tokens, one panel per slice, one band per arm."""
    from matplotlib.figure import Figure

    from curate.experiment.cells import summarize_rows
    from curate.reporting import band

    rows = curves.to_pylist()
    slices = list(dict.fromkeys(r["slice"] for r in rows))
    cols = min(3, len(slices))
    fig = Figure(figsize=(4.5 * cols, 3.5 * math.ceil(len(slices) / cols)), dpi=100,
                 layout="constrained")
    axes = fig.subplots(math.ceil(len(slices) / cols), cols, squeeze=False).ravel()
    points = summarize_rows(rows, (arm, "slice", "tokens"), value="bpb").to_pylist()
    for ax, name in zip(axes, slices):
        for label in dict.fromkeys(r[arm] for r in points):
            mine = [r for r in points if r[arm] == label and r["slice"] == name]
            band(ax, [r["tokens"] for r in mine], mine, str(label))
        ax.set_title(name)
        ax.set_xlabel("training tokens")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
    for ax in axes[len(slices):]:
        ax.set_visible(False)
    return fig
