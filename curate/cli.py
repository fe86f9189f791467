"""The ``curate`` command line.

Heavy modules are imported inside commands so that ``curate --help`` is fast. A
:class:`CurateError` (bad input) is printed as one line and exits with status 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from curate.core.errors import CurateError
from curate.io import DEFAULT_MAX_DOC_BYTES
from curate.io.shards import DEFAULT_SHARD_ROWS

_data_options = [
    click.option("--id-column", default="id", show_default=True,
                 help="Id column; positions are used when the data has none."),
    click.option("--text-column", default="text", show_default=True, help="Text column."),
    click.option("--max-doc-bytes", type=int, default=DEFAULT_MAX_DOC_BYTES, show_default=True,
                 help="Limit on a document's text, in bytes of UTF-8 (0: no limit)."),
    click.option("--on-oversize", type=click.Choice(["error", "skip"]), default="error",
                 show_default=True,
                 help="A document over --max-doc-bytes stops the run (error) or is left out "
                 "and counted (skip)."),
]


def data_options(fn):
    for option in reversed(_data_options):
        fn = option(fn)
    return fn


def _progress() -> bool:
    return sys.stderr.isatty()


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="curate")
@click.option("--plugin", "plugins", multiple=True, metavar="MODULE",
              help="Import MODULE first so that the scorers and filters it registers can be "
              "used (repeatable). Installed plugins register through entry points.")
def cli(plugins):
    """Score, filter, tag and write training data, reproducibly.

    \b
    curate run recipes/quickstart.yaml
    curate score docs.jsonl --scorer gopher_quality --scorer c4_quality -o scores/
    curate filter scores/ --rules gopher_quality --where "c4_quality_keep" -o sel.parquet
    curate apply docs.jsonl --selection sel.parquet -o kept.jsonl.gz --rejected rej.jsonl.gz
    curate scorers          # every scorer with its parameters
    """
    from curate.core.registry import load_plugins

    load_plugins(plugins)


def _context(data, out, *, id_column="id", text_column="text", workers=1, batch_size=None,
             **source_options):
    from curate.steps import Context

    meta = click.get_current_context().meta
    return Context(source=data, out=Path(out), text_column=text_column, workers=workers,
                   batch_size=batch_size, progress=_progress(),
                   executor=meta.get("executor", "local"), address=meta.get("address"),
                   shard_rows=meta.get("shard_rows") or DEFAULT_SHARD_ROWS,
                   source_options={"id_column": id_column, **source_options})


def _remember(ctx, param, value):
    ctx.meta[param.name] = value
    return value


def executor_options(command):
    """``--executor``, ``--address`` and ``--shard-rows``: where a command's shards, seeds
    and cells run (kept in the click context for :func:`_context`)."""
    for option in reversed([
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
                     show_default=True, expose_value=False, callback=_remember,
                     help="Run shards, seeds and cells here (local) or on Ray."),
        click.option("--address", expose_value=False, callback=_remember,
                     help="With --executor ray: the cluster to join (e.g. HOST:6379); "
                     "without it a local Ray instance runs for the command."),
        click.option("--shard-rows", type=click.IntRange(min=1), expose_value=False,
                     callback=_remember,
                     help=f"Rows per shard (default {DEFAULT_SHARD_ROWS:,}).")]):
        command = option(command)
    return command


@cli.command()
@click.argument("data")
@click.option("--scorer", "-s", "scorers", multiple=True, required=True,
              help="NAME or NAME:key=value,key=value; lists as key=a;b;c (repeatable; "
              "`curate scorers` lists every scorer's parameters).")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Folder for <scorer>.parquet score tables.")
@click.option("--workers", "-j", default=1, show_default=True,
              help="Processes (0: one per CPU); with --executor ray, at most this many "
              "actors when above 1 (default: the cluster's CPUs less one).")
@click.option("--batch-size", type=int, default=None, help="Examples per batch.")
@click.option("--single-file", is_flag=True,
              help="Also merge each table into one file, OUTPUT/<scorer>.parquet.")
@executor_options
@data_options
def score(data, scorers, output, workers, batch_size, single_file, id_column, text_column,
          max_doc_bytes, on_oversize):
    """Score DATA with one or more scorers; write a sharded table per scorer,
    OUTPUT/<scorer>/<shard>.parquet.

    Each shard is committed as it finishes: a run that is stopped (Ctrl-C, kill, a lost
    node) and started again with the same arguments scores only the shards left.

    \b
    curate score docs.jsonl.gz -s gopher_quality -s gopher_repetition -o scores/
    curate score 'shards/*.parquet' -s minhash:ngram=5,bands=16 -s langid -j 2 -o scores/
    curate score docs.jsonl -s fasttext_quality:model=quality.bin -o scores/
    curate score 'web/*.jsonl.gz' -s gopher_quality --executor ray --address HEAD:6379 \\
        -o /shared/scores/
    """
    from curate.core.registry import make_scorer
    from curate.scores import merge_scores
    from curate.steps import ScoreStep

    ctx = _context(data, output, id_column=id_column, text_column=text_column,
                   workers=workers, batch_size=batch_size, max_doc_bytes=max_doc_bytes,
                   on_oversize=on_oversize, report=click.echo)
    step = ScoreStep([make_scorer(spec) for spec in scorers], folder=".", load=False)
    record = step.run(ctx)
    shards = record["shards"]
    click.echo(f"{shards['total']} shards: {shards['computed']} scored, {shards['reused']} "
               "already done (scorer x shard)")
    for name in step._names():
        folder = Path(output) / name
        if single_file:
            click.echo(f"wrote {merge_scores(folder, Path(output) / f'{name}.parquet')}")
        else:
            click.echo(f"wrote {folder}/")


@cli.command(name="filter")
@click.argument("scores", nargs=-1, required=True)
@click.option("--rules", "rules", multiple=True,
              help="Drop what this rule set (scorer with <name>_keep) rejects (repeatable).")
@click.option("--where", "wheres", multiple=True, help="SQL predicate to keep (repeatable).")
@click.option("--keep", "fraction", type=float, help="Fraction to keep by --by.")
@click.option("--by", help="Score column for --keep.")
@click.option("--lowest", is_flag=True, help="With --keep: keep the lowest scores, not highest.")
@click.option("--random", "random_fraction", type=float, help="Keep a random fraction.")
@click.option("--seed", default=0, show_default=True, help="Seed for --random.")
@click.option("--tag", "tags", nargs=2, multiple=True, metavar="TAG PREDICATE",
              help="Tag examples matching PREDICATE (first match wins; repeatable).")
@click.option("--step", "specs", multiple=True, metavar="NAME:key=value,...",
              help="Any registered filter with its parameters, e.g. ccs:by=el2n,fraction=0.3 "
              "or curriculum:by=aum (repeatable; `curate filters` lists them).")
@click.option("--data", help="The dataset, for filters that need its columns (balance=label).")
@click.option("--id-column", help="Id column (default: the score tables' first column).")
@click.option("--output", "-o", required=True, help="Selection file (.parquet).")
def filter_cmd(scores, rules, wheres, fraction, by, lowest, random_fraction, seed, tags,
               specs, data, id_column, output):
    """Select examples from score tables (files or folders); write a selection.

    Steps run in this order: --rules, --where, --keep/--by, --random, --step, --tag;
    each sees only what the previous ones kept.

    \b
    curate filter scores/ --rules gopher_quality --rules c4_quality -o sel.parquet
    curate filter scores/ --where "fasttext_quality_hq > 0.5" -o sel.parquet
    curate filter scores/ --keep 0.5 --by fasttext_quality_hq -o sel.parquet
    curate filter scores/ --step ccs:by=el2n,fraction=0.3,balance=label --data d.parquet \\
        -o sel.parquet
    curate filter scores/ --tag non_en "langid_language <> 'en'" -o sel.parquet
    """
    from curate.core.registry import parse_spec
    from curate.core.tables import counts
    from curate.io import write_table
    from curate.scores import load_scores
    from curate.steps import FilterStep

    steps = [FilterStep("rules", {"scorers": list(rules)})] if rules else []
    steps += [FilterStep("where", {"predicate": w}) for w in wheres]
    if (fraction is None) != (by is None):
        raise CurateError("--keep and --by go together")
    if fraction is not None:
        steps.append(FilterStep("keep_fraction", {"by": by, "fraction": fraction,
                                                  "keep": "bottom" if lowest else "top"}))
    if random_fraction is not None:
        steps.append(FilterStep("random", {"fraction": random_fraction, "seed": seed}))
    steps += [FilterStep(*parse_spec(spec, "filter")) for spec in specs]
    if tags:
        steps.append(FilterStep("tag", {"rules": list(tags)}))
    if not steps:
        raise CurateError("give at least one of --rules, --where, --keep, --random, --step, "
                          "--tag")
    from curate.scores import id_column_of

    tables = load_scores(scores)
    ctx = _context(data, ".", id_column=id_column_of(tables, id_column))
    ctx.scores = tables
    if data is None and any(getattr(s.filter, "balance", None) for s in steps):
        raise CurateError("a class-balanced filter (balance=...) needs --data to read labels")
    for step in steps:
        step.run(ctx)
    write_table(ctx.selection, output)
    c = counts(ctx.selection)
    click.echo(f"kept {c['kept']} of {c['input']}; wrote {output}")
    for reason, n in c["dropped_by_reason"].items():
        click.echo(f"  dropped {n}: {reason}")


def _print_components(kind: str) -> None:
    from curate.core import registry

    for name, obj in getattr(registry, kind.upper()).items():
        doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
        click.echo(name + (f"  {doc[0]}" if doc else ""))
        for p in registry.describe(obj):
            default = "required" if p["required"] else f"default {p['default']!r}"
            click.echo(f"    {p['name']}" + (f" ({p['type']})" if p["type"] else "") +
                       f": {default}")


@cli.command()
def scorers():
    """List every registered scorer with its parameters, types and defaults.

    Give parameters as NAME:key=value,key=value; list values as key=a;b;c.
    """
    _print_components("scorers")


@cli.command(name="filters")
def filters_cmd():
    """List every registered filter with its parameters, types and defaults."""
    _print_components("filters")


@cli.command()
@click.argument("data")
@click.option("--selection", required=True, help="Selection file from `curate filter`.")
@click.option("--output", "-o", required=True, help="Kept examples (.jsonl[.gz], .parquet, .csv).")
@click.option("--rejected", help="Also write the dropped examples with a `reason` column.")
@click.option("--all", "everything", is_flag=True,
              help="Write every example with keep/reason columns instead of only the kept.")
@click.option("--tag-as", type=click.Choice(["column", "prefix", "none"]),
              help="How to write tags: a `tag` column (the default when the selection has "
              "tags), a text prefix (control token), or none.")
@click.option("--tag-format", default="<|{tag}|> ", show_default=True,
              help="Prefix format for --tag-as prefix.")
@click.option("--clean", "transforms", multiple=True,
              help="Rewrite kept text with a cleaning scorer (e.g. c4_quality).")
@data_options
def apply(data, selection, output, rejected, everything, tag_as, tag_format, transforms,
          id_column, text_column, max_doc_bytes, on_oversize):
    """Write the examples of DATA that a selection keeps (and, optionally, the rest).

    \b
    curate apply docs.jsonl --selection sel.parquet -o kept.jsonl.gz --rejected rej.jsonl.gz
    curate apply docs.jsonl --selection sel.parquet -o tagged.parquet --all --tag-as column
    curate apply docs.jsonl --selection sel.parquet -o clean.jsonl --clean c4_quality
    """
    import pyarrow.parquet as pq

    from curate.core.tables import validate_selection
    from curate.steps import ApplyStep

    if not Path(selection).is_file():
        raise CurateError(f"{selection}: no such selection file (write one with curate filter)")
    try:
        sel = validate_selection(pq.read_table(selection), id_column)
    except (OSError, ValueError) as exc:
        raise CurateError(f"{selection}: not a readable selection (Parquet): {exc}") from None
    targets = {"everything" if everything else "kept": output, "rejected": rejected}
    step = ApplyStep(**targets, tag_as=tag_as, tag_format=tag_format, transform=transforms,
                     selection=None)
    ctx = _context(data, ".", id_column=id_column, text_column=text_column,
                   max_doc_bytes=max_doc_bytes, on_oversize=on_oversize, report=click.echo)
    ctx.selection = sel
    written = step.run(ctx)["outputs"]
    for key, what in (("kept", "examples"), ("everything", "examples"),
                      ("rejected", "rejected examples")):
        if key in written:
            click.echo(f"wrote {written[key]['rows']} {what} to {written[key]['path']}")


@cli.command()
@click.argument("recipe", type=click.Path(dir_okay=False))
@click.option("--out", type=click.Path(file_okay=False),
              help="Run folder (default: runs/<recipe name>).")
@click.option("--workers", "-j", type=int, help="Processes (overrides the recipe).")
@click.option("--force", is_flag=True, help="Recompute every step instead of reusing.")
@click.option("--executor", type=click.Choice(["local", "ray"]),
              help="Where shards, seeds and cells run (overrides the recipe).")
@click.option("--address", help="With --executor ray: the cluster to join.")
def run(recipe, out, workers, force, executor, address):
    """Validate and run a YAML recipe; reuse finished steps; write a manifest.

    \b
    curate run recipes/quickstart.yaml
    curate run my-recipe.yaml --out runs/try2 --force
    """
    from curate.recipe import RecipeRun

    runner = RecipeRun(recipe, out, workers=workers, force=force, progress=_progress(),
                       log=click.echo, executor=executor, address=address)
    manifest = runner.run()
    click.echo(f"done in {manifest['total_seconds']:.1f}s; manifest: "
               f"{runner.out / 'manifest.json'}")


@cli.command()
@click.argument("scores")
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True)
@click.option("--id-column", help="Id column (default: the score tables' first column).")
def sql(scores, query, fmt, id_column):
    """Run SQL over score tables: one view per scorer plus `scores`, their join.

    DuckDB runs with external access disabled: the query sees the score tables only.

    \b
    curate sql scores/ "SELECT gopher_quality_reason, count(*) FROM scores GROUP BY 1"
    curate sql scores/ "SELECT id FROM scores WHERE minhash_duplicate" --format csv
    """
    from curate.core.tables import join_scores
    from curate.scores import id_column_of, load_scores
    from curate.sql import query as run_query

    tables = load_scores(scores)
    result = run_query(tables, query, join_scores(tables, id_column_of(tables, id_column)))
    if fmt == "csv":
        import pyarrow.csv as pcsv

        sink = __import__("io").BytesIO()
        pcsv.write_csv(result, sink)
        click.echo(sink.getvalue().decode(), nl=False)
    elif fmt == "json":
        from curate.sql import json_lines

        click.echo(json_lines(result), nl=False)
    else:
        from curate.sql import format_table

        click.echo(format_table(result, max_rows=200))


DEFAULT_INSPECT = ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality",
                   "exact_dup", "langid")


@cli.command()
@click.argument("data")
@click.option("--scores", "score_paths", multiple=True,
              help="Existing score tables (files or folders); default: score now.")
@click.option("--scorer", "-s", "scorers", multiple=True,
              help=f"Scorers to run when no --scores (default: {', '.join(DEFAULT_INSPECT)}).")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False),
              help="Folder for card.md and its plots.")
@click.option("--workers", "-j", default=1, show_default=True)
@click.option("--against", metavar="DATA_B",
              help="A second dataset: score both with the same scorers and write one card "
              "comparing them side by side.")
@click.option("--labels", metavar="A,B",
              help="With --against: the two datasets' names on the card (default: their file "
              "names).")
@data_options
def inspect(data, score_paths, scorers, output, workers, against, labels, id_column,
            text_column, max_doc_bytes, on_oversize):
    """Write a dataset quality card: size, duplicates, languages, keep rates, scores.

    Scores computed here are kept in OUTPUT/scores/ (reuse them with --scores). With
    --against, DATA and DATA_B are both scored (OUTPUT/scores/a, OUTPUT/scores/b) and
    the card puts them side by side with their difference.

    \b
    curate inspect docs.jsonl.gz -o card/
    curate inspect docs.jsonl.gz --scores runs/quickstart/scores -o card/
    curate inspect pool.jsonl.gz --against kept.jsonl.gz --labels pool,kept -o compare/
    """
    from curate.card import score_file_params
    from curate.core.registry import make_scorer
    from curate.scores import load_scores
    from curate.steps import CardStep, ScoreStep

    options = {"id_column": id_column, "text_column": text_column, "workers": workers,
               "max_doc_bytes": max_doc_bytes, "on_oversize": on_oversize,
               "report": click.echo}
    ctx = _context(data, output, **options)
    if against is not None:
        from curate.compare_card import side_labels, write_comparison_card
        from curate.steps import card_inputs

        if score_paths:
            raise CurateError("--against scores both datasets: leave out --scores")
        names = side_labels(data, against, labels)
        sides = [ctx, _context(against, output, **options)]
        for side in sides:  # a missing or empty dataset fails before anything is scored
            next(side.open().iter_batches(1), None)
        for side, folder in zip(sides, ("scores/a", "scores/b"), strict=True):
            side.force = True
            ScoreStep([make_scorer(s) for s in (scorers or DEFAULT_INSPECT)], folder).run(side)
        (text_a, info_a), (text_b, info_b) = (card_inputs(side) for side in sides)
        card = write_comparison_card(ctx.joined(), sides[1].joined(), output, labels=names,
                                     texts=(text_a, text_b), source_info=(info_a, info_b),
                                     scorer_params=dict(ctx.score_params))
        click.echo(f"wrote {card}")
        return
    if labels is not None:
        raise CurateError("--labels names the two sides of --against: give --against too")
    if score_paths:
        ctx.scores, ctx.score_params = load_scores(score_paths), score_file_params(score_paths)
    else:  # score now; the tables are kept beside the card for --scores next time
        ctx.force = True
        ScoreStep([make_scorer(s) for s in (scorers or DEFAULT_INSPECT)], "scores").run(ctx)
    CardStep(".", title=f"Quality card: {data}").run(ctx)
    click.echo(f"wrote {Path(output) / 'card.md'}")


@cli.group()
def experiment():
    """Run training experiments over curated subsets, over seeds, with intervals."""


def _experiment_options(command):
    """The test data, model, optimizer, seeds, workers and output shared by the
    experiment and ticket commands."""
    for option in reversed([
        click.option("--test", "test_data", required=True,
                     help="Test dataset, e.g. builtin:NAME:split=test."),
        click.option("--model", default="mlp", show_default=True, help="Model-zoo name."),
        click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="sgd",
                     show_default=True),
        click.option("--lr", type=float, default=0.1, show_default=True),
        click.option("--batch-size", type=int, default=128, show_default=True),
        click.option("--seeds", default=3, show_default=True, help="Training seeds per cell."),
        click.option("--workers", "-j", default=1, show_default=True,
                     help="Processes for the runs."),
        click.option("--output", "-o", required=True, type=click.Path(file_okay=False))]):
        command = option(command)
    return executor_options(command)


@experiment.command(name="prune-sweep")
@click.argument("data")
@click.option("--method", "methods", multiple=True, required=True,
              help="random, rs2, SCORE-easy|hard|middle, or SCORE-ccs (repeatable).")
@click.option("--fraction", "fractions", type=float, multiple=True, required=True,
              help="Kept fraction (repeatable).")
@click.option("--score-seeds", type=int, help="Seeds the difficulty scores average over.")
@click.option("--budget", type=click.Choice(["same-steps", "same-epochs"]), default="same-steps",
              show_default=True)
@click.option("--epochs", type=int, help="Epochs of the full-data run (or --steps).")
@click.option("--steps", type=int, help="Optimizer steps of the full-data run.")
@_experiment_options
def prune_sweep_cmd(data, test_data, methods, fractions, seeds, score_seeds, budget, model,
                    epochs, steps, optimizer, lr, batch_size, workers, output):
    """Accuracy of models trained on score-selected subsets against random and full data.

    Writes results.parquet/.csv (one row per run), summary.csv (mean and 95% interval per
    method and fraction), accuracy_vs_fraction.png and report.md. Scores and finished
    runs are cached in the output folder and reused on a re-run.

    \b
    curate experiment prune-sweep builtin:mnist1d --test builtin:mnist1d:split=test \\
        --method random --method el2n-hard --method el2n-easy --method el2n-ccs \\
        --fraction 0.1 --fraction 0.3 --fraction 0.5 --seeds 3 --model cnn1d --epochs 30 -o sweep/
    """
    if (epochs is None) == (steps is None):
        raise CurateError("give exactly one of --epochs and --steps (the full-data budget)")
    _run_experiment("prune-sweep", data, test_data, output, seeds, workers,
                    {"model": model, "optimizer": optimizer, "lr": lr, "batch_size": batch_size,
                     "epochs": epochs, "steps": steps},
                    {"methods": list(methods), "fractions": list(fractions), "budget": budget,
                     "score_seeds": score_seeds})


@experiment.command(name="curriculum")
@click.argument("data")
@click.option("--score", "score_spec", required=True,
              help="Scorer that orders the examples, as NAME[:key=value,...].")
@click.option("--lower-is-harder", is_flag=True, help="Low scores are hard (e.g. aum).")
@click.option("--ordering", "orderings", multiple=True,
              type=click.Choice(["easy_to_hard", "hard_to_easy", "random"]),
              help="Orderings to compare (repeatable; default all three).")
@click.option("--pacing", "pacings", multiple=True, help="Pacing function (repeatable; "
              "default linear): linear, quadratic, root, step, exponential, logarithmic.")
@click.option("--budget", "budgets", type=int, multiple=True, required=True,
              help="Optimizer steps per run (repeatable).")
@click.option("--start", type=float, default=0.1, show_default=True,
              help="Fraction of the data available at step 0.")
@click.option("--full-at", type=float, default=0.8, show_default=True,
              help="Fraction of the budget at which all data is in.")
@_experiment_options
def curriculum_cmd(data, test_data, score_spec, lower_is_harder, orderings, pacings, budgets,
                   start, full_at, model, optimizer, lr, batch_size, seeds, workers, output):
    """Paced curricula (orderings x pacings x budgets x seeds) against standard training.

    Writes results.parquet/.csv, curves.csv, summary.csv, comparisons.csv (easy-to-hard
    minus the random ordering and minus standard training, paired by seed),
    accuracy_vs_steps.png and report.md; scores and runs are cached in the output folder.

    \b
    curate experiment curriculum builtin:mnist1d:noise=0.2 \\
        --test builtin:mnist1d:split=test --score el2n:model=cnn1d,epoch=5,seeds=5 \\
        --pacing linear --budget 300 --budget 3000 --model cnn1d --optimizer adam \\
        --lr 0.01 --batch-size 100 -o curriculum/
    """
    params = {"score": score_spec, "budgets": list(budgets), "start": start,
              "full_at": full_at, "orderings": list(orderings) or
              ["easy_to_hard", "hard_to_easy", "random"], "pacings": list(pacings) or ["linear"]}
    if lower_is_harder:
        params["higher_is_harder"] = False
    _run_experiment("curriculum", data, test_data, output, seeds, workers,
                    {"model": model, "optimizer": optimizer, "lr": lr, "batch_size": batch_size,
                     "steps": max(budgets)}, params)


def _run_experiment(kind, data, test_data, output, seeds, workers, train, params,
                    selection=None, score_paths=()):
    """Build and run the experiment step that a recipe's ``experiment:`` would (on the
    selection file ``selection`` and the score tables at ``score_paths``, when given); print
    where its report is. Returns the experiment's result."""
    from curate.experiment import check
    from curate.steps import ExperimentStep

    check(kind, params, selection=selection is not None)
    step = ExperimentStep(kind, test_data, train, seeds=seeds, output=".", params=params)
    ctx = _context(data, output, workers=workers)
    ctx.make_executor()
    if selection is not None:
        from curate.experiment.methods import read_selection

        ctx.selection = read_selection(selection, None, f"--selection {selection}")
    if score_paths:
        from curate.scores import load_scores

        ctx.scores = load_scores(score_paths)
    with ctx.executor:
        record = step.run(ctx)
    runs = record["runs"]
    click.echo(f"{runs['trained']} runs trained, {runs['reused']} reused, in "
               f"{step.result.seconds:.1f}s; report: {Path(output) / 'report.md'}")
    return step.result


