"""Does a text filter make a language model better for the same compute?

``text-ablation`` trains the same small GPT from scratch on each **pool** of training
documents, for the same number of training tokens, over seeds, and measures held-out
bits per byte on every held-out slice. Pools (``pools``, each a string or a mapping):

- ``"all"``: every training document (the unfiltered baseline);
- ``"selection"``: the documents the recipe's selection keeps (``{"name": ..,
  "selection": PATH}`` for any other selection file);
- ``"random"``: random documents with as many bytes as the ``selection`` pool, drawn
  anew for each seed (``{"name": .., "random_like": OTHER_POOL}`` sizes it on another
  pool).

Compute rule: every arm trains on exactly ``train_config.tokens`` tokens. A smaller pool
therefore repeats its data; ``epochs`` in the results says how often each arm saw it.
Differences are paired by seed against ``baseline`` (default ``all``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.core.errors import CurateError
from curate.experiment.cells import as_train_config, seed_list, summarize_rows
from curate.experiment.outputs import ExperimentResult, write_result
from curate.experiment.text import (
    LMCell,
    batches_of,
    curve_rows,
    curves_figure,
    describe,
    generation_rows,
    heldout_pools,
    paired_differences,
    read_text_table,
    run_lm_cells,
    slice_rows,
    slice_table,
    text_bytes,
    timing,
    tokenizer_for,
)
from curate.reporting import interval_text, markdown_table

POOL_KEYS = ("name", "selection", "random_like")
PLOT = "curves.png"


@dataclass(kw_only=True)
class TextAblationResult(ExperimentResult):
    """``results`` (pool, seed, slice, loss, bpb, epochs, tokens), ``summary`` (bpb over
    seeds per pool and slice), ``paired`` (each pool minus the baseline and minus its
    random pool, by seed), ``curves`` (bpb against tokens), ``pools`` (documents, bytes,
    tokens of each pool and seed), ``generations`` (empty unless ``samples``), ``timing``
    (wall clock per run) and ``settings``."""

    results: pa.Table
    summary: pa.Table
    paired: pa.Table
    curves: pa.Table
    pools: pa.Table
    generations: pa.Table
    timing: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def tables(self) -> dict:
        tables = {"results.csv": self.results, "summary.csv": self.summary,
                  "paired.csv": self.paired, "curves.csv": self.curves,
                  "pools.csv": self.pools, "timing.csv": pa.Table.from_pylist(self.timing)}
        if self.generations.num_rows:
            tables["generations.parquet"] = self.generations
        return tables

    def figures(self) -> dict:
        return {PLOT: curves_figure(self.curves, "pool")}

    def markdown(self) -> str:
        return report_markdown(self)


def pool_spec(pool) -> dict:
    """A pool as a mapping with ``name`` and one of ``selection`` / ``random_like`` (or
    neither, for every document)."""
    if isinstance(pool, str):
        shorthand = {"all": {"name": "all"},
                     "selection": {"name": "selection", "selection": "selection"},
                     "random": {"name": "random", "random_like": "selection"}}
        if pool not in shorthand:
            raise CurateError(f"bad pool {pool!r}: expected 'all', 'selection', 'random' or a "
                              "mapping with name and selection or random_like")
        return shorthand[pool]
    if not isinstance(pool, dict) or "name" not in pool:
        raise CurateError(f"pool {pool!r}: expected a mapping with a name")
    unknown = [k for k in pool if k not in POOL_KEYS]
    if unknown:
        raise CurateError(f"pool {pool['name']!r}: unknown key {unknown[0]!r}; keys: "
                          f"{', '.join(POOL_KEYS)}")
    if "selection" in pool and "random_like" in pool:
        raise CurateError(f"pool {pool['name']!r}: give selection or random_like, not both")
    return dict(pool)


def check_pools(pools, *, selection: bool) -> list[dict]:
    """The pool specs, checked: distinct names, ``random_like`` naming a pool listed
    before it, and a recipe selection wherever one is used."""
    specs = [pool_spec(p) for p in pools]
    if not specs:
        raise CurateError("text-ablation: pools must be a non-empty list")
    names = [s["name"] for s in specs]
    if len(set(names)) != len(names):
        raise CurateError(f"text-ablation: pool names repeat: {names}")
    for i, s in enumerate(specs):
        if s.get("random_like") is not None and s["random_like"] not in names[:i]:
            raise CurateError(f"pool {s['name']!r}: random_like must name an earlier pool, "
                              f"got {s['random_like']!r}")
        if s.get("selection") == "selection" and not selection:
            raise CurateError(f"pool {s['name']!r} trains on the recipe's selection, but none "
                              "was given (add filter steps before the experiment, or pass "
                              "selection=)")
    return specs


def check_ablation_params(params: dict, *, selection: bool = False) -> None:
    """Check text-ablation's own parameters before anything is read (pools, baseline)."""
    specs = check_pools(params.get("pools", ("all", "selection", "random")),
                        selection=selection)
    baseline = params.get("baseline", "all")
    if baseline not in [s["name"] for s in specs]:
        raise CurateError(f"text-ablation: baseline {baseline!r} is not one of the pools")


