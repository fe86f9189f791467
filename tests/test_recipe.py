"""Recipes: validation before running, reuse on re-run, manifest, determinism."""

import json
from pathlib import Path

import pytest

from curate.core.errors import CurateError
from curate.io import Source
from curate.recipe import run_recipe
from curate.recipe_schema import read_yaml, validate

RECIPE = """\
name: small
source: docs.jsonl
seed: 3
steps:
  - score:
      scorers: [exact_dup, {name: minhash, ngram: 3}]
  - filter: {rules: [exact_dup]}
  - filter: {random: {fraction: 0.8}}
  - tag:
      rules:
        - {when: "minhash_cluster_size > 1", tag: near_dup}
  - apply:
      kept: out/kept.jsonl.gz
      rejected: out/rejected.parquet
      tag_as: column
"""


@pytest.fixture
def recipe(tmp_path, docs_file):
    path = tmp_path / "small.yaml"
    path.write_text(RECIPE)
    return path


def _outputs(run_dir):
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def test_run_writes_outputs_and_manifest(recipe, tmp_path):
    manifest = run_recipe(recipe, tmp_path / "run", log=lambda s: None)
    steps = manifest["steps"]
    assert [s["type"] for s in steps] == ["score", "filter", "filter", "tag", "apply"]
    assert steps[1]["counts"]["dropped_by_reason"] == {"exact_dup:duplicate": 1}
    assert steps[2]["dropped_here"] == {"not in random 0.8 (seed 3)": 2}  # 0.8 * 11 rounds to 9
    assert "exact_dup:duplicate" in steps[2]["counts"]["dropped_by_reason"]
    final = steps[-1]["counts"]
    assert final["kept"] + final["dropped"] == final["input"] == 12
    assert steps[-1]["outputs"]["kept"]["rows"] == final["kept"]
    assert manifest["seed"] == 3 and manifest["source"]["rows"] == 12
    assert manifest["versions"]["duckdb"]
    assert len(manifest["source"]["fingerprint"]) == 32
    written = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert written["steps"][0]["computed"] == ["exact_dup", "minhash"]


def test_rerun_reuses_and_is_byte_identical(recipe, tmp_path):
    run_recipe(recipe, tmp_path / "a", log=lambda s: None)
    first = _outputs(tmp_path / "a")
    again = run_recipe(recipe, tmp_path / "a", log=lambda s: None)
    assert again["steps"][0]["reused"] is True
    assert again["steps"][-1]["reused"] is True
    assert _outputs(tmp_path / "a") == first
    run_recipe(recipe, tmp_path / "b", log=lambda s: None)
    assert _outputs(tmp_path / "b") == first


def test_changed_step_is_recomputed(recipe, tmp_path):
    run_recipe(recipe, tmp_path / "run", log=lambda s: None)
    recipe.write_text(RECIPE.replace("ngram: 3", "ngram: 2"))
    again = run_recipe(recipe, tmp_path / "run", log=lambda s: None)
    assert again["steps"][0]["reused_scores"] == ["exact_dup"]
    assert again["steps"][0]["computed"] == ["minhash"]


@pytest.mark.parametrize("edit, message", [
    (("  - filter: {rules: [exact_dup]}", "  - filter: {rulez: [exact_dup]}"),
     r"small.yaml:7: step 2 \(filter\): unknown filter 'rulez'"),
    (("seed: 3", "seed: 3\nsead: 4"), r"small.yaml:4: unknown key 'sead' in recipe"),
    (("seed: 3", "seed: three"), r"small.yaml:3: recipe.seed must be int"),
    (("scorers: [exact_dup,", "scorers: [no_such,"), r"unknown scorer 'no_such'"),
    (("tag_as: column", "tag_as: sideways"), r"small.yaml:\d+: step 5 \(apply\): .*tag_as"),
    (("  - apply:", "  - aply:"), r"small.yaml:12: unknown step type 'aply'"),
    (("source: docs.jsonl", "source: [docs.jsonl"), r"small.yaml:\d+: invalid YAML"),
])
def test_bad_recipe_fails_before_running(recipe, tmp_path, edit, message):
    recipe.write_text(RECIPE.replace(*edit))
    with pytest.raises(CurateError, match=message):
        run_recipe(recipe, tmp_path / "run", log=lambda s: None)
    assert not (tmp_path / "run").exists()


def test_class_balanced_step_joins_the_label_column(tmp_path):
    from tests.conftest import write_jsonl

    rows = [{"id": i, "label": i % 2, "text": f"document number {i} " * (i + 1)}
            for i in range(20)]
    write_jsonl(tmp_path / "labelled.jsonl", rows)
    recipe = tmp_path / "balanced.yaml"
    recipe.write_text("source: labelled.jsonl\nsteps:\n"
                      "  - score: {scorers: [exact_dup]}\n"
                      "  - filter: {keep_fraction: {by: exact_dup_cluster, fraction: 0.5,"
                      " keep: hard, balance: label}}\n"
                      "  - apply: {kept: kept.jsonl}\n")
    manifest = run_recipe(recipe, tmp_path / "run", log=lambda s: None)
    kept = [r["label"] for r in Source(str(tmp_path / "run" / "kept.jsonl")).read_all().to_pylist()]
    assert manifest["steps"][1]["counts"]["kept"] == 10
    assert sorted(kept) == [0] * 5 + [1] * 5


EXPERIMENT_RECIPE = """\
source: builtin:digits
steps:
  - experiment:
      kind: prune-sweep
      test: builtin:digits:split=test
      train: {model: logreg, lr: 0.1, batch_size: 64, steps: 6}
      seeds: 2
      methods: [random, el2n-hard]
      fractions: [0.5]
      score_seeds: 1
      output: diet
"""