def _lm_options(command):
    """The held-out data, model, budget, tokenizer, seeds, workers and output shared by the
    language-model experiments."""
    for option in reversed([
        click.option("--test", "test_data", required=True,
                     help="Held-out documents, grouped into slices by their slice column."),
        click.option("--tokens", type=int, required=True,
                     help="Training tokens per run (the same for every arm)."),
        click.option("--size", default="xs", show_default=True,
                     help="GPT size: xs (0.46M), s (3.3M) or m (10.8M parameters)."),
        click.option("--context", type=int, default=256, show_default=True),
        click.option("--batch-size", type=int, default=16, show_default=True),
        click.option("--lr", type=float, default=2e-3, show_default=True),
        click.option("--eval-every", type=int, help="Steps between held-out evaluations."),
        click.option("--eval-tokens", type=int,
                     help="Held-out tokens evaluated per slice (default: all)."),
        click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]),
                     default="auto", show_default=True),
        click.option("--compile", "compiled", is_flag=True, help="torch.compile the model."),
        click.option("--device", default="cpu", show_default=True,
                     help="cpu, cuda, cuda:N or auto."),
        click.option("--tokenizer", default="bytes", show_default=True,
                     help="bytes, bpe:VOCAB (trained on the training data) or a "
                     "tokenizer.json."),
        click.option("--seeds", default=3, show_default=True, help="Training seeds per arm."),
        click.option("--workers", "-j", default=1, show_default=True,
                     help="Processes for the runs (one torch thread each)."),
        click.option("--output", "-o", required=True, type=click.Path(file_okay=False))]):
        command = option(command)
    return executor_options(command)