def text_ablation(data, test_data, *, train_config, seeds, out_dir, workers: int = 1,
                  progress: bool = False, scores: dict | None = None, selection=None,
                  pools=("all", "selection", "random"), baseline: str = "all",
                  tokenizer: str = "bytes", text_column: str = "text",
                  slice_column: str = "slice", samples: int = 0,
                  max_new_tokens: int = 256, temperature: float = 1.0,
                  top_k: int | None = None) -> TextAblationResult:
    """Train ``train_config`` (an :class:`curate.train.lm.LMConfig` or its fields) on every
    pool for every seed; write the tables, ``curves.png`` and ``report.md`` to ``out_dir``.

    ``data``: the training documents (``id`` and ``text_column``); ``test_data``: held-out
    documents, grouped into slices by ``slice_column`` (one slice without it);
    ``tokenizer``: ``bytes``, ``bpe:VOCAB`` (trained on all training documents, saved as
    ``tokenizer.json``) or a saved tokenizer's path. ``samples`` > 0: each trained model
    also writes that many texts from a new document (``max_new_tokens``,
    ``temperature``, ``top_k``, seeded by the run's seed) into ``generations.parquet``,
    which any scorer scores like a dataset. ``scores`` is not used.
    """
    from curate.experiment.methods import selection_positions
    from curate.train.lm import LMConfig, pack_pool

    start = time.perf_counter()
    config = as_train_config(train_config, LMConfig)
    seeds = seed_list(seeds)
    check_ablation_params({"pools": pools, "baseline": baseline},
                          selection=selection is not None)
    specs = check_pools(pools, selection=selection is not None)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = read_text_table(data, text_column, "training data")
    test = read_text_table(test_data, text_column, "held-out data")
    texts = table.column(text_column)
    tok = tokenizer_for(tokenizer, texts, out)
    cache = out / "tokens"
    heldout = heldout_pools(test, text_column, slice_column, tok, cache)
    sizes = text_bytes(texts)

    def packed(name: str, rows: np.ndarray):
        return pack_pool(batches_of(texts.take(pa.array(rows))), tok, cache=cache, name=name)

    positions: dict[tuple[str, int], np.ndarray] = {}   # (pool, seed) -> document rows
    cells, pool_rows = [], []
    for spec in specs:
        name = spec["name"]
        if spec.get("random_like") is None:
            fixed = (np.arange(table.num_rows) if spec.get("selection") is None else
                     selection_positions(spec["selection"], selection, table.column("id"),
                                         f"pool {name!r}"))
            pool = packed(name, fixed)
        for seed in seeds:
            if spec.get("random_like") is None:
                rows = fixed
            else:   # drawn anew for each seed, the size of that seed's target pool
                rows = random_like(sizes, positions[(spec["random_like"], seed)], seed)
                pool = packed(name, rows)
            positions[(name, seed)] = rows
            pool_rows.append({"pool": name, "seed": seed, "documents": len(rows),
                              "bytes": int(sizes[rows].sum()), "tokens": pool.n_tokens,
                              "epochs": config.steps * config.batch_size * config.context
                              / (pool.n_sequences(config.context) * config.context)})
            generate = None if not samples else {
                "tokenizer": str(out / "tokenizer.json"), "prompts": [""] * samples,
                "max_new_tokens": max_new_tokens, "temperature": temperature,
                "top_k": top_k, "seed": seed}
            cells.append(LMCell(stub={"pool": name, "seed": seed}, pool=pool,
                                generate=generate))
    records = run_lm_cells(cells, config, heldout, out / "cells", workers=workers,
                           progress=progress)
    rows = slice_rows(records, heldout, ("pool",))
    summary = summarize_rows(rows, ("pool", "slice"), value="bpb")
    epochs: dict = {}
    for r in rows:
        epochs.setdefault(r["pool"], []).append(r["epochs"])
    summary = summary.append_column("epochs", pa.array(
        [float(np.mean(epochs[p])) for p in summary.column("pool").to_pylist()]))
    result = TextAblationResult(
        results=pa.Table.from_pylist(rows),
        summary=summary,
        paired=paired_table(rows, specs, baseline),
        curves=pa.Table.from_pylist(curve_rows(records, heldout, ("pool",))),
        pools=pa.Table.from_pylist(pool_rows),
        generations=pa.Table.from_pylist(generation_rows(records, "pool")),
        timing=timing(records, ("pool",)),
        settings={"data": describe(data), "test_data": describe(test_data),
                  "parameters": records[0]["final"]["parameters"],
                  "precision": records[0]["final"]["precision"], "baseline": baseline,
                  "tokenizer": tokenizer, "config": config.as_dict(), "seeds": seeds},
        trained=sum(not r["reused"] for r in records),
        reused=sum(r["reused"] for r in records))
    result.seconds = time.perf_counter() - start
    write_result(result, out)
    return result


