"""How many epochs over the same data before returns vanish? ``repetition``.

The experiment holds the training budget fixed (``train_config.tokens`` for a language
model, ``train_config.steps`` x ``batch_size`` examples for a classifier) and shrinks the
unique pool so that each run makes ``epochs`` passes over it (default 1, 2, 4, ..., 64).
The unique pools of one curve are **nested**: the documents (or examples) of a pool are
shuffled once per draw and each unique pool is a prefix of that order, cut at exactly
``budget / epochs`` tokens (a document may be cut), so a smaller pool lies inside every
larger one. With ``calibrate`` (the default) every smaller size also gets a
**single-epoch** run, which says what that many fresh tokens are worth; from those, the
fit of Muennighoff et al.'s ``R*`` (:mod:`curate.experiment.repetition_fit`) asks what the
repeated tokens were worth. Each run is measured on held-out data: every held-out slice
for text (bits per byte), the test set for a classifier (cross-entropy in nats).

Pools (``pools``, each a name or a mapping) say what is repeated:

- ``"all"``: every training document or example;
- ``{"name": .., "where": SQL}``: those where a DuckDB predicate over the data's columns
  (the text and list columns left out) and the joined score tables is true, e.g.
  ``"slice = 'code'"`` or ``"NOT exact_dup_duplicate"``;
- ``{"name": .., "selection": PATH or "selection"}``: those a selection keeps (with
  ``where``: both);
- ``{"name": .., "mix": {"prose": 0.75, "code": 0.25}}``: every unique pool made of those
  shares (of its tokens or examples) from the named pools' own nested orders;
- ``epochs``: the pool's own grid (it must hold 1); ``heldout``: the slice its headline
  figures use (default: the slice most of its bytes come from).

Draws: the nested orders are drawn anew for each seed (``pool_seed=None``, so the
intervals cover which documents were drawn) or once from ``pool_seed``.
``compare``: pairs ``[a, b]`` of pools (``"pool@slice"`` to pick a held-out slice) whose
``R*`` and loss rise at every shared epoch count are differenced, paired by seed.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from curate.core.errors import CurateError
from curate.experiment.cells import as_train_config, seed_list
from curate.experiment.outputs import ExperimentResult, write_result
from curate.experiment.text import batches_of, describe, text_bytes
from curate.io.writers import output_folder

DEFAULT_EPOCHS = (1, 2, 4, 8, 16, 32, 64)
POOL_KEYS = ("name", "where", "selection", "mix", "epochs", "heldout")
TEST_SLICE = "test"  # the one held-out "slice" of a classifier


def config_type_for(fields):
    """:class:`curate.train.lm.LMConfig` for a language model (a config with a ``tokens``
    budget), else :class:`curate.train.TrainConfig`."""
    from curate.train import TrainConfig
    from curate.train.lm import LMConfig

    if isinstance(fields, (LMConfig, TrainConfig)):
        return type(fields)
    return LMConfig if isinstance(fields, dict) and "tokens" in fields else TrainConfig


@dataclass(kw_only=True)
class RepetitionResult(ExperimentResult):
    """``results`` (one row per run and held-out slice: pool, seed, run = repeated or
    calibration, epochs, unique, slice, the metric, measured epochs), ``summary`` (the
    metric over seeds per point, with the rise against one epoch paired by seed), ``fits``
    (R* and the epochs within tolerance per pool and slice, with bootstrap intervals),
    ``effective`` (what each repeated run was worth in fresh data), ``comparisons``,
    ``pools`` (the unique pools drawn), ``timing`` and ``settings``."""

    results: pa.Table
    summary: pa.Table
    fits: pa.Table
    effective: pa.Table
    comparisons: pa.Table
    pools: pa.Table
    timing: list = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def tables(self) -> dict:
        return {"results.csv": self.results, "summary.csv": self.summary,
                "fits.csv": self.fits, "effective.csv": self.effective,
                "comparisons.csv": self.comparisons, "pools.csv": self.pools,
                "timing.csv": pa.Table.from_pylist(self.timing)}

    def figures(self) -> dict:
        from curate.experiment.repetition_report import (
            effective_figure,
            rise_figure,
            slices_figure,
        )

        return {"rise.png": rise_figure(self), "effective.png": effective_figure(self),
                "slices.png": slices_figure(self)}

    def markdown(self) -> str:
        from curate.experiment.repetition_report import report_markdown

        return report_markdown(self)


# -- parameters -------------------------------------------------------------------------
def pool_spec(pool) -> dict:
    """A pool as a mapping with ``name`` (``"all"`` for a bare ``"all"``)."""
    if isinstance(pool, str):
        if pool != "all":
            raise CurateError(f"bad pool {pool!r}: expected 'all' or a mapping with name and "
                              "where, selection or mix")
        return {"name": "all"}
    if not isinstance(pool, dict) or not isinstance(pool.get("name"), str):
        raise CurateError(f"pool {pool!r}: expected a mapping with a name")
    unknown = [k for k in pool if k not in POOL_KEYS]
    if unknown:
        raise CurateError(f"pool {pool['name']!r}: unknown key {unknown[0]!r}; keys: "
                          f"{', '.join(POOL_KEYS)}")
    if "mix" in pool and ("where" in pool or "selection" in pool):
        raise CurateError(f"pool {pool['name']!r}: a mix takes its documents from its pools; "
                          "give mix, or where/selection")
    return dict(pool)


def epoch_grid(value, what: str) -> list[int]:
    """Distinct positive integers, sorted, holding 1 (the unique-data run)."""
    try:
        grid = sorted({int(e) for e in value})
    except (TypeError, ValueError):
        raise CurateError(f"{what}: epochs must be a list of integers, got {value!r}") from None
    if not grid or grid[0] < 1 or any(float(e) != int(e) for e in value):
        raise CurateError(f"{what}: epochs must be positive integers, got {value!r}")
    if grid[0] != 1:
        raise CurateError(f"{what}: epochs must include 1, the unique-data run it is "
                          f"measured against; got {value!r}")
    return grid


def check_repetition_params(params: dict, *, selection: bool = False) -> list[dict]:
    """Check ``repetition``'s own parameters before anything runs; return the pools as
    mappings, each with its ``epochs`` grid."""
    grid = epoch_grid(params.get("epochs", DEFAULT_EPOCHS), "repetition")
    raw = params.get("pools", ("all",))
    if isinstance(raw, (str, dict)) or not raw:
        raise CurateError("repetition: pools must be a non-empty list")
    specs = [pool_spec(p) for p in raw]
    names = [s["name"] for s in specs]
    if len(set(names)) != len(names):
        raise CurateError(f"repetition: pool names must be distinct, got {names}")
    for spec in specs:
        spec["epochs"] = epoch_grid(spec.get("epochs", grid), f"pool {spec['name']!r}")
        if spec.get("selection") == "selection" and not selection:
            raise CurateError(f"pool {spec['name']!r} uses the selection, but there is none "
                              "(add a filter step before the experiment)")
        if "mix" in spec:
            mix = spec["mix"]
            if not isinstance(mix, dict) or not mix:
                raise CurateError(f"pool {spec['name']!r}: mix must map pool names to shares")
            for part, share in mix.items():
                other = next((s for s in specs if s["name"] == part), None)
                if other is None or "mix" in other:
                    raise CurateError(f"pool {spec['name']!r}: mix names {part!r}, which is "
                                      "not a pool without a mix of its own")
                if not isinstance(share, (int, float)) or not 0 <= share <= 1:
                    raise CurateError(f"pool {spec['name']!r}: share of {part!r} must be in "
                                      f"[0, 1], got {share!r}")
            if abs(sum(mix.values()) - 1) > 1e-9:
                raise CurateError(f"pool {spec['name']!r}: mix shares must sum to 1, got "
                                  f"{sum(mix.values())}")
    for pair in params.get("compare", ()):
        if not isinstance(pair, (list, tuple)) or len(pair) != 2:
            raise CurateError(f"repetition: compare entries are pairs [a, b], got {pair!r}")
        for item in pair:
            name = str(item).partition("@")[0]
            if name not in names:
                raise CurateError(f"repetition: compare names pool {name!r}; pools: "
                                  f"{', '.join(names)}")
    tolerance = params.get("tolerance", 0.01)
    if not isinstance(tolerance, (int, float)) or not 0 < tolerance < 1:
        raise CurateError(f"repetition: tolerance must be in (0, 1), got {tolerance!r}")
    boot = params.get("bootstrap", 1000)
    if not isinstance(boot, int) or isinstance(boot, bool) or boot < 0:
        raise CurateError(f"repetition: bootstrap must be a count >= 0, got {boot!r}")
    return specs


# -- the experiment ---------------------------------------------------------------------
def repetition(data, test_data, *, train_config, seeds, out_dir, workers: int = 1,
               progress: bool = False, scores: dict | None = None, selection=None,
               epochs=DEFAULT_EPOCHS, pools=("all",), compare=(), calibrate: bool = True,
               tolerance: float = 0.01, bootstrap: int = 1000, pool_seed: int | None = None,
               tokenizer: str = "bytes", text_column: str = "text",
               slice_column: str = "slice") -> RepetitionResult:
    """Loss against epochs over nested unique pools at a fixed budget, over seeds; the fit
    of R* and the epochs within ``tolerance`` of unique data (module notes).

    ``train_config``: an :class:`curate.train.lm.LMConfig` (``data`` then holds documents
    in ``text_column``, ``test_data`` held-out documents grouped by ``slice_column``,
    ``tokenizer`` as for ``text-ablation``) or a :class:`curate.train.TrainConfig` with a
    ``steps`` budget (``data`` and ``test_data`` as for the classifier experiments).
    ``bootstrap``: resamples of the seeds for the intervals of R* (0: none).
    """
    from curate.train.lm import LMConfig

    start = time.perf_counter()
    config = as_train_config(train_config, config_type_for(train_config))
    seeds = seed_list(seeds)
    params = {"epochs": epochs, "pools": pools, "compare": compare, "tolerance": tolerance,
              "bootstrap": bootstrap}
    specs = check_repetition_params(params, selection=selection is not None)
    text = isinstance(config, LMConfig)
    with output_folder(out_dir) as out:   # a mistake found while preparing leaves nothing
        run = _TextRuns(data, test_data, config, out, tokenizer, text_column, slice_column) \
            if text else _ClassifierRuns(data, test_data, config, out)
        frame = _pool_frame(run.table, scores, drop=(text_column,))
        rows_of = {s["name"]: _base_rows(s, frame, run.table, selection) for s in specs
                   if "mix" not in s}
        heads = {s["name"]: s.get("heldout") or run.default_heldout(s, specs, rows_of)
                 for s in specs}
        wanted = [(f"pool {name!r}", head) for name, head in heads.items()]
        wanted += [(f"compare {item!r}", str(item).partition("@")[2])
                   for pair in compare for item in pair if "@" in str(item)]
        for what, slice_ in wanted:
            if slice_ not in run.slices:
                raise CurateError(f"{what}: held-out slice {slice_!r} is not in the held-out "
                                  f"data; slices: {', '.join(run.slices)}")
        plan, pool_rows = [], []
        for spec in specs:
            for seed in seeds:
                draw = seed if pool_seed is None else int(pool_seed)
                for e in spec["epochs"]:
                    unique = run.unique_size(e)
                    pool = run.unique_pool(spec["name"], _parts(spec, unique), rows_of, draw)
                    pool_rows.append({"pool": spec["name"], "seed": seed, "draw": draw,
                                      "epochs": e, **run.describe_pool(pool)})
                    labels = {"pool": spec["name"], "seed": seed}
                    plan.append(({**labels, "run": "repeated", "epochs": e, "unique": unique},
                                 pool, config))
                    if calibrate and e > 1:
                        plan.append(({**labels, "run": "calibration", "epochs": 1,
                                      "unique": unique}, pool, run.single_epoch(unique)))
    rows, timing = run.train(plan, workers=workers, progress=progress)
    from curate.experiment.repetition_report import analyse

    result = RepetitionResult(
        results=pa.Table.from_pylist(rows), pools=pa.Table.from_pylist(pool_rows),
        timing=timing, summary=None, fits=None, effective=None, comparisons=None,
        settings={"data": describe(data), "test_data": describe(test_data), "text": text,
                  "metric": run.metric, "unit": run.unit, "budget": run.unique_size(1),
                  "config": dataclasses.asdict(config), "seeds": seeds,
                  "tokenizer": tokenizer if text else None, "tolerance": tolerance,
                  "bootstrap": bootstrap, "calibrate": calibrate,
                  "pool_seed": pool_seed, "headline": heads,
                  "pools": [dict(s) for s in specs],
                  "compare": [list(p) for p in compare], "parameters": run.parameters},
        trained=run.trained, reused=run.reused)
    analyse(result)
    result.seconds = time.perf_counter() - start
    write_result(result, out)
    return result


def _parts(spec: dict, unique: int) -> list[tuple[str, int]]:
    """``(base pool, count)`` prefixes that make ``spec``'s unique pool of ``unique``."""
    if "mix" not in spec:
        return [(spec["name"], unique)]
    parts, left = [], unique
    shares = [(name, share) for name, share in spec["mix"].items() if share > 0]
    for i, (name, share) in enumerate(shares):
        count = left if i == len(shares) - 1 else int(round(share * unique))
        parts.append((name, count))
        left -= count
    return [p for p in parts if p[1] > 0]