def _lm_config(tokens, size, context, batch_size, lr, eval_every, eval_tokens, precision,
               compiled, device) -> dict:
    return {"model_params": {"size": size}, "tokens": tokens, "context": context,
            "batch_size": batch_size, "lr": lr, "eval_every": eval_every,
            "eval_tokens": eval_tokens, "precision": precision, "compile": compiled,
            "device": device}


@experiment.command(name="text-ablation")
@click.argument("data")
@click.option("--pool", "pools", multiple=True,
              help="all, selection, random, or NAME=SELECTION.parquet (repeatable; default "
              "all, selection and random with --selection, else all).")
@click.option("--selection", type=click.Path(dir_okay=False),
              help="The filtered selection (e.g. a curate filter output) for the selection "
              "and random pools.")
@click.option("--samples", type=int, default=0, show_default=True,
              help="Texts each model writes into generations.parquet (score them with "
              "curate score).")
@_lm_options
def text_ablation_cmd(data, pools, selection, samples, test_data, seeds, workers, output,
                      tokenizer, **lm):
    """A small GPT trained on each text pool for the same tokens, over seeds: held-out bits
    per byte per slice, paired differences against all data, curves and report.md.

    \b
    curate filter docs.parquet --scores scores/ --where gopher_quality_keep -o sel.parquet
    curate experiment text-ablation docs.parquet --test heldout.parquet \\
        --selection sel.parquet --tokens 2000000 --seeds 3 -j 2 -o ablation/
    """
    chosen = list(pools) or (["all", "selection", "random"] if selection else ["all"])
    specs = []
    for pool in chosen:
        name, sep, path = pool.partition("=")
        specs.append({"name": name, "selection": path} if sep else pool)
    _run_experiment("text-ablation", data, test_data, output, seeds, workers, _lm_config(**lm),
                    {"pools": specs, "tokenizer": tokenizer, "samples": samples},
                    selection=selection)