def paired_table(rows: list[dict], specs: list[dict], baseline: str) -> pa.Table:
    """Every pool minus ``baseline``, and every pool that a ``random_like`` pool is sized
    on minus that random pool (is the filter better than chance at the same size?), each
    paired by seed, per slice."""
    tables = [paired_differences(rows, "pool", baseline, "bpb", by=("slice",))]
    for spec in specs:
        target = spec.get("random_like")
        if target is not None and target != baseline:
            mine = [r for r in rows if r["pool"] in (target, spec["name"])]
            tables.append(paired_differences(mine, "pool", spec["name"], "bpb",
                                             by=("slice",)))
    filled = [t for t in tables if t.num_rows]
    return pa.concat_tables(filled) if filled else tables[0]


def random_like(sizes: np.ndarray, target_rows: np.ndarray, seed: int) -> np.ndarray:
    """Sorted positions of random documents whose bytes first reach those of
    ``target_rows`` (drawn from all documents with ``seed``)."""
    goal = int(sizes[target_rows].sum())
    order = np.random.default_rng(seed).permutation(len(sizes))
    count = int(np.searchsorted(np.cumsum(sizes[order]), goal) + 1)
    return np.sort(order[:min(count, len(order))])


def report_markdown(result: TextAblationResult) -> str:
    """The compute rule, the pools, bpb per slice with intervals, the paired differences,
    the curves and wall time."""
    from curate.experiment.cells import runs_footer

    s = result.settings
    c = s["config"]
    lines = ["# Text ablation", "",
             f"Training data: `{s['data']}`; held-out data: `{s['test_data']}`; tokenizer: "
             f"`{s['tokenizer']}`; seeds: {s['seeds']}.", "",
             f"Compute rule: every arm trains the same model ({model_text(s)}) from scratch "
             f"on exactly {c['tokens']:,} tokens. A smaller pool is repeated to "
             "fill the budget: the epochs column says how many passes each arm made.", ""]
    pools = {}
    for r in result.pools.to_pylist():
        pools.setdefault(r["pool"], []).append(r)
    lines += markdown_table(["pool", "documents", "MB", "tokens", "epochs"],
                            [[p, _span(rs, "documents", "{:,}"),
                              _span([{"b": r["bytes"] / 1e6} for r in rs], "b", "{:.2f}"),
                              _span(rs, "tokens", "{:,}"), _span(rs, "epochs", "{:.2f}")]
                             for p, rs in pools.items()])
    lines += ["", "Held-out bits per byte (lower is better), mean over seeds:", ""]
    lines += slice_table(result.summary, "pool", "bits per byte")
    lines += ["", f"Each pool minus `{s['baseline']}`, and each filtered pool minus its random "
              "pool of the same size, paired by seed (negative: fewer bits per byte than the "
              "pool it is compared with; an interval containing 0 is no evidence either "
              "way):", ""]
    lines += markdown_table(["pool", "minus", "slice", "n", "difference", "95% CI"],
                            [[r["pool"], r["against"], r["slice"], r["n"], f"{r['mean']:+.4f}",
                              interval_text(r)] for r in result.paired.to_pylist()])
    lines += ["", f"![held-out bits per byte during training]({PLOT})", "",
              runs_footer(result, scores=False), ""]
    return "\n".join(lines)


def model_text(settings: dict) -> str:
    """``gpt {'size': 'xs'}, 460,160 parameters, context 256, batch 16``."""
    c = settings["config"]
    params = f" {c['model_params']}" if c["model_params"] else ""
    return (f"{c['model']}{params}, {settings['parameters']:,} parameters, context "
            f"{c['context']}, batch {c['batch_size']}, {settings['precision']}")


def _span(rows: list[dict], key: str, fmt: str) -> str:
    values = sorted({r[key] for r in rows})
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(values[0])}-{fmt.format(values[-1])}"
