"""Running a recipe: validated, fingerprinted, resumable, with a manifest.

A recipe names a source and ordered steps (``fit``, ``score``, ``filter``, ``tag``,
``apply``, ``card``, ``experiment``). Every step is built from the YAML before anything runs
(:mod:`curate.steps`), so an unknown key, a bad parameter, an unknown scorer or filter,
an apply step with no filter before it, or a ``where`` predicate naming a column that
no earlier step writes is reported as ``recipe.yaml:LINE: ...`` at once.

Paths:

* **Inputs** (the source, fit data, test data, models): ``builtin:NAME`` and absolute
  paths stay as they are; a file an earlier step of this run wrote (a fit step's
  model) is read from the run folder; any other relative path is relative to the
  recipe file.
* **Outputs** (``save``, ``kept``, ``rejected``, ``everything``, an experiment's
  ``output``) are relative to the run folder (``--out``, default ``runs/<name>``) and
  must stay inside it, unless the recipe sets ``allow_outside_outputs: true``.

Run folder layout::

    <out>/scores/<scorer>.parquet   score tables
    <out>/selection.parquet         the final selection (id, keep, reason, tag, order)
    <out>/models/...                models saved by fit steps
    <out>/<apply outputs>           kept / rejected / tagged data
    <out>/card/card.md              a card step's quality card and its plots
    <out>/<experiment output>/      an experiment's tables, plots, report and caches
    <out>/manifest.json             what ran, how, and what it produced
    <out>/.cache/                   records of finished steps, by fingerprint (for reuse)
"""

from __future__ import annotations

import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import curate
from curate.core.errors import CurateError
from curate.core.hashing import file_hash
from curate.core.registry import FILTERS, accepted, load_plugins, parse_value
from curate.io import DEFAULT_MAX_DOC_BYTES, write_text
from curate.io.shards import DEFAULT_SHARD_ROWS
from curate.recipe_schema import STEPS, check_mapping, read_yaml, validate, where
from curate.steps import (
    ApplyStep,
    CardStep,
    Context,
    ExperimentStep,
    FilterStep,
    FitStep,
    ScoreStep,
    Step,
    run_steps,
)

PACKAGES = ("datasets", "pyarrow", "duckdb", "numpy", "fasttext-wheel", "langid",
            "xxhash", "scikit-learn", "torch", "click", "pyyaml")