@experiment.command(name="conditional-training")
@click.argument("data")
@click.option("--score", "score_spec", required=True,
              help="Scorer of segments and generations, NAME[:key=value,...].")
@click.option("--tag", "tags", multiple=True, required=True,
              help="TAG=SQL predicate over the scores, e.g. \"good=langid_language = 'en'\" "
              "(repeatable, first match wins).")
@click.option("--default", "default_tag", default="bad", show_default=True,
              help="Tag when no rule matches.")
@click.option("--good", default="good", show_default=True, help="The wanted tag.")
@click.option("--segment", type=click.Choice(["paragraph", "line", "document"]),
              default="paragraph", show_default=True)
@click.option("--samples", type=int, default=64, show_default=True,
              help="Generations per run.")
@click.option("--max-new-tokens", type=int, default=256, show_default=True)
@click.option("--temperature", type=float, default=1.0, show_default=True)
@click.option("--top-k", type=int)
@_lm_options
def conditional_cmd(data, score_spec, tags, default_tag, good, segment, samples,
                    max_new_tokens, temperature, top_k, test_data, seeds, workers, output,
                    tokenizer, **lm):
    """Tag, don't drop: control tokens from tag rules against plain and filtered training;
    the unwanted rate of generations and held-out bits per byte, paired by seed.

    \b
    curate experiment conditional-training docs.parquet --test heldout.parquet \\
        --score langid --tag "good=langid_language = 'en'" --tokens 2000000 -o cond/
    """
    rules = [dict(zip(("tag", "when"), _named_predicate("--tag", tag, "TAG")))
             for tag in tags]
    _run_experiment("conditional-training", data, test_data, output, seeds, workers,
                    _lm_config(**lm),
                    {"score": score_spec, "tags": rules, "default": default_tag, "good": good,
                     "segment": segment, "samples": samples, "max_new_tokens": max_new_tokens,
                     "temperature": temperature, "top_k": top_k, "tokenizer": tokenizer})


