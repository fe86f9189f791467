"""Running a recipe: validated, fingerprinted, resumable, with a manifest.

A recipe names a source and ordered steps (``fit``, ``score``, ``filter``,
``tag``, ``apply``, ``experiment``). Each step gets a fingerprint from its own configuration, the
fingerprints of what it reads (the source's content hash, the previous steps,
model files) and curate's version. On a re-run a step whose fingerprint matches a
finished one is reused instead of recomputed. ``manifest.json`` records versions,
seeds, fingerprints, counts kept and dropped per step and reason, and timings.

Run folder layout::

    <out>/scores/<scorer>.parquet   score tables
    <out>/selection.parquet         the final selection (id, keep, reason, tag, order)
    <out>/models/...                models saved by fit steps
    <out>/<apply outputs>           kept / rejected / tagged data
    <out>/<experiment output>/      an experiment's tables, plots, report and caches
    <out>/manifest.json             what ran, how, and what it produced
    <out>/.state.json               fingerprints of finished steps (for reuse)
"""

from __future__ import annotations

import json
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

import curate
from curate.core.errors import CurateError
from curate.io import Source, atomic_path
from curate.recipe_schema import read_yaml, validate
from curate.core.registry import FILTERS, SCORERS, build, make_scorer
from curate.core.scorer import FittedScorer
from curate.core.tables import counts, new_selection

PACKAGES = ("datasets", "pyarrow", "duckdb", "numpy", "fasttext-wheel", "langid",
            "xxhash", "scikit-learn", "torch", "click", "pyyaml")


def _hash(*parts) -> str:
    import xxhash

    h = xxhash.xxh3_128()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()