def versions() -> dict:
    out = {"curate": curate.__version__, "python": sys.version.split()[0],
           "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


class RecipeRun:
    """One execution of a recipe file into a run folder (built and validated on init)."""

    def __init__(self, recipe_path, out_dir=None, *, workers: int | None = None,
                 force: bool = False, progress: bool = False, log=print,
                 executor: str | None = None, address: str | None = None):
        self.path = Path(recipe_path)
        self.recipe = read_yaml(self.path)
        validate(self.path, self.recipe)
        load_plugins(self.recipe.get("plugins", []))
        self.base = self.path.parent
        name = self.recipe.get("name") or self.path.stem
        self.out = Path(out_dir) if out_dir else Path("runs") / name
        self.allow_outside = self.recipe.get("allow_outside_outputs", False)
        self.log = log
        self.produced: set[str] = set()
        src = self.recipe["source"]
        src = {"path": src} if isinstance(src, str) else dict(src)
        options = {"id_column": src.get("id_column", "id"),
                   "max_doc_bytes": src.get("max_doc_bytes", DEFAULT_MAX_DOC_BYTES)}
        if "on_oversize" in src:
            options["on_oversize"] = src["on_oversize"]
        self.ctx = Context(source=self._input(src["path"]), out=self.out,
                           source_options=options,
                           text_column=src.get("text_column", "text"),
                           workers=workers or self.recipe.get("workers", 1),
                           batch_size=self.recipe.get("batch_size"),
                           executor=executor or self.recipe.get("executor", "local"),
                           address=address or self.recipe.get("address"),
                           shard_rows=self.recipe.get("shard_rows", DEFAULT_SHARD_ROWS),
                           seed=self.recipe.get("seed", 0), force=force, progress=progress,
                           resolve=self._input)
        try:
            self.ctx.make_executor()
        except CurateError as exc:
            raise CurateError(f"{where(self.path, self.recipe, 'executor')}: {exc}") from None
        self.steps = [self._build(number, step)
                      for number, step in enumerate(self.recipe["steps"], start=1)]
        self._check_order()

    # -- paths -------------------------------------------------------------------------
    def _input(self, spec: str) -> str:
        if spec.startswith("builtin:") or Path(spec).is_absolute():
            return spec
        if spec in self.produced:
            return str(self.out / spec)
        return str(self.base / spec)

    def _output(self, body, key: str, what: str, default: str | None = None) -> str:
        value = body.get(key, default)
        target = (self.out / value).resolve()
        if not self.allow_outside and not target.is_relative_to(self.out.resolve()):
            raise CurateError(f"{where(self.path, body, key)}: {what}: {key} {value!r} is "
                              "outside the run folder; use a relative path inside it (or set "
                              "allow_outside_outputs: true)")
        self.produced.add(value)
        return value

    # -- building ----------------------------------------------------------------------
    def _build(self, number: int, step) -> Step:
        (kind, body), = step.items()
        what = f"step {number} ({kind})"
        try:
            return getattr(self, f"_build_{kind}")(body, what)
        except CurateError as exc:
            message = str(exc)
            if message.startswith(str(self.path)):
                raise
            raise CurateError(f"{where(self.path, body)}: {what}: {message}") from None

    def _build_fit(self, body, what):
        check_mapping(self.path, body, STEPS["fit"], what)
        save = self._output(body, "save", what)
        return FitStep(body["scorer"], body["data"], save, body.get("params"))

    def _build_score(self, body, what):
        check_mapping(self.path, body, STEPS["score"], what)
        specs = []
        for spec in body["scorers"]:
            if isinstance(spec, str):
                specs.append((spec, {}))
            elif isinstance(spec, dict) and "name" in spec:
                specs.append((spec["name"], {k: parse_value(v) if isinstance(v, str) and
                                             k != "model" else v
                                             for k, v in spec.items() if k != "name"}))
            else:
                raise CurateError(f"{where(self.path, body, 'scorers')}: {what}: a scorer is a "
                                  "name or a mapping with name: and its parameters")
        return ScoreStep(specs, "scores")

    def _build_filter(self, body, what):
        if not isinstance(body, dict):
            raise CurateError(f"{what} must be a mapping such as {{where: '...'}}")
        names = [k for k in body if k != "reason"]
        if len(names) != 1:
            raise CurateError(f"{what} needs exactly one filter, got {names or 'none'}; "
                              f"filters: {', '.join(FILTERS.names())}")
        name, value = names[0], body[names[0]]
        cls = FILTERS.get(name)
        params = dict(value) if isinstance(value, dict) else {accepted(cls)[0]: value}
        if "reason" in body:
            params["reason"] = body["reason"]
        if "seed" in accepted(cls) and "seed" not in params:
            params["seed"] = self.ctx.seed
        return FilterStep(name, params)

    def _build_tag(self, body, what):
        check_mapping(self.path, body, STEPS["tag"], what)
        return FilterStep("tag", dict(body))

    def _build_apply(self, body, what):
        check_mapping(self.path, body, STEPS["apply"], what)
        targets = {k: self._output(body, k, what) for k in ("kept", "rejected", "everything")
                   if k in body}
        return ApplyStep(**targets, tag_as=body.get("tag_as"),
                         tag_format=body.get("tag_format", "<|{tag}|> "),
                         transform=body.get("transform", ()))

    def _build_card(self, body, what):
        check_mapping(self.path, body, STEPS["card"], what)
        output = self._output(body, "output", what, default="card")
        return CardStep(output, body.get("title"))

    def _build_experiment(self, body, what):
        check_mapping(self.path, body, STEPS["experiment"], what, open_ended=True)
        output = self._output(body, "output", what) if "output" in body else None
        own = {k: v for k, v in body.items()
               if k not in ("kind", "test", "train", "seeds", "output")}
        # Selection files named in the parameters are inputs: resolve them as inputs.
        if isinstance(own.get("pretrain"), str) and own["pretrain"] != "selection":
            own["pretrain"] = self._input(own["pretrain"])
        for key in ("methods", "subsets"):
            if isinstance(own.get(key), list):
                own[key] = [{**m, "selection": self._input(m["selection"])}
                            if isinstance(m, dict) and isinstance(m.get("selection"), str)
                            and m["selection"] != "selection" else m for m in own[key]]
        return ExperimentStep(body["kind"], body["test"], body["train"],
                              seeds=body.get("seeds", 3), output=output, params=own)

    def _check_order(self) -> None:
        """Steps that need an earlier step, and predicates over columns nothing writes."""
        has_scores = has_selection = False
        columns: set[str] | None = set()  # None: some earlier scorer's columns are unknown
        for number, (step, raw) in enumerate(zip(self.steps, self.recipe["steps"]), start=1):
            (kind, body), = raw.items()
            here = f"{where(self.path, body)}: step {number} ({kind})"
            if isinstance(step, ScoreStep):
                has_scores = True
                known = _score_columns(step, self.ctx)
                columns = None if known is None or columns is None else columns | known
            elif isinstance(step, FilterStep):
                if not has_scores:
                    raise CurateError(f"{here}: a {kind} step needs a score step before it")
                has_selection = True
                if columns is not None:
                    _check_predicates(step, columns, here)
            elif isinstance(step, CardStep) and not has_scores:
                raise CurateError(f"{here}: a card step needs a score step before it")
            elif isinstance(step, ApplyStep) and not has_selection:
                raise CurateError(f"{here}: an apply step needs a filter or tag step before it")
            elif isinstance(step, ExperimentStep):
                from curate.experiment import check

                try:
                    check(step.experiment, step.params, selection=has_selection)
                except CurateError as exc:
                    raise CurateError(f"{here}: {exc}") from None

    # -- running -----------------------------------------------------------------------
    def run(self) -> dict:
        started = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        source = self.ctx.open()
        next(source.iter_batches(1))  # reads one row: sets ids_assigned, checks columns
        with self.ctx.make_executor():  # one executor (one Ray instance) for every step
            records = run_steps(self.steps, self.ctx, log=self.log)
        first = next(iter(self.ctx.scores.values()), None)
        skipped = sum(r.get("skipped_oversize", 0) for r in records)
        manifest = {"recipe": {"path": str(self.path), "sha": file_hash(self.path),
                               "name": self.recipe.get("name"),
                               "description": self.recipe.get("description")},
                    "versions": versions(), "seed": self.ctx.seed,
                    "workers": self.ctx.workers, "executor": self.ctx.executor.name,
                    "shard_rows": self.ctx.shard_rows,
                    "plugins": list(self.recipe.get("plugins", [])),
                    "source": {**source.describe(), "fingerprint":
                               self.ctx.source_fingerprint(),
                               "rows": None if first is None else first.num_rows,
                               "skipped": skipped},
                    "steps": records,
                    "total_seconds": round(time.perf_counter() - started, 3)}
        import json

        write_text(self.out / "manifest.json",
                   json.dumps(manifest, indent=2, default=str) + "\n")
        return manifest


def _score_columns(step: ScoreStep, ctx: Context) -> set[str] | None:
    """The columns a score step will write, from a dry run of its batch scorers on the
    source's first row; None when a scorer's columns cannot be known before it runs
    (a model from an earlier fit step, or a scorer that trains on the whole dataset)."""
    import pyarrow as pa

    columns = set()
    try:
        scorers = step.build(ctx)
    except CurateError:
        return None  # e.g. a model file an earlier fit step will write
    first = None
    for scorer in scorers:
        if scorer.needs_whole_dataset:
            return None
        if first is None:
            wanted = sorted({c for s in scorers for c in s.columns_needed()})
            first = next(ctx.open().iter_batches(1, wanted))
        out = scorer.score_batch(first.select(scorer.columns_needed()))
        out = scorer.finalize(out.add_column(0, ctx.id_column, first.column(ctx.id_column)))
        columns |= set(out.column_names) if isinstance(out, pa.Table) else set()
    return columns


def _check_predicates(step: FilterStep, columns: set[str], here: str) -> None:
    """A ``where`` or ``tag`` predicate must name only columns that earlier steps write."""
    import duckdb

    predicates = [step.filter.predicate] if hasattr(step.filter, "predicate") else [
        predicate for _, predicate in getattr(step.filter, "rules", [])
        if isinstance(predicate, str)]
    if not predicates or step.filter.name == "rules":
        return
    con = duckdb.connect(config={"enable_external_access": False})
    try:
        con.execute("CREATE TABLE scores (" + ", ".join(
            f'"{c}" VARCHAR' for c in sorted(columns)) + ")")
        for predicate in predicates:
            try:
                con.execute(f"EXPLAIN SELECT * FROM scores WHERE ({predicate})")
            except duckdb.BinderException as exc:
                if "not found" in str(exc) or "does not have a column" in str(exc):
                    raise CurateError(f"{here}: predicate {predicate!r} names a column no "
                                      f"earlier step writes ({str(exc).splitlines()[0]}); "
                                      f"columns are: {', '.join(sorted(columns))}") from None
            except duckdb.Error:
                pass  # type errors against the VARCHAR stand-ins are checked when it runs
    finally:
        con.close()


def run_recipe(path, out_dir=None, **kwargs) -> dict:
    """Validate and run a recipe file; return its manifest."""
    return RecipeRun(path, out_dir, **kwargs).run()