def _named_predicate(option: str, value: str, label: str) -> tuple[str, str]:
    """``(name, predicate)`` of an option given as ``NAME=SQL predicate``."""
    name, sep, predicate = value.partition("=")
    if not sep or not name or not predicate:
        raise CurateError(f"{option} {value!r}: expected {label}=SQL predicate")
    return name, predicate


@experiment.command(name="repetition")
@click.argument("data")
@click.option("--test", "test_data", required=True,
              help="Held-out data: documents grouped by their slice column, or test examples.")
@click.option("--tokens", type=int, help="Training tokens per run: a language model.")
@click.option("--steps", type=int, help="Optimizer steps per run: a classifier.")
@click.option("--epochs", "epoch_grid", default="1,2,4,8,16,32,64", show_default=True,
              help="Passes over the unique pool, comma-separated (must include 1).")
@click.option("--pool", "pools", multiple=True,
              help="NAME=SQL predicate over the data's columns and --scores (repeatable; "
              "default: all the data).")
@click.option("--mix", "mixes", multiple=True,
              help="NAME=POOL:SHARE,POOL:SHARE: unique pools made of those shares of "
              "--pool pools (repeatable).")
@click.option("--compare", "pairs", multiple=True,
              help="A,B: difference of two pools' R* and loss rise (POOL@SLICE picks a "
              "held-out slice; repeatable).")