def test_experiment_step_runs_the_sweep_and_a_rerun_trains_nothing(tmp_path):
    recipe = tmp_path / "diet.yaml"
    recipe.write_text(EXPERIMENT_RECIPE.replace("score_seeds: 1", "score_seeds: 1\n"
                                                "      budget: same-steps").replace(
        "seeds: 2", "seeds: [0, 1]"))
    first = run_recipe(recipe, tmp_path / "run", log=lambda s: None)["steps"][0]
    assert first["runs"] == {"trained": 2 * 3, "reused": 0}
    assert first["scores"] == {"computed": 1, "reused": 0}
    assert (tmp_path / "run" / "diet" / "report.md").exists()
    again = run_recipe(recipe, tmp_path / "run", log=lambda s: None)["steps"][0]
    assert again["reused"] is True and again["runs"] == {"trained": 0, "reused": 6}
    assert again["scores"] == {"computed": 0, "reused": 1}


@pytest.mark.parametrize("edit, message", [
    (("kind: prune-sweep", "kind: sweep"),
     r"diet.yaml:4: step 1 \(experiment\): unknown experiment 'sweep'"),
    (("[random, el2n-hard]", "[random, el2n-sideways]"),
     r"diet.yaml:\d+: step 1 \(experiment\): .*el2n-sideways"),
    (("[random, el2n-hard]", "[random, nope-hard]"), r"unknown scorer 'nope'"),
    (("seeds: 2", "seeds: 2\n      pacings: [linear]"),
     r"diet.yaml:\d+: step 1 \(experiment\): experiment 'prune-sweep' has no parameter 'pacings'"),
    (("      test: builtin:digits:split=test\n", ""), r"missing required key 'test'"),
])
def test_bad_experiment_step_fails_before_running(tmp_path, edit, message):
    recipe = tmp_path / "diet.yaml"
    recipe.write_text(EXPERIMENT_RECIPE.replace(*edit))
    with pytest.raises(CurateError, match=message):
        run_recipe(recipe, tmp_path / "run", log=lambda s: None)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_shipped_recipes_validate(path):
    validate(path, read_yaml(path))


@pytest.mark.parametrize("edit, message", [
    ((RECIPE[RECIPE.index("  - filter"):RECIPE.index("  - apply")], ""),
     r"small.yaml:\d+: step 2 \(apply\): an apply step needs a filter or tag step before it"),
    (("  - filter: {rules: [exact_dup]}", "  - filter: {where: \"no_such_column > 1\"}"),
     r"small.yaml:7: step 2 \(filter\): predicate 'no_such_column > 1' names a column no "
     r"earlier step writes"),
    (("{name: minhash, ngram: 3", "{name: minhash, ngram: abc"),
     r"small.yaml:\d+: step 1 \(score\): minhash: ngram must be"),
    (("{name: minhash, ngram: 3", "{name: minhash, ngrm: 3"),
     r"small.yaml:\d+: step 1 \(score\): scorer 'minhash' has no parameter 'ngrm' "
     r"\(did you mean 'ngram'\?\)"),
    (("kept: out/kept.jsonl.gz", "kept: ../../escaped.jsonl"), r"outside the run folder"),
])
def test_recipe_mistakes_are_found_before_anything_runs(recipe, tmp_path, edit, message):
    assert edit[0] in RECIPE
    recipe.write_text(RECIPE.replace(*edit))
    with pytest.raises(CurateError, match=message):
        run_recipe(recipe, tmp_path / "run", log=lambda s: None)
    assert not (tmp_path / "run").exists()


def test_outputs_outside_the_run_folder_need_an_explicit_opt_in(recipe, tmp_path):
    recipe.write_text("allow_outside_outputs: true\n" + RECIPE.replace(
        "kept: out/kept.jsonl.gz", f"kept: {tmp_path / 'elsewhere' / 'kept.jsonl'}"))
    run_recipe(recipe, tmp_path / "run", log=lambda s: None)
    assert (tmp_path / "elsewhere" / "kept.jsonl").exists()


def test_apply_transform_must_rewrite_text_and_gzipped_csv_is_refused(recipe, tmp_path):
    recipe.write_text(RECIPE.replace("tag_as: column", "tag_as: column\n      transform: "
                                     "[gopher_quality]"))
    with pytest.raises(CurateError, match=r"small.yaml:\d+: step 5 \(apply\): scorer "
                                          r"'gopher_quality' does not rewrite text"):
        run_recipe(recipe, tmp_path / "run", log=lambda s: None)
    recipe.write_text(RECIPE.replace("out/rejected.parquet", "out/rejected.csv.gz"))
    with pytest.raises(CurateError, match="writing gzipped CSV is not supported"):
        run_recipe(recipe, tmp_path / "run2", log=lambda s: None)
    assert not (tmp_path / "run2" / "out" / "rejected.csv.gz").exists()


def test_manifest_records_the_recipe_name_and_description(recipe, tmp_path):
    recipe.write_text("description: a small test\n" + RECIPE)
    manifest = run_recipe(recipe, tmp_path / "run", log=lambda s: None)
    assert manifest["recipe"]["name"] == "small"
    assert manifest["recipe"]["description"] == "a small test"


def test_card_step_writes_the_quality_card_of_the_scores_so_far(recipe, tmp_path):
    recipe.write_text(RECIPE + "  - card: {title: Small corpus}\n")
    manifest = run_recipe(recipe, tmp_path / "run", log=lambda s: None)
    card = (tmp_path / "run" / "card" / "card.md").read_text()
    assert card.startswith("# Small corpus") and "minhash" in card
    assert manifest["steps"][-1]["outputs"] == ["card/card.md"]
    again = run_recipe(recipe, tmp_path / "run", log=lambda s: None)
    assert again["steps"][-1]["reused"] is True
