"""The language-model experiments: text-ablation and conditional-training, by name, from
the CLI and in a recipe."""

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.core.errors import CurateError
from curate.core.registry import EXPERIMENTS
from curate.core.tables import new_selection
from curate.io import Source
from curate.scores import read_sharded
from tests.test_cli import assert_one_line_error, curate

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TRAIN = {"model_params": {"n_layer": 1, "n_head": 2, "n_embd": 32}, "context": 32,
         "batch_size": 4, "tokens": 4 * 32 * 4, "precision": "fp32", "eval_tokens": 2048}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A small train / held-out split of the shipped sample, with slices from ``source``."""
    folder = tmp_path_factory.mktemp("corpus")
    table = Source("builtin:quickstart").read_all().rename_columns(["id", "text", "slice"])
    keep = pc.is_in(table.column("slice"), pa.array(["austen", "python-src", "fortunes-it"]))
    table = table.filter(keep)
    train, test = table.slice(0, 150), table.slice(150, 60)
    import pyarrow.parquet as pq

    pq.write_table(train, folder / "train.parquet")
    pq.write_table(test, folder / "heldout.parquet")
    long = pc.greater(pc.utf8_length(train.column("text")), 1500)
    selection = new_selection(train.column("id"))
    selection = selection.set_column(selection.column_names.index("keep"), "keep", long)
    pq.write_table(selection, folder / "selection.parquet")
    return folder


def ablation(corpus, out, **own):
    return EXPERIMENTS.get("text-ablation")(
        str(corpus / "train.parquet"), str(corpus / "heldout.parquet"), train_config=TRAIN,
        seeds=2, out_dir=out, selection=pa.parquet.read_table(corpus / "selection.parquet"),
        **own)


def test_text_ablation_compares_pools_at_equal_tokens_and_is_deterministic(corpus, tmp_path):
    result = ablation(corpus, tmp_path / "a")
    assert result.trained == 6 and result.reused == 0
    pools = {r["pool"]: r for r in result.pools.to_pylist() if r["seed"] == 0}
    assert pools["selection"]["documents"] < pools["all"]["documents"] == 150
    # the random pool matches the selection's bytes, from more (shorter) documents
    assert pools["random"]["bytes"] >= pools["selection"]["bytes"]
    assert pools["random"]["documents"] > pools["selection"]["documents"]
    results = result.results.to_pylist()
    assert {r["slice"] for r in results} == {"austen", "python-src", "fortunes-it"}
    assert {r["tokens"] for r in results} == {TRAIN["tokens"]}
    epochs = {r["pool"]: r["epochs"] for r in results}
    assert epochs["selection"] > epochs["all"]  # the smaller pool repeats more
    paired = result.paired.to_pylist()
    assert {(r["pool"], r["against"]) for r in paired} == {
        ("selection", "all"), ("random", "all"), ("selection", "random")}
    report = result.report.read_text()
    assert "Compute rule" in report and "epochs" in report and "curves.png" in report
    ablation(corpus, tmp_path / "b")
    for name in ("results.csv", "summary.csv", "paired.csv", "curves.csv", "pools.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    rerun = ablation(corpus, tmp_path / "a")
    assert rerun.trained == 0 and rerun.reused == 6


def test_text_ablation_generations_score_like_a_dataset(corpus, tmp_path):
    result = ablation(corpus, tmp_path, pools=["all"], samples=3, max_new_tokens=16)
    gens = pa.parquet.read_table(tmp_path / "generations.parquet").to_pylist()
    assert gens == result.generations.to_pylist()
    assert [g["id"] for g in gens[:3]] == ["all/0/0", "all/0/1", "all/0/2"]
    assert len(gens) == 6 and all(len(g["text"].encode()) <= 16 * 4 for g in gens)
    out = tmp_path / "gen-scores"
    scored = curate("score", tmp_path / "generations.parquet", "-s", "gopher_quality",
                    "-o", out)
    assert scored.returncode == 0, scored.stderr
    assert read_sharded(out / "gopher_quality").num_rows == 6


def test_text_ablation_checks_its_pools_before_reading(corpus, tmp_path):
    from curate.experiment import check

    with pytest.raises(CurateError, match="recipe's selection"):
        check("text-ablation", {"pools": ["all", "selection"]})
    with pytest.raises(CurateError, match="random_like must name an earlier pool"):
        check("text-ablation", {"pools": [{"name": "r", "random_like": "x"}, "all"]})
    with pytest.raises(CurateError, match="baseline"):
        check("text-ablation", {"pools": ["all"], "baseline": "none"})
    with pytest.raises(CurateError, match="no field 'epochs'"):
        EXPERIMENTS.get("text-ablation")(
            str(corpus / "train.parquet"), str(corpus / "heldout.parquet"),
            train_config={"epochs": 3}, seeds=1, out_dir=tmp_path, pools=["all"])


def test_conditional_training_tags_segments_and_scores_generations(corpus, tmp_path):
    result = EXPERIMENTS.get("conditional-training")(
        str(corpus / "train.parquet"), str(corpus / "heldout.parquet"), train_config=TRAIN,
        seeds=2, out_dir=tmp_path, score="langid",
        tags=[{"when": "langid_language = 'en'", "tag": "good"}], samples=6,
        max_new_tokens=24, untagged=0.1)
    segments = {r["tag"]: r["segments"] for r in result.segments.to_pylist()}
    assert segments["good"] > segments["bad"] > 0  # Italian fortunes are tagged bad
    settings = result.settings
    assert 0 < settings["untagged_segments"] < settings["segments"]
    assert settings["documents"]["filtered"] < settings["documents"]["plain"]
    rates = result.rates.to_pylist()
    assert {(r["arm"], r["seed"]) for r in rates} == {(a, s) for a in
                                                      ("conditional", "plain", "filtered")
                                                      for s in (0, 1)}
    assert all(r["samples"] == 6 and 0 <= r["unwanted"] <= 6 - r["empty"] for r in rates)
    gens = result.generations.to_pylist()
    assert len(gens) == 36 and not any("<|" in g["text"] for g in gens)
    assert {r["arm"] for r in result.rate_paired.to_pylist()} == {"conditional", "filtered"}
    tokenizer = (tmp_path / "tokenizer.json").read_text()
    assert "<|good|>" in tokenizer and "<|bad|>" in tokenizer
    assert "Unwanted rate" in result.report.read_text()


def test_the_cli_runs_a_text_ablation_on_a_selection_file(corpus, tmp_path):
    out = tmp_path / "cli"
    args = ["experiment", "text-ablation", str(corpus / "train.parquet"), "--test",
            str(corpus / "heldout.parquet"), "--selection", str(corpus / "selection.parquet"),
            "--tokens", "512", "--context", "32", "--batch-size", "4", "--seeds", "1",
            "--precision", "fp32", "--eval-tokens", "1024", "-o", str(out)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = pacsv.read_csv(out / "summary.csv").to_pylist()
    assert {r["pool"] for r in summary} == {"all", "selection", "random"}
    bad = curate(*args[:5], "--pool", "selection", "--tokens", "512", "-o", tmp_path / "x")
    assert_one_line_error(bad, "pool 'selection'", "selection")
    assert not (tmp_path / "x").exists()


RECIPE = """
name: tiny-ablation
source: builtin:text_corpus
seed: 0
steps:
  - score:
      scorers: [exact_dup, gopher_repetition]
  - filter: {rules: [exact_dup, gopher_repetition]}
  - experiment:
      kind: text-ablation
      test: builtin:text_corpus:split=heldout
      train: {model_params: {n_layer: 1, n_head: 2, n_embd: 32}, context: 32,
              batch_size: 4, tokens: 512, precision: fp32, eval_tokens: 1024}
      seeds: 2
      pools: [all, selection, random]
      output: ablation