@click.option("--scores", "score_paths", multiple=True, type=click.Path(exists=True),
              help="Score tables or folders for --pool predicates.")
@click.option("--tolerance", type=float, default=0.01, show_default=True,
              help="Relative loss increase still counted as 'as good as unique data'.")
@click.option("--no-calibration", is_flag=True,
              help="Skip the single-epoch runs (then R* is not fitted).")
@click.option("--pool-seed", type=int,
              help="Draw the nested pools once from this seed (default: anew per seed).")
@click.option("--model", help="Zoo name (default: gpt with --tokens, mlp with --steps).")
@click.option("--size", help="GPT size preset: xs, s or m.")
@click.option("--model-param", "model_params", multiple=True,
              help="KEY=VALUE for the model (repeatable), e.g. n_layer=2.")
@click.option("--context", type=int, default=256, show_default=True,
              help="Language model context.")
@click.option("--batch-size", type=int, help="Default: 16 (language model), 128.")
@click.option("--lr", type=float, help="Default: 2e-3 (language model, AdamW), 0.1 (SGD).")
@click.option("--optimizer", type=click.Choice(["sgd", "adam"]), default="sgd",
              show_default=True, help="Classifier optimizer.")
@click.option("--eval-tokens", type=int, help="Held-out tokens evaluated per slice.")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16"]), default="auto",
              show_default=True)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:N or auto.")
@click.option("--tokenizer", default="bytes", show_default=True,
              help="bytes, bpe:VOCAB or a tokenizer.json.")
@click.option("--seeds", default=3, show_default=True, help="Training seeds per point.")
@click.option("--workers", "-j", default=1, show_default=True,
              help="Processes for the runs (one torch thread each).")
@click.option("--output", "-o", required=True, type=click.Path(file_okay=False))
@executor_options
def repetition_cmd(data, test_data, tokens, steps, epoch_grid, pools, mixes, pairs,
                   score_paths, tolerance, no_calibration, pool_seed, model, size,
                   model_params, context, batch_size, lr, optimizer, eval_tokens, precision,
                   device, tokenizer, seeds, workers, output):
    """Loss against epochs at a fixed budget over nested unique pools, over seeds: the fit
    of R* (Muennighoff et al. 2023) and the epochs within a tolerance of unique data.

    \b
    curate experiment repetition builtin:mnist1d:n_train=64000,n_test=4000 \\
        --test builtin:mnist1d:split=test,n_train=64000,n_test=4000 \\
        --steps 1000 --batch-size 64 --optimizer adam --lr 1e-3 -o rep/
    curate experiment repetition docs.parquet --test heldout.parquet --tokens 1500000 \\
        --model-param n_layer=2 --model-param n_embd=48 --model-param n_head=2 \\
        --pool "prose=slice = 'prose'" --pool "code=slice = 'code'" --compare prose,code -o rep/
    """
    from curate.core.registry import parse_value

    if (tokens is None) == (steps is None):
        raise CurateError("give --tokens (a language model) or --steps (a classifier)")
    params = {}
    for item in model_params:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise CurateError(f"--model-param {item!r}: expected KEY=VALUE")
        params[key] = parse_value(value)
    if size:
        params["size"] = size
    if tokens is not None:
        train = {"model": model or "gpt", "model_params": params, "tokens": tokens,
                 "context": context, "batch_size": batch_size or 16, "lr": lr or 2e-3,
                 "eval_tokens": eval_tokens, "precision": precision, "device": device}
    else:
        train = {"model": model or "mlp", "model_params": params, "steps": steps,
                 "batch_size": batch_size or 128, "lr": lr or 0.1, "optimizer": optimizer}
    specs = [dict(zip(("name", "where"), _named_predicate("--pool", item, "NAME")))
             for item in pools]
    for item in mixes:
        name, sep, rest = item.partition("=")
        try:
            mix = {part.split(":")[0]: float(part.split(":")[1]) for part in rest.split(",")}
        except (IndexError, ValueError):
            raise CurateError(f"--mix {item!r}: expected NAME=POOL:SHARE,POOL:SHARE") from None
        specs.append({"name": name, "mix": mix})
    compare = []
    for item in pairs:
        pair = item.split(",")
        if len(pair) != 2:
            raise CurateError(f"--compare {item!r}: expected A,B")
        compare.append(pair)
    try:
        grid = [int(e) for e in epoch_grid.split(",")]
    except ValueError:
        raise CurateError(f"--epochs {epoch_grid!r}: expected integers like 1,2,4") from None
    experiment_params = {"epochs": grid, "pools": specs or ["all"], "compare": compare,
                         "tolerance": tolerance, "calibrate": not no_calibration,
                         "pool_seed": pool_seed, "tokenizer": tokenizer}
    _run_experiment("repetition", data, test_data, output, seeds, workers, train,
                    experiment_params, score_paths=score_paths)


