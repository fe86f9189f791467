"""Steps: the one model behind the command line, the Python API and recipes.

A step is a small object with one job: :class:`FitStep`, :class:`ScoreStep`,
:class:`FilterStep` (tagging and curricula are filters too), :class:`ApplyStep` and
:class:`ExperimentStep`. Each is built (and so validated) before anything runs,
has a :meth:`Step.config` that its fingerprint hashes, and one :meth:`Step.run` over
a :class:`Context`: the source, the run folder, and the score tables and selection of
the steps before it. ``curate score``, ``curate filter``, ``curate apply``,
``curate experiment`` and every recipe step build these same objects.

Fingerprints chain: a step's fingerprint hashes the previous step's, its own
configuration, the content hashes of the files it reads and curate's version. A
finished step's record is kept in the run folder's content cache
(``<out>/.cache/<fingerprint>.json``); a re-run whose fingerprint matches, and whose
outputs still exist, reuses it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

import curate
from curate.core.cache import Cache
from curate.core.errors import CurateError
from curate.core.filter import Filter
from curate.core.hashing import file_hash, fingerprint, table_hash
from curate.core.registry import EXPERIMENTS, SCORERS, accepted, build, make_scorer
from curate.core.scorer import FittedScorer, Scorer
from curate.core.tables import counts, join_scores, new_selection
from curate.io.shards import DEFAULT_SHARD_ROWS


@dataclass
class Context:
    """What steps read and write.

    Attributes:
        source: the dataset spec (path, glob, ``builtin:NAME``) or an in-memory table.
        out: the run folder; relative outputs resolve inside it.
        source_options: keyword arguments for :class:`curate.io.Source` (``id_column``,
            ``max_doc_bytes``, ...).
        text_column: the text column scorers read (default ``"text"``).
        workers, batch_size, seed: execution settings (``seed`` seeds filters and fits
            that take one and were given none).
        executor: where score steps run their shards: ``"local"`` (default, ``workers``
            processes), ``"ray"``, or an :class:`curate.executor.Executor`.
        address: the Ray cluster to join (``executor="ray"``; None starts a local one).
        shard_rows: rows per shard of the source (see :mod:`curate.io.shards`).
        force: recompute every step instead of reusing finished ones.
        resolve: maps an input spec to a path (recipes resolve relative to the recipe
            file, or to the run folder for files the run produced).
        scores: score tables computed or read so far, by scorer name.
        score_params: the parameters each of those scorers ran with, by scorer name.
        selection: the selection built so far (None before the first filter step).
    """

    source: object
    out: Path
    source_options: dict = field(default_factory=dict)
    text_column: str = "text"
    workers: int = 1
    batch_size: int | None = None
    executor: object = "local"
    address: str | None = None
    shard_rows: int = DEFAULT_SHARD_ROWS
    seed: int = 0
    force: bool = False
    progress: bool = False
    resolve: Callable[[str], str] = str
    scores: dict = field(default_factory=dict)
    score_params: dict = field(default_factory=dict)
    selection: pa.Table | None = None
    _fingerprint: str | None = None

    @property
    def id_column(self) -> str:
        return self.source_options.get("id_column", "id")

    def open(self, spec=None, **extra):
        """A :class:`curate.io.Source` over ``spec`` (default: the context's source)."""
        from curate.io import Source

        options = {"text_column": self.text_column, **self.source_options, **extra}
        return Source(self.source if spec is None else spec, **options)

    def source_fingerprint(self) -> str:
        if self._fingerprint is None:
            self._fingerprint = self.open().fingerprint()
        return self._fingerprint

    def rel(self, path) -> str:
        """``path`` relative to the run folder when inside it (records stay comparable
        between run folders)."""
        path = Path(path)
        try:
            return path.relative_to(self.out).as_posix()
        except ValueError:
            return str(path)

    def make_executor(self):
        """The executor of this run (see ``executor``), built once: a run that enters it
        around all its steps (a Ray instance started once) shares it with every step."""
        from curate.executor import make_executor

        self.executor = make_executor(self.executor, workers=self.workers,
                                      address=self.address)
        return self.executor

    def joined(self) -> pa.Table:
        if not self.scores:
            raise CurateError("a filter or tag step needs score tables: run a score step "
                              "first or pass --scores")
        return join_scores(self.scores, self.id_column)


class Step:
    """Base class: ``kind``, :meth:`config` (hashed into the fingerprint), :meth:`run`."""

    kind = ""

    def config(self, ctx: Context) -> dict:  # pragma: no cover - abstract
        """Everything the step's result depends on besides earlier steps, as plain data."""
        raise NotImplementedError

    def outputs(self, ctx: Context) -> list[Path]:
        """Files the step writes (a reused step needs them all to exist)."""
        return []

    def run(self, ctx: Context) -> dict:  # pragma: no cover - abstract
        """Do the work; return the record kept in the manifest."""
        raise NotImplementedError

    def restore(self, ctx: Context, record: dict) -> None:
        """Put a reused step's results back into ``ctx`` (default: nothing to restore)."""


def run_steps(steps: list[Step], ctx: Context, *, log=None) -> list[dict]:
    """Run ``steps`` in order over ``ctx``; reuse finished ones; return their records.

    Each record has ``step``, ``type``, ``fingerprint``, ``reused`` and ``seconds``
    besides what the step reported.
    """
    import time

    cache = Cache(ctx.out / ".cache")
    chain = fingerprint([ctx.source_fingerprint(), curate.__version__])
    records = []
    for number, step in enumerate(steps, start=1):
        chain = fingerprint([chain, step.kind, step.config(ctx)])
        started = time.perf_counter()
        previous = None if ctx.force else cache.get_json(chain)
        if previous is not None and all(p.exists() for p in step.outputs(ctx)):
            step.restore(ctx, previous)
            record = _as_reused(previous)
        else:
            record = {**step.run(ctx), "reused": False}
            cache.put_json(chain, record)
        record = {"step": number, "type": step.kind, "fingerprint": chain, **record,
                  "seconds": round(time.perf_counter() - started, 3)}
        records.append(record)
        if log is not None:
            log(summary(record))
    return records


def _as_reused(record: dict) -> dict:
    """A cached record as it reads on a re-run: everything it computed is now reused."""
    out = {**record, "reused": True}
    if "computed" in out:
        out["reused_scores"] = [*out.get("reused_scores", []), *out["computed"]]
        out["computed"] = []
    if "runs" in out:
        out["runs"] = {"trained": 0, "reused": sum(out["runs"].values())}
    if "scores" in out:
        out["scores"] = {"computed": 0, "reused": sum(out["scores"].values())}
    return out


def summary(record: dict) -> str:
    """One line about a finished step, e.g. ``step 3 filter: dropped 40; kept 160/200; 0.1s``."""
    bits = []
    if record.get("reused") is True:
        bits.append("reused")
    for key in ("computed", "reused_scores"):
        if record.get(key):
            bits.append(f"{key.replace('_scores', '')} {', '.join(record[key])}")
    if record.get("runs"):
        bits.append(f"{record['runs']['trained']} runs trained, {record['runs']['reused']} "
                    "reused")
    if "dropped_here" in record:
        bits.append(f"dropped {sum(record['dropped_here'].values())}")
    if record.get("counts"):
        bits.append(f"kept {record['counts']['kept']}/{record['counts']['input']}")
    bits.append(f"{record['seconds']:.1f}s")
    return f"step {record['step']} {record['type']}: {'; '.join(bits)}"


# -- fit ----------------------------------------------------------------------------------
class FitStep(Step):
    """Fit a model-backed scorer on named text datasets and save its model.

    Args:
        scorer: a registered :class:`FittedScorer` name (``fasttext_quality``, ``perplexity``).
        data: the fit's text arguments, e.g. ``{"positive": "good.jsonl", "negative":
            "bad.jsonl"}`` (each a dataset spec).
        save: the model file, relative to the run folder.
        params: keyword arguments of the scorer's ``fit`` (``seed`` defaults to the run's).
    """

    kind = "fit"

    def __init__(self, scorer: str, data: dict, save: str, params: dict | None = None):
        cls = SCORERS.get(scorer)
        if not (isinstance(cls, type) and issubclass(cls, FittedScorer)):
            raise CurateError(f"scorer {scorer!r} has no fit step (it is not model-backed)")
        if not isinstance(data, dict) or not data:
            raise CurateError(f"fit {scorer}: data must map the fit's arguments to datasets")
        self.scorer, self.cls, self.data, self.save = scorer, cls, dict(data), save
        self.params = dict(params or {})
        known = accepted(cls.fit)
        for key in [*self.data, *self.params]:
            if key not in known:
                raise CurateError(f"fit {scorer}: unknown argument {key!r}; fit takes: "
                                  f"{', '.join(known)}")

    def config(self, ctx):
        return {"scorer": self.scorer, "params": self._params(ctx), "save": self.save,
                "data": {k: ctx.open(ctx.resolve(v)).fingerprint() for k, v in self.data.items()}}

    def _params(self, ctx) -> dict:
        if "seed" in accepted(self.cls.fit) and "seed" not in self.params:
            return {**self.params, "seed": ctx.seed}
        return self.params

    def outputs(self, ctx):
        return [ctx.out / self.save]

    def run(self, ctx):
        texts = {key: _texts(ctx, ctx.resolve(spec)) for key, spec in self.data.items()}
        try:
            scorer = self.cls().fit(**texts, **self._params(ctx))
        except TypeError as exc:
            raise CurateError(f"fit {self.scorer}: bad data or params: {exc}") from None
        target = ctx.out / self.save
        target.parent.mkdir(parents=True, exist_ok=True)
        scorer.save(target)
        return {"outputs": [ctx.rel(target)], "params": self._params(ctx)}


def _texts(ctx: Context, spec: str) -> list[str]:
    source = ctx.open(spec, required_columns=(ctx.text_column,), check_unique_ids=False)
    column = source.read_all([ctx.text_column]).column(ctx.text_column)
    return ["" if t is None else t for t in column.to_pylist()]


# -- score --------------------------------------------------------------------------------
class ScoreStep(Step):
    """Score the source with registered scorers; write a sharded table per scorer,
    ``<folder>/<scorer>/<shard>.parquet`` (see :mod:`curate.scores`).

    Args:
        scorers: ``(name, params)`` pairs or scorer objects. A parameter value that is a
            file produced by an earlier step (a fit step's model) is resolved by
            ``ctx.resolve`` when the step runs.
        folder: where the tables go, relative to the run folder (default ``scores``).
        load: put the tables in ``ctx.scores`` for later steps (default True; ``curate
            score`` has no later steps and leaves them on disk).

    Shards run on ``ctx``'s executor. A shard whose commit holds the same fingerprint
    (source, scorer, parameters, model file hash, shard plan, curate version) is reused,
    so a re-run, or a run resumed after it was killed, computes only what is missing.
    """

    kind = "score"

    def __init__(self, scorers: list, folder: str | Path = "scores", load: bool = True):
        self.specs = [s if isinstance(s, Scorer) else (s[0], dict(s[1])) for s in scorers]
        if not self.specs:
            raise CurateError("a score step needs at least one scorer")
        names = [s.name if isinstance(s, Scorer) else s[0] for s in self.specs]
        if len(set(names)) != len(names):
            raise CurateError(f"a scorer is listed twice: {', '.join(names)}")
        self.folder = Path(folder)
        self.load = load
        for spec in self.specs:  # validate parameters now, before anything runs
            if not isinstance(spec, Scorer):
                name, params = spec
                # A model file may be written by an earlier fit step: check the rest now.
                build(SCORERS, name, {k: v for k, v in params.items() if k != "model"})

    def build(self, ctx) -> list[Scorer]:
        out = []
        for spec in self.specs:
            if isinstance(spec, Scorer):
                out.append(spec.with_text_column(ctx.text_column))
                continue
            name, params = spec
            if isinstance(params.get("model"), str) and issubclass(SCORERS.get(name),
                                                                    FittedScorer):
                params = {**params, "model": ctx.resolve(params["model"])}
            out.append(build(SCORERS, name, params).with_text_column(ctx.text_column))
        return out

    def config(self, ctx):
        # Parameters as written plus model content hashes, never run-folder paths, so that
        # two run folders compare byte for byte.
        return {"scorers": [_scorer_config(s, ctx) for s in self.specs],
                "folder": str(self.folder), "text_column": ctx.text_column,
                "source_options": _plain_options(ctx), "shard_rows": ctx.shard_rows}

    def outputs(self, ctx):
        from curate.scores import TABLE_FILE

        return [self._path(ctx, name) / TABLE_FILE for name in self._names()]

    def _names(self) -> list[str]:
        return [s.name if isinstance(s, Scorer) else s[0] for s in self.specs]

    def _path(self, ctx, name: str) -> Path:
        return ctx.out / self.folder / name

    def run(self, ctx):
        from curate.sharded import score_to_folder

        scorers = self.build(ctx)
        fingerprints, metadata = {}, {}
        for spec, scorer in zip(self.specs, scorers):
            config = _scorer_config(spec, ctx)
            fingerprints[scorer.name] = fingerprint([
                ctx.source_fingerprint(), config, ctx.text_column, _plain_options(ctx),
                curate.__version__])
            metadata[scorer.name] = {"fingerprint": fingerprints[scorer.name],
                                     "scorer": scorer.name, "params": config["params"],
                                     "source_fingerprint": ctx.source_fingerprint()}
            ctx.score_params[scorer.name] = config["params"]
            if ctx.force and self._path(ctx, scorer.name).exists():
                import shutil

                shutil.rmtree(self._path(ctx, scorer.name))
        source = ctx.open()
        with ctx.make_executor() as executor:
            report = score_to_folder(scorers, source, ctx.out / self.folder,
                                     executor=executor, shard_rows=ctx.shard_rows,
                                     batch_size=ctx.batch_size, fingerprints=fingerprints,
                                     metadata=metadata, progress=ctx.progress)
        if self.load:
            self.restore(ctx, None)
        names = self._names()
        return {"computed": [n for n in names if report["computed"][n]],
                "reused_scores": [n for n in names if not report["computed"][n]],
                "shards": {"total": report["shards"],
                           "computed": sum(report["computed"].values()),
                           "reused": sum(report["reused"].values())},
                "skipped_oversize": report["skipped"],
                "outputs": [ctx.rel(self._path(ctx, n)) for n in names]}

    def restore(self, ctx, record):
        from curate.scores import load_scores

        for spec, name in zip(self.specs, self._names()):
            ctx.scores.update(load_scores(self._path(ctx, name)))
            ctx.score_params[name] = _scorer_config(spec, ctx)["params"]


def _plain_options(ctx) -> dict:
    """The source options that change what is read (not callbacks such as ``report``)."""
    return {k: v for k, v in sorted(ctx.source_options.items()) if not callable(v)}


def _scorer_config(spec, ctx) -> dict:
    if isinstance(spec, Scorer):
        name, params = spec.name, spec.params()
    else:
        name, params = spec
    params = dict(params)
    model = params.get("model")
    if isinstance(model, str):
        path = Path(ctx.resolve(model))
        if path.is_file():
            params["model"] = {"file": Path(model).name, "sha": file_hash(path)}
    return {"name": name, "params": params}


# -- filter -------------------------------------------------------------------------------
class FilterStep(Step):
    """Run one filter (registered by name, or a :class:`Filter` object) over the joined
    score tables of the examples kept so far.

    A filter with a ``balance`` label column gets that column joined from the source by id.
    """

    kind = "filter"

    def __init__(self, filter_: Filter | str, params: dict | None = None):
        from curate.core.registry import FILTERS

        self.filter = filter_ if isinstance(filter_, Filter) else build(FILTERS, filter_,
                                                                         params)
        self.kind = "tag" if self.filter.name == "tag" else "filter"

    def config(self, ctx):
        return {"filter": self.filter.name, "params": self.filter.params()}

    def run(self, ctx):
        from curate.core.filter import select
        from filters.labels import join_labels

        joined = ctx.joined()
        balance = getattr(self.filter, "balance", None)
        if balance and balance not in joined.column_names:  # a class-balanced budget
            labels = ctx.open(required_columns=(balance,)).read_all([balance])
            joined = join_labels(joined, labels, balance, ctx.id_column)
        before = ctx.selection if ctx.selection is not None else new_selection(
            joined.column(ctx.id_column), ctx.id_column)
        ctx.selection = select(joined, [self.filter], id_column=ctx.id_column, start=before)
        newly = pc.and_(before.column("keep"), pc.invert(ctx.selection.column("keep")))
        return {"dropped_here": counts(ctx.selection.filter(newly))["dropped_by_reason"],
                "counts": counts(ctx.selection)}

    def restore(self, ctx, record):  # filters are cheap: recompute rather than store
        self.run(ctx)


# -- card ----------------------------------------------------------------------------------
class CardStep(Step):
    """Write the quality card of the scores so far: ``<output>/card.md`` and its plots
    (size, duplicates, languages, keep rates and reasons, score histograms with each
    rule's threshold, correlations). ``title`` defaults to the source's name."""

    kind = "card"

    def __init__(self, output: str = "card", title: str | None = None):
        self.output, self.title = output, title

    def config(self, ctx):
        return {"output": self.output, "title": self.title, "scores": sorted(ctx.scores)}

    def outputs(self, ctx):
        return [ctx.out / self.output / "card.md"]

    def run(self, ctx):
        from curate.card import write_quality_card

        text, source_info = card_inputs(ctx)
        # data without text (e.g. builtin:mnist1d) has no length section
        lengths = None if text is None else pc.utf8_length(text).combine_chunks()
        title = self.title or f"Quality card: {source_info['source']}"
        card = write_quality_card(ctx.joined(), ctx.out / self.output, title=title,
                                  text_lengths=lengths, source_info=source_info,
                                  scorer_params=dict(ctx.score_params))
        return {"outputs": [ctx.rel(card)]}


def card_inputs(ctx: Context) -> tuple[pa.ChunkedArray | None, dict]:
    """What a card reads from the source besides the scores: the text column, one
    string per document in source order with nulls as "" (None when the data has no
    text column), and the facts shown about the source (:meth:`Source.describe` after
    that read, plus the source's fingerprint)."""
    source = ctx.open()
    text = None
    if _has_column(source, ctx.text_column):
        text = pc.fill_null(source.read_all([ctx.text_column]).column(ctx.text_column), "")
    return text, {**source.describe(), "fingerprint": ctx.source_fingerprint()}


def _has_column(source, column: str) -> bool:
    first = next(source.iter_batches(1), None)
    return first is not None and column in first.column_names


# -- apply --------------------------------------------------------------------------------
class ApplyStep(Step):
    """Write the selection and materialise it: kept, rejected and/or every example.

    Args:
        kept, rejected, everything: output files relative to the run folder (at least one).
        tag_as: ``"column"``, ``"prefix"``, ``"none"``, or None (a ``tag`` column when the
            selection has tags; see :class:`curate.materialize.ApplyOptions`).
        tag_format: the prefix format for ``tag_as="prefix"``.
        transform: cleaning scorers (specs such as ``c4_quality`` or objects) whose
            rewritten text replaces the kept text.
        selection: where the selection table is written (default ``selection.parquet``;
            None: not written, as for ``curate apply``, which read it from a file).
    """

    kind = "apply"

    def __init__(self, kept=None, rejected=None, everything=None, tag_as=None,
                 tag_format: str = "<|{tag}|> ", transform=(),
                 selection: str | None = "selection.parquet"):
        self.targets = {k: v for k, v in (("kept", kept), ("rejected", rejected),
                                          ("everything", everything)) if v is not None}
        if not self.targets:
            raise CurateError("an apply step needs kept, rejected or everything")
        self.tag_as, self.tag_format, self.selection_file = tag_as, tag_format, selection
        self.transform = [make_scorer(t) for t in transform]
        from curate.materialize import ApplyOptions

        # Checks tag_as and that every transform rewrites text, before anything runs.
        ApplyOptions(tag_as=tag_as, tag_format=tag_format, transforms=self.transform)

    def config(self, ctx):
        return {"targets": self.targets, "tag_as": self.tag_as, "tag_format": self.tag_format,
                "transform": [t.name for t in self.transform], "selection":
                None if ctx.selection is None else table_hash(ctx.selection)}

    def outputs(self, ctx):
        written = [ctx.out / t for t in self.targets.values()]
        return written if self.selection_file is None else [ctx.out / self.selection_file,
                                                            *written]

    def run(self, ctx):
        from curate.io import write_table
        from curate.materialize import ApplyOptions, write_applied

        if ctx.selection is None:
            raise CurateError("an apply step needs a filter or tag step before it")
        if self.selection_file is not None:
            write_table(ctx.selection, ctx.out / self.selection_file)
        targets = {k: ctx.out / v for k, v in self.targets.items()}
        transforms = [t.with_text_column(ctx.text_column) for t in self.transform]

        def options(everything: bool) -> ApplyOptions:
            return ApplyOptions(text_column=ctx.text_column, tag_as=self.tag_as,
                                tag_format=self.tag_format, everything=everything,
                                transforms=transforms)

        # Kept and rejected come from one pass over the data; "everything" needs its own.
        rows = write_applied(ctx.open(), ctx.selection, options(False),
                             kept=targets.get("kept"), rejected=targets.get("rejected"))
        if "everything" in targets:
            rows["everything"] = write_applied(ctx.open(), ctx.selection, options(True),
                                               kept=targets["everything"])["kept"]
        return {"counts": counts(ctx.selection),
                "outputs": {k: {"path": ctx.rel(p), "rows": rows[k], "sha": file_hash(p)}
                            for k, p in targets.items()}}


# -- experiment ---------------------------------------------------------------------------
class ExperimentStep(Step):
    """Run a registered experiment (``prune-sweep``, ``curriculum``, ``lottery``, ...) on the
    source, with the score tables and selection of the steps before it.

    Args:
        kind: the registered experiment name.
        test: the test dataset spec.
        train: the fields of the experiment's training config
            (:func:`curate.experiment.train_config_for`: a
            :class:`curate.train.TrainConfig`, or an :class:`curate.train.lm.LMConfig` for
            the language-model experiments).
        seeds: training seeds (an int n means ``0..n-1``).
        output: the output folder, relative to the run folder (default: ``kind``).
        params: the experiment's own keyword parameters.

    The experiment caches its runs in its output folder, so a re-run retrains only what
    changed; the record counts trained and reused runs.
    """

    kind = "experiment"

    def __init__(self, kind: str, test: str, train: dict, seeds=3, output: str | None = None,
                 params: dict | None = None):
        from curate.experiment import train_config_for

        self.experiment, self.fn = kind, EXPERIMENTS.get(kind)
        self.test, self.seeds, self.output = test, seeds, output or kind
        self.params = dict(params or {})
        self.result = None
        try:
            self.train = train_config_for(self.fn, train)
        except (TypeError, CurateError) as exc:
            raise CurateError(f"experiment {kind}: train: {exc}") from None

    def config(self, ctx):
        return {"experiment": self.experiment, "test": ctx.open(ctx.resolve(self.test))
                .fingerprint(), "train": dataclasses.asdict(self.train), "seeds": self.seeds,
                "output": self.output, "params": self.params,
                "scores": sorted(ctx.scores), "selection": None if ctx.selection is None
                else table_hash(ctx.selection)}

    def outputs(self, ctx):
        return [ctx.out / self.output / "report.md"]

    def run(self, ctx):
        seeds = list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)
        if ctx.id_column != "id":
            raise CurateError(f"experiment {self.experiment}: experiments need the id column "
                              f"to be named 'id', not {ctx.id_column!r}")
        # The data as the recipe reads it (its size limit and options); the test data too.
        result = self.result = self.fn(
            ctx.open(), ctx.open(ctx.resolve(self.test)), train_config=self.train, seeds=seeds,
            out_dir=ctx.out / self.output, workers=ctx.workers, progress=ctx.progress,
            scores=dict(ctx.scores) or None, selection=ctx.selection, **self.params)
        return {"runs": {"trained": result.trained, "reused": result.reused},
                "scores": {"computed": result.scores_computed,
                           "reused": result.scores_reused},
                "outputs": [ctx.rel(ctx.out / self.output / "report.md")]}