def _file_hash(path: Path) -> str:
    import xxhash

    h = xxhash.xxh3_128()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def versions() -> dict:
    out = {"curate": curate.__version__, "python": sys.version.split()[0],
           "platform": platform.platform()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _write_json(path: Path, data) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


class RecipeRun:
    """One execution of a recipe file into a run folder."""

    def __init__(self, recipe_path, out_dir=None, *, workers: int | None = None,
                 force: bool = False, progress: bool = False, log=print):
        self.path = Path(recipe_path)
        self.recipe = read_yaml(self.path)
        validate(self.path, self.recipe)
        self.base = self.path.parent
        name = self.recipe.get("name") or self.path.stem
        self.out = Path(out_dir) if out_dir else Path("runs") / name
        self.workers = workers or self.recipe.get("workers", 1)
        self.seed = self.recipe.get("seed", 0)
        self.batch_size = self.recipe.get("batch_size")
        self.force = force
        self.progress = progress
        self.log = log
        src = self.recipe["source"]
        src = {"path": src} if isinstance(src, str) else dict(src)
        self.text_column = src.get("text_column", "text")
        self.source_args = {"id_column": src.get("id_column", "id"),
                            "max_doc_bytes": src.get("max_doc_bytes",
                                                     curate.io.DEFAULT_MAX_DOC_BYTES)}
        self.produced: set[str] = set()
        self.source_spec = self._input_path(src["path"])

    # -- paths -------------------------------------------------------------------
    def _input_path(self, spec: str) -> str:
        """Built-in names stay; files produced by this run live in the run folder;
        other relative paths are relative to the recipe file."""
        if spec.startswith("builtin:") or Path(spec).is_absolute():
            return spec
        if spec in self.produced:
            return str(self.out / spec)
        return str(self.base / spec)

    def _source(self, spec: str | None = None, **extra) -> Source:
        return Source(spec or self.source_spec, **{**self.source_args, **extra})

    # -- running -----------------------------------------------------------------
    def run(self) -> dict:
        started = time.perf_counter()
        self.out.mkdir(parents=True, exist_ok=True)
        state_path = self.out / ".state.json"
        state = {} if self.force or not state_path.exists() else json.loads(
            state_path.read_text())
        source = self._source()
        self.source_fp = source.fingerprint()
        next(source.iter_batches(1))  # reads one row: sets ids_assigned, checks columns
        manifest = {"recipe": {"path": str(self.path), "sha": _file_hash(self.path)},
                    "versions": versions(), "seed": self.seed, "workers": self.workers,
                    "source": {**source.describe(), "fingerprint": self.source_fp},
                    "steps": []}
        self.scores: dict[str, pa.Table] = {}
        self.selection: pa.Table | None = None
        chain = _hash(self.source_fp, curate.__version__)
        for number, step in enumerate(self.recipe["steps"], start=1):
            (kind, body), = step.items()
            chain = _hash(chain, kind, body, self.seed)
            t0 = time.perf_counter()
            record = getattr(self, f"_step_{kind}")(body, chain, state.get(str(number), {}))
            record = {"step": number, "type": kind, "fingerprint": chain, **record,
                      "seconds": round(time.perf_counter() - t0, 3)}
            state[str(number)] = {k: v for k, v in record.items() if k != "seconds"}
            _write_json(state_path, state)
            manifest["steps"].append(record)
            self.log(_summary(record))
        manifest["source"]["rows"] = self.rows
        manifest["total_seconds"] = round(time.perf_counter() - started, 3)
        _write_json(self.out / "manifest.json", manifest)
        return manifest

    @property
    def rows(self):
        table = next(iter(self.scores.values()), None)
        return None if table is None else table.num_rows

    def _reusable(self, previous: dict, fingerprint: str, outputs: list[Path]) -> bool:
        return (not self.force and previous.get("fingerprint") == fingerprint
                and all(p.exists() for p in outputs))

    # -- steps -------------------------------------------------------------------
    def _step_fit(self, body, fingerprint, previous):
        cls = SCORERS.get(body["scorer"])
        target = self.out / body["save"]
        self.produced.add(body["save"])
        data_fp = {k: self._data_fingerprint(v) for k, v in body["data"].items()}
        fingerprint = _hash(fingerprint, data_fp)
        if self._reusable(previous, fingerprint, [target]):
            return {"fingerprint": fingerprint, "reused": True, "outputs": [str(target)]}
        params = dict(body.get("params", {}))
        if "seed" in _init_params(cls.fit) and "seed" not in params:
            params["seed"] = self.seed
        texts = {key: self._texts(spec) for key, spec in body["data"].items()}
        try:
            scorer = cls().fit(**texts, **params)
        except TypeError as exc:
            raise CurateError(f"{self.path}: fit {body['scorer']}: bad data or params: "
                              f"{exc}") from None
        target.parent.mkdir(parents=True, exist_ok=True)
        scorer.save(target)
        return {"fingerprint": fingerprint, "reused": False, "outputs": [str(target)],
                "params": params}

    def _data_fingerprint(self, spec: str) -> str:
        return self._source(self._input_path(spec)).fingerprint()

    def _texts(self, spec: str) -> list[str]:
        source = self._source(self._input_path(spec), required_columns=(self.text_column,),
                              check_unique_ids=False)
        table = source.read_all([self.text_column])
        return ["" if t is None else t for t in table.column(self.text_column).to_pylist()]

    def _step_score(self, body, fingerprint, previous):
        from curate.executor import LocalExecutor, score_source
        from curate.core.registry import parse_value
        from curate.scores import load_scores, read_metadata, save_scores

        todo, reused, outputs = [], [], {}
        for spec in body["scorers"]:
            name, params = (spec, {}) if isinstance(spec, str) else (
                spec["name"], {k: parse_value(v) if isinstance(v, str) and k != "model" else v
                               for k, v in spec.items() if k != "name"})
            resolved = dict(params)
            fitted = issubclass(SCORERS.get(name), FittedScorer)
            if fitted and isinstance(params.get("model"), str):  # a model file, not a zoo name
                resolved["model"] = self._input_path(params["model"])
            # The fingerprint and metadata hold the recipe's own parameters and the
            # model's content hash, never run-folder paths, so runs compare byte for byte.
            model_fp = _file_hash(Path(resolved["model"])) if fitted and "model" in resolved \
                else None
            fp = _hash(self.source_fp, name, params, model_fp, curate.__version__)
            path = self.out / "scores" / f"{name}.parquet"
            outputs[name] = str(path)
            if not self.force and path.exists() and read_metadata(path).get("fingerprint") == fp:
                reused.append(name)
                continue
            scorer = build(SCORERS, name, resolved).with_text_column(self.text_column)
            todo.append((scorer, {"fingerprint": fp, "scorer": name, "params": params,
                                  "model_sha": model_fp, "source_fingerprint": self.source_fp}))
        if todo:
            source = self._source()
            tables = score_source([s for s, _ in todo], source,
                                  executor=LocalExecutor(self.workers),
                                  batch_size=self.batch_size, progress=self.progress)
            save_scores(tables, self.out / "scores", {s.name: meta for s, meta in todo})
            self.scores.update(tables)
        for name in reused:
            self.scores.update(load_scores(self.out / "scores" / f"{name}.parquet"))
        return {"reused": sorted(reused), "computed": [s.name for s, _ in todo],
                "outputs": list(outputs.values())}

    def _joined(self) -> pa.Table:
        from curate.core.tables import join_scores

        if not self.scores:
            raise CurateError(f"{self.path}: a filter or tag step needs a score step before it")
        return join_scores(self.scores, self.source_args["id_column"])

    def _select(self, step) -> dict:
        from filters import select
        from filters.labels import join_labels

        joined = self._joined()
        balance = getattr(step, "balance", None)
        if balance and balance not in joined.column_names:  # a class-balanced budget
            labels = self._source(required_columns=(balance,)).read_all([balance])
            joined = join_labels(joined, labels, balance, self.source_args["id_column"])
        if self.selection is None:
            self.selection = new_selection(joined.column(self.source_args["id_column"]),
                                           self.source_args["id_column"])
        before = self.selection
        self.selection = select(joined, [step], id_column=self.source_args["id_column"],
                                start=before)
        newly = pc.and_(before.column("keep"), pc.invert(self.selection.column("keep")))
        return {"reused": False, "dropped_here": counts(self.selection.filter(newly))[
            "dropped_by_reason"], "counts": counts(self.selection)}

    def _step_filter(self, body, fingerprint, previous):
        (name, value), = ((k, v) for k, v in body.items() if k != "reason")
        cls = FILTERS.get(name)
        kwargs = dict(value) if isinstance(value, dict) else {
            next(iter(_init_params(cls))): value}
        if "reason" in body:
            kwargs["reason"] = body["reason"]
        if "seed" in _init_params(cls) and "seed" not in kwargs:
            kwargs["seed"] = self.seed
        try:
            step = cls(**kwargs)
        except TypeError as exc:
            raise CurateError(f"{self.path}: filter {name}: {exc}") from None
        return self._select(step)

    def _step_tag(self, body, fingerprint, previous):
        from filters import Tag

        return self._select(Tag(body["rules"], default=body.get("default")))

    def _step_apply(self, body, fingerprint, previous):
        from curate.io import write_table
        from curate.materialize import ApplyOptions, write_applied

        if self.selection is None:
            raise CurateError(f"{self.path}: an apply step needs a filter or tag step before it")
        sel_path = self.out / "selection.parquet"
        write_table(self.selection, sel_path)
        targets = {k: self.out / body[k] for k in ("kept", "rejected", "everything") if k in body}
        if not targets:
            raise CurateError(f"{self.path}: apply step: give kept, rejected or everything")
        fingerprint = _hash(fingerprint, _file_hash(sel_path))
        outputs = [sel_path, *targets.values()]
        if self._reusable(previous, fingerprint, outputs):
            return {"fingerprint": fingerprint, "reused": True, "counts": previous.get("counts"),
                    "outputs": {k: str(v) for k, v in targets.items()}}
        transforms = [make_scorer(n).with_text_column(self.text_column)
                      for n in body.get("transform", [])]

        def options(everything: bool) -> ApplyOptions:
            return ApplyOptions(text_column=self.text_column, tag_as=body.get("tag_as"),
                                tag_format=body.get("tag_format", "<|{tag}|> "),
                                everything=everything, transforms=transforms)

        # Kept and rejected come from one pass over the data; "everything" needs its own.
        rows = write_applied(self._source(), self.selection, options(False),
                             kept=targets.get("kept"), rejected=targets.get("rejected"))
        if "everything" in targets:
            rows["everything"] = write_applied(self._source(), self.selection, options(True),
                                               kept=targets["everything"])["kept"]
        written = {key: {"path": str(target), "rows": rows[key], "sha": _file_hash(target)}
                   for key, target in targets.items()}
        return {"fingerprint": fingerprint, "reused": False, "counts": counts(self.selection),
                "outputs": written}

    def _step_experiment(self, body, fingerprint, previous):
        """A prune sweep, curriculum sweep or lottery-ticket run on the recipe's source.

        Sweeps cache their scores and runs in their output folder, so a re-run retrains
        nothing that finished before (the record counts trained and reused runs); a
        lottery step is reused whole when its fingerprint and report are unchanged.
        """
        from curate.train import TrainConfig

        try:
            config = TrainConfig(**body["train"])
        except TypeError as exc:
            raise CurateError(f"{self.path}: experiment train: {exc}") from None
        out = self.out / body.get("output", body["kind"])
        seeds = list(range(body.get("seeds", 3)))
        test = self._input_path(body["test"])
        if body["kind"] == "lottery":
            return self._lottery(body, config, seeds, test, out, fingerprint, previous)
        from curate.experiment import curriculum_sweep, prune_sweep

        common = {"seeds": seeds, "train_config": config, "out_dir": out,
                  "workers": self.workers, "progress": self.progress}
        if body["kind"] == "prune-sweep":
            result = prune_sweep(self.source_spec, test, methods=body["methods"],
                                 fractions=body["fractions"],
                                 budget=body.get("budget", "same-steps"),
                                 score_seeds=body.get("score_seeds"), **common)
        else:
            score = dict(body["score"])
            options = {k: body[k] for k in ("orderings", "pacings", "start", "full_at",
                                            "higher_is_harder", "eval_points") if k in body}
            result = curriculum_sweep(self.source_spec, test, score=score.pop("name"),
                                      score_params=score, budgets=body["budgets"],
                                      **options, **common)
        return {"reused": result.trained == 0,
                "runs": {"trained": result.trained, "reused": result.reused},
                "scores": {"computed": result.scores_computed, "reused": result.scores_reused},
                "outputs": [str(out / "report.md")]}

    def _lottery(self, body, config, seeds, test, out, fingerprint, previous):
        from curate.train import TensorData
        from curate.train.lottery import imp

        report = out / "report.md"
        fingerprint = _hash(fingerprint, self._data_fingerprint(test))
        if self._reusable(previous, fingerprint, [report]):
            return {"fingerprint": fingerprint, "reused": True, "outputs": [str(report)]}
        options = {k: body[k] for k in ("fraction", "rewind_step", "controls",
                                        "output_fraction", "scope", "target_acc",
                                        "eval_every", "instability") if k in body}
        result = imp(config, TensorData.from_source(self.source_spec),
                     TensorData.from_source(test), levels=body["levels"], seeds=seeds,
                     workers=self.workers, **options)
        result.write(out)
        return {"fingerprint": fingerprint, "reused": False,
                "runs": {"trained": result.runs.num_rows, "reused": 0},
                "outputs": [str(report)]}

def _init_params(fn) -> list[str]:
    import inspect

    target = fn.__init__ if isinstance(fn, type) else fn
    return [p for p in inspect.signature(target).parameters if p not in ("self", "args",
                                                                           "kwargs")]


def _summary(record: dict) -> str:
    head = f"step {record['step']} {record['type']}"
    c = record.get("counts")
    bits = []
    if record.get("reused") is True:
        bits.append("reused")
    elif isinstance(record.get("reused"), list) and record["reused"]:
        bits.append(f"reused {', '.join(record['reused'])}")
    if record.get("computed"):
        bits.append(f"computed {', '.join(record['computed'])}")
    if record.get("runs"):
        bits.append(f"{record['runs']['trained']} runs trained, {record['runs']['reused']} "
                    "reused")
    if record.get("dropped_here") or record["type"] == "filter":
        bits.append(f"dropped {sum(record['dropped_here'].values())}")
    if c:
        bits.append(f"kept {c['kept']}/{c['input']}")
    bits.append(f"{record['seconds']:.1f}s")
    return f"{head}: {'; '.join(bits)}"


def run_recipe(path, out_dir=None, **kwargs) -> dict:
    """Validate and run a recipe file; return its manifest."""
    return RecipeRun(path, out_dir, **kwargs).run()