@cli.group()
def ticket():
    """Lottery tickets: iterative magnitude pruning, mode connectivity, sharpness."""


@ticket.command(name="imp")
@click.argument("data")
@click.option("--steps", type=int, required=True, help="Training steps T of every level.")
@click.option("--levels", type=int, required=True,
              help="Pruning rounds; density after L rounds is (1 - fraction)^L.")
@click.option("--fraction", type=float, default=0.2, show_default=True,
              help="Share of the remaining weights pruned per round.")
@click.option("--output-fraction", type=float,
              help="Own rate for the output layer (default: the same as the rest).")
@click.option("--scope", type=click.Choice(["global", "layer"]), default="global",
              show_default=True)
@click.option("--rewind-step", type=int, default=0, show_default=True,
              help="k: the step whose weights every level rewinds to (0: the original "
              "lottery ticket).")
@click.option("--control", "controls", multiple=True,
              type=click.Choice(["random_mask", "reinit"]),
              help="Controls at each level (repeatable; default both).")
@click.option("--no-controls", is_flag=True, help="Train the tickets only.")
@click.option("--target-acc", type=float, help="Test accuracy for steps-to-target.")
@click.option("--eval-every", type=int, help="Steps between test evaluations (curves).")
@click.option("--instability", type=click.Choice(["none", "dense", "all"]), default="dense",
              show_default=True, help="Where to measure the barrier between two data orders.")
@click.option("--pretrain", "pretrain_selection", type=click.Path(dir_okay=False),
              help="Selection file (from curate filter): train the 0..k phase on its kept "
              "examples only (a data diet for IMP).")
@_experiment_options
def ticket_imp(data, test_data, steps, levels, fraction, output_fraction, scope, rewind_step,
               controls, no_controls, target_acc, eval_every, instability, pretrain_selection,
               model, optimizer, lr, batch_size, seeds, workers, output):
    """Iterative magnitude pruning with rewinding, with controls and error barriers.

    Writes runs.parquet/.csv (one row per seed, level and kind), summary.csv,
    barriers.csv, curves.parquet, accuracy_vs_sparsity.png, barrier_vs_level.png and
    report.md.

    \b
    curate ticket imp builtin:mnist1d --test builtin:mnist1d:split=test --model mlp \\
        --optimizer adam --lr 0.001 --batch-size 100 --steps 3000 --levels 11 -o tickets/
    """
    _run_experiment("lottery", data, test_data, output, seeds, workers,
                    {"model": model, "optimizer": optimizer, "lr": lr, "batch_size": batch_size,
                     "steps": steps},
                    {"levels": levels, "fraction": fraction, "rewind_step": rewind_step,
                     "controls": [] if no_controls else
                     list(controls or ("random_mask", "reinit")),
                     "output_fraction": output_fraction, "scope": scope,
                     "target_acc": target_acc, "eval_every": eval_every,
                     "instability": instability, "pretrain": pretrain_selection})


@ticket.command(name="sharpness")
@click.argument("data")
@click.option("--steps", type=int, required=True, help="Training steps T (one LR schedule).")
@click.option("--rewind-step", type=int, default=0, show_default=True,
              help="k: the dense network and every pruned one train from the weights at "
              "step k (continuing the learning-rate schedule).")
@click.option("--fraction", "fractions", type=float, multiple=True,
              help="One-shot pruning fraction to try (repeatable, increasing; default "
              "0.1, 0.2, ..., 0.8, 0.85, 0.9, 0.95).")
@click.option("--top-k", type=int, default=150, show_default=True,
              help="Top Hessian eigenvalues (Lanczos).")
@click.option("--hessian-examples", type=int, default=1000, show_default=True,
              help="Training examples in the fixed Hessian batch.")
@click.option("--tolerance", type=float, default=0.01, show_default=True,
              help="Accuracy drop that still matches: threshold = min(dense ci95 lo, "
              "dense mean - tolerance).")
@click.option("--no-retrain", is_flag=True,
              help="Only evaluate the pruned networks as pruned (much cheaper).")
@click.option("--schedule", type=click.Choice(["constant", "cosine", "linear"]),
              default="constant", show_default=True,
              help="Learning-rate schedule over the T steps.")
@_experiment_options
def ticket_sharpness(data, test_data, steps, rewind_step, fractions, top_k, hessian_examples,
                     tolerance, no_retrain, schedule, model, optimizer, lr, batch_size, seeds,
                     workers, output):
    """Predicted (Hessian sharpness) against observed one-shot prunable fraction.

    Writes seeds.csv (per seed: predictions by the lambda_max and Gordon rules, observed
    fractions, eps, lambda_max, trace), fractions.csv (accuracy per seed and fraction,
    with and without retraining), spectrum.csv, displacement.csv, trajectory.csv,
    predicted_vs_observed.png, accuracy_vs_fraction.png and report.md.

    \b
    curate ticket sharpness builtin:mnist1d --test builtin:mnist1d:split=test \\
        --model mlp --optimizer adam --lr 0.01 --schedule cosine --batch-size 100 \\
        --steps 1500 --rewind-step 100 -o sharpness/
    """
    result = _run_experiment(
        "sharpness", data, test_data, output, seeds, workers,
        {"model": model, "optimizer": optimizer, "lr": lr, "batch_size": batch_size,
         "schedule": schedule, "steps": steps},
        {"rewind_step": rewind_step, "fractions": list(fractions) or None,
         "hessian_examples": hessian_examples, "top_k": top_k, "tolerance": tolerance,
         "retrain": not no_retrain})

    def fraction(value):
        return "-" if value is None else f"{value:.2f}"

    observed = "observed_no_retrain" if no_retrain else "observed"
    per_seed = "; ".join(
        f"seed {r['seed']} predicted {fraction(r['predicted_lambda_max'])} (lambda_max) "
        f"{fraction(r['predicted_gordon'])} (Gordon), observed {fraction(r[observed])}"
        for r in result.seeds.to_pylist())
    click.echo(per_seed)