def _pool_frame(table: pa.Table, scores: dict | None, drop: tuple[str, ...]) -> pa.Table:
    """The columns a pool's ``where`` sees: the data's own (less text and list columns)
    and the joined score tables, aligned to the data's rows by id."""
    import pyarrow.compute as pc

    from curate.core.tables import join_scores

    keep = [f.name for f in table.schema if f.name not in drop
            and not pa.types.is_list(f.type) and not pa.types.is_fixed_size_list(f.type)
            and not pa.types.is_large_list(f.type)]
    frame = table.select(keep)
    if scores:
        joined = join_scores(scores, "id")
        aligned = joined.take(pc.index_in(frame.column("id"), joined.column("id")))
        for name in joined.column_names:
            if name not in frame.column_names:
                frame = frame.append_column(name, aligned.column(name))
    return frame


def _base_rows(spec: dict, frame: pa.Table, table: pa.Table, selection) -> np.ndarray:
    """Sorted row positions of the documents (examples) a pool without a mix draws from."""
    from curate.experiment.methods import selection_positions
    from curate.sql import evaluate_predicate

    rows = np.arange(table.num_rows)
    if spec.get("selection") is not None:
        rows = selection_positions(spec["selection"], selection, table.column("id"),
                                   f"pool {spec['name']!r}")
    if spec.get("where"):
        try:
            mask = evaluate_predicate(frame, spec["where"]).to_numpy(zero_copy_only=False)
        except CurateError as exc:
            raise CurateError(f"pool {spec['name']!r}: {exc}") from None
        rows = np.intersect1d(rows, np.flatnonzero(mask))
    if not len(rows):
        raise CurateError(f"pool {spec['name']!r}: no documents")
    return rows