"""


def test_a_recipe_runs_the_ablation_on_its_selection_with_identical_tables(tmp_path):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(RECIPE)
    for run in ("one", "two"):
        result = CliRunner().invoke(cli, ["run", str(recipe), "--out", str(tmp_path / run)])
        assert result.exit_code == 0, result.output
    one, two = tmp_path / "one" / "ablation", tmp_path / "two" / "ablation"
    pools = pacsv.read_csv(one / "pools.csv").to_pylist()
    assert {p["pool"] for p in pools} == {"all", "selection", "random"}
    slices = {r["slice"] for r in pacsv.read_csv(one / "summary.csv").to_pylist()}
    assert {"prose", "code", "man"} <= slices
    for name in ("results.csv", "summary.csv", "paired.csv", "curves.csv", "pools.csv"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    again = CliRunner().invoke(cli, ["run", str(recipe), "--out", str(tmp_path / "one")])
    assert again.exit_code == 0 and "reused" in again.output


def test_a_recipe_with_a_classifier_config_for_a_language_model_fails_before_running(
        tmp_path):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(RECIPE.replace("context: 32,", "context: 32, optimizer: sgd,"))
    result = curate("run", recipe, "--out", tmp_path / "out")
    assert_one_line_error(result, "optimizer")
    assert not (tmp_path / "out" / "ablation").exists()


@pytest.mark.parametrize("how", ["paragraph", "line", "document"])
def test_segments_put_back_together_give_the_document(how):
    from curate.experiment.conditional import split_segments

    text = "First para line one.\nline two.\n\n\nSecond para.\n\nx\n\nLast one here.\n"
    pieces = split_segments(text, how, min_chars=12)
    assert "".join(pieces) == text
    assert all(len(p) >= 12 for p in pieces)
    expected = {"document": 1, "paragraph": 3, "line": 4}[how]
    assert len(pieces) == expected, pieces