@cli.group()
def fasttext():
    """Train fastText quality classifiers."""


@fasttext.command(name="train")
@click.option("--positive", "-p", required=True, help="Dataset of high-quality examples.")
@click.option("--negative", "-n", required=True, help="Dataset of low-quality examples.")
@click.option("--output", "-o", required=True, help="Model file (.bin).")
@click.option("--epoch", default=5, show_default=True)
@click.option("--lr", default=0.1, show_default=True)
@click.option("--word-ngrams", default=2, show_default=True)
@click.option("--seed", default=0, show_default=True)
@data_options
def fasttext_train(positive, negative, output, epoch, lr, word_ngrams, seed, id_column,
                   text_column, max_doc_bytes, on_oversize):
    """Train a quality classifier (label hq vs lq) and save it as a fastText .bin.

    \b
    curate fasttext train -p good.jsonl -n bad.jsonl -o quality.bin
    curate score docs.jsonl -s fasttext_quality:model=quality.bin -o scores/
    """
    _fit("fasttext_quality", {"positive": positive, "negative": negative}, output,
         {"epoch": epoch, "lr": lr, "word_ngrams": word_ngrams, "seed": seed},
         id_column=id_column, text_column=text_column, max_doc_bytes=max_doc_bytes,
         on_oversize=on_oversize)


@cli.command()
@click.argument("scorer")
@click.option("--data", "data", multiple=True, required=True, metavar="ARG=DATASET",
              help="A text argument of the scorer's fit, e.g. positive=good.jsonl "
              "(repeatable).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
              help="A keyword of the scorer's fit, e.g. order=3 (repeatable).")
@click.option("--output", "-o", required=True, help="Model file to write.")
@data_options
def fit(scorer, data, params, output, id_column, text_column, max_doc_bytes, on_oversize):
    """Fit a model-backed scorer (fasttext_quality, perplexity, ...) and save its model.

    \b
    curate fit perplexity --data texts=reference.jsonl --param order=3 -o lm.npz
    curate fit fasttext_quality --data positive=good.jsonl --data negative=bad.jsonl \\
        --param epoch=10 -o quality.bin
    curate score docs.jsonl -s perplexity:model=lm.npz -o scores/
    """
    from curate.core.registry import parse_value

    def pairs(items, what):
        out = {}
        for item in items:
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise CurateError(f"bad {what} {item!r}: expected KEY=VALUE")
            out[key.strip()] = value.strip()
        return out

    _fit(scorer, pairs(data, "--data"), output,
         {k: parse_value(v) for k, v in pairs(params, "--param").items()},
         id_column=id_column, text_column=text_column, max_doc_bytes=max_doc_bytes,
         on_oversize=on_oversize)


def _fit(scorer, data, output, params, *, text_column, **source_options):
    """Run the fit step a recipe's ``fit:`` would, writing the model to ``output``."""
    from curate.steps import FitStep

    step = FitStep(scorer, data, output, params)
    ctx = _context(None, ".", text_column=text_column, report=click.echo, **source_options)
    step.run(ctx)
    click.echo(f"wrote {Path(output)}")


def _add_corpus_commands() -> None:
    from curate.corpus.cli import corpus

    cli.add_command(corpus)


_add_corpus_commands()


def main(argv=None):
    """Entry point: user errors become one line on stderr and exit status 2.

    Ctrl-C (SIGINT) and SIGTERM stop a run: its worker processes are stopped, no partial
    output is left, ``aborted`` is the one line printed and the exit status is 128 + the
    signal's number (130 for SIGINT, 143 for SIGTERM). A second signal, or a clean-up
    still going 5 seconds after the first, exits at once.
    """
    import atexit
    import contextlib
    import os
    import signal
    import threading

    class Interrupted(BaseException):
        """SIGINT or SIGTERM. Not a KeyboardInterrupt, which click reports itself."""

    owner = os.getpid()
    state = {"signum": None, "reported": False}

    def report() -> int:
        if not state["reported"]:
            state["reported"] = True
            tty = state["signum"] == signal.SIGINT and sys.stderr.isatty()
            click.echo("\naborted" if tty else "aborted", err=True)  # after the "^C"
        return 128 + state["signum"]

    def exit_now(run_atexit: bool = False) -> None:
        status = report()
        if run_atexit:
            atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(status)

    def on_signal(signum, frame):
        if os.getpid() != owner:  # a process forked from this one that kept the handler
            if signum == signal.SIGINT:
                signal.default_int_handler(signum, frame)
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)
            return
        if state["signum"] is not None:
            exit_now()
        state["signum"] = signum
        timer = threading.Timer(5.0, exit_now)
        timer.daemon = True
        timer.start()
        raise Interrupted()

    previous = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, on_signal)
    try:
        cli.main(args=argv, prog_name="curate", standalone_mode=False)
    except Interrupted:
        # The run has cleaned up (workers stopped, temporary files removed); skip the
        # interpreter's own finalization, which takes over a second once torch is loaded.
        exit_now(run_atexit=True)
    except CurateError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FileNotFoundError as exc:
        click.echo(f"error: {exc.filename}: no such file or folder", err=True)
        sys.exit(2)
    finally:
        if state["signum"] is None:  # after a signal, a second one still exits at once
            for signum, handler in previous.items():
                signal.signal(signum, handler)


if __name__ == "__main__":  # pragma: no cover
    main()