def draw_order(rows: np.ndarray, name: str, draw: int) -> np.ndarray:
    """``rows`` shuffled for one draw of pool ``name`` (each pool and draw its own order;
    the same arguments give the same order on every machine)."""
    rng = np.random.default_rng([int(draw), zlib.crc32(name.encode())])
    return rows[rng.permutation(len(rows))]


class _TextRuns:
    """Unique token pools (prefixes of each pool's packed shuffled documents), training
    cells and result rows for a language model."""

    metric, unit = "bpb", "tokens"

    def __init__(self, data, test_data, config, out: Path, tokenizer, text_column,
                 slice_column):
        from curate.experiment.text import heldout_pools, read_text_table, tokenizer_for

        self.config, self.out = config, out
        self.table = read_text_table(data, text_column, "training data")
        test = read_text_table(test_data, text_column, "held-out data")
        self.texts = self.table.column(text_column)
        self.slice_column = slice_column
        self.tokenizer = tokenizer_for(tokenizer, self.texts, out)
        self.cache = out / "tokens"
        self.heldout = heldout_pools(test, text_column, slice_column, self.tokenizer,
                                     self.cache)
        self.slices = list(self.heldout)
        self.streams: dict = {}
        self.trained = self.reused = 0
        self.parameters = None

    def unique_size(self, epochs: int) -> int:
        """Tokens of the unique pool for ``epochs`` passes: whole sequences of the budget
        over ``epochs``, plus the one token the last target needs."""
        c = self.config
        trained = c.steps * c.batch_size * c.context
        return max(trained // (epochs * c.context), 1) * c.context + 1

    def single_epoch(self, unique: int):
        return dataclasses.replace(self.config, tokens=unique - 1)

    def stream(self, name: str, rows: np.ndarray, draw: int):
        """The pool's documents in their drawn order, packed until they hold the budget."""
        from curate.train.lm import pack_pool

        if (name, draw) in self.streams:
            return self.streams[(name, draw)]
        need = self.unique_size(1)
        order = draw_order(rows, name, draw)
        cumulative = np.cumsum(text_bytes(self.texts.take(pa.array(order))))
        goal = need
        while True:
            count = min(int(np.searchsorted(cumulative, goal) + 1), len(order))
            pool = pack_pool(batches_of(self.texts.take(pa.array(order[:count]))),
                             self.tokenizer, cache=self.cache, name=name)
            if pool.n_tokens >= need:
                break
            if count == len(order):
                raise CurateError(f"pool {name!r} holds {pool.n_tokens:,} tokens, fewer than "
                                  f"the {need:,} of one epoch at this budget")
            goal = goal * need / pool.n_tokens * 1.1  # a subword tokenizer: more bytes
        self.streams[(name, draw)] = pool
        return pool

    def unique_pool(self, name, parts, rows_of, draw):
        from curate.train.lm.pool import prefix_pool

        return prefix_pool([(self.stream(part, rows_of[part], draw), count)
                            for part, count in parts], cache=self.cache, name=name)

    def describe_pool(self, pool) -> dict:
        return {"unique": pool.n_tokens, "documents": int(pool.meta["documents"]),
                "bytes": pool.n_bytes}

    def default_heldout(self, spec, specs, rows_of) -> str:
        """The slice most of the pool's bytes come from (for a mix: its largest part's)."""
        if "mix" in spec:
            part = max(spec["mix"].items(), key=lambda kv: kv[1])[0]
            return self.default_heldout(next(s for s in specs if s["name"] == part), specs,
                                        rows_of)
        if self.slice_column not in self.table.column_names or len(self.slices) == 1:
            return self.slices[0]

        rows = rows_of[spec["name"]]
        slices = self.table.column(self.slice_column).take(pa.array(rows)).to_numpy(
            zero_copy_only=False)
        weights = text_bytes(self.texts.take(pa.array(rows)))
        totals = {s: int(weights[slices == s].sum()) for s in self.slices}
        return max(totals, key=lambda s: totals[s])

    def train(self, plan, *, workers, progress):
        from curate.experiment.text import LMCell, run_lm_cells, timing

        cells = [LMCell(stub=stub, pool=pool, config=config) for stub, pool, config in plan]
        records = run_lm_cells(cells, self.config, self.heldout, self.out / "cells",
                               workers=workers, progress=progress)
        self.trained = sum(not r["reused"] for r in records)
        self.reused = sum(r["reused"] for r in records)
        self.parameters = records[0]["final"]["parameters"]
        rows = [{**stub, "slice": name, "loss": r["final"][f"{name}_loss"],
                 "bpb": r["final"][f"{name}_bpb"], "measured_epochs": r["final"]["epochs"],
                 "tokens": r["final"]["tokens"]}
                for (stub, _, _), r in zip(plan, records) for name in self.heldout]
        return rows, timing(records, ("pool", "run", "epochs"))


class _ClassifierRuns:
    """Nested example subsets, training cells and result rows for a classifier."""

    metric, unit = "loss", "examples"
    slices = [TEST_SLICE]

    def __init__(self, data, test_data, config, out: Path):
        from curate.experiment.cells import load_data

        if config.steps is None:
            raise CurateError("repetition holds the examples seen fixed: give the training "
                              "config a steps budget, not epochs")
        self.config, self.out = config, out
        self.table, self.train_set, self.test_set, self.fingerprints = load_data(data,
                                                                                 test_data)
        self.orders: dict = {}
        self.trained = self.reused = 0
        self.parameters = None

    def unique_size(self, epochs: int) -> int:
        return max(self.config.steps * self.config.batch_size // epochs, 1)

    def single_epoch(self, unique: int):
        return dataclasses.replace(self.config, steps=self.config.steps_per_epoch(unique))

    def unique_pool(self, name, parts, rows_of, draw) -> np.ndarray:
        chosen = []
        for part, count in parts:
            order = self.orders.setdefault((part, draw), draw_order(rows_of[part], part, draw))
            if count > len(order):
                raise CurateError(f"pool {part!r} holds {len(order):,} examples, fewer than "
                                  f"the {count:,} of one epoch at this budget "
                                  f"({self.config.steps} steps of {self.config.batch_size})")
            chosen.append(order[:count])
        return np.concatenate(chosen)

    def describe_pool(self, pool) -> dict:
        return {"unique": len(pool), "documents": len(pool)}

    def default_heldout(self, spec, specs, rows_of) -> str:
        return TEST_SLICE

    def train(self, plan, *, workers, progress):
        import xxhash

        from curate.experiment.cells import Cell, cell_key, run_cells

        cells = []
        for stub, positions, config in plan:
            rows = xxhash.xxh3_128(np.asarray(positions, np.int64).tobytes()).hexdigest()
            cells.append(Cell(stub=stub, config=config, data={"positions": positions},
                              key=cell_key(stub, config, rows, self.fingerprints)))
        records = run_cells(cells, self.train_set, self.test_set, self.out / "cells",
                            workers=workers, progress=progress, desc="repetition")
        self.trained = sum(not r["reused"] for r in records)
        self.reused = sum(r["reused"] for r in records)
        from curate.train.models import make_model

        model = make_model(self.config.model, self.train_set.input_shape,
                           self.train_set.num_classes, **self.config.model_params)
        self.parameters = sum(p.numel() for p in model.parameters())
        rows = [{**stub, "slice": TEST_SLICE, "loss": r["test_loss"], "accuracy": r["test_acc"],
                 "measured_epochs": r["epochs"], "steps": r["steps"]}
                for (stub, _, _), r in zip(plan, records)]
        timing = [{**{k: stub[k] for k in ("pool", "run", "epochs", "seed")},
                   "reused": r["reused"], "seconds": r["seconds"]}
                  for (stub, _, _), r in zip(plan, records)]
        return rows, timing
