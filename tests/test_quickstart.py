"""The quickstart recipe end to end: it runs, accounts for every document, and a
second run from scratch gives byte-identical outputs; a re-run reuses every step."""

import gzip
import json
from pathlib import Path

import pytest

from curate.recipe import run_recipe

RECIPE = Path(__file__).parents[1] / "recipes" / "quickstart.yaml"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("quickstart")
    first = run_recipe(RECIPE, base / "a", log=lambda s: None)
    second = run_recipe(RECIPE, base / "b", log=lambda s: None)
    return base, first, second


def _files(run_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name != "manifest.json"}


def test_quickstart_accounts_for_every_document(runs):
    base, manifest, _ = runs
    final = manifest["steps"][-1]
    assert final["counts"]["input"] == 2000
    kept = final["outputs"]["kept"]["rows"]
    rejected = final["outputs"]["rejected"]["rows"]
    assert kept == final["counts"]["kept"] and kept + rejected == 2000
    assert 0 < kept < 2000
    with gzip.open(base / "a" / "rejected.jsonl.gz", "rt") as fh:
        reasons = {json.loads(line)["reason"].split(":")[0] for line in fh}
    assert {"exact_dup", "minhash", "gopher_quality"} <= reasons
    assert manifest["source"]["ids_assigned"] is False
    assert set(manifest["steps"][2]["computed"]) >= {"gopher_quality", "fasttext_quality"}


def test_two_runs_are_byte_identical(runs):
    base, _, _ = runs
    first, second = _files(base / "a"), _files(base / "b")
    assert "kept.jsonl.gz" in first and "scores/minhash/00000.parquet" in first
    assert first.keys() == second.keys()
    assert [name for name in first if first[name] != second[name]] == []


def test_rerun_reuses_every_step(runs):
    base, first, _ = runs
    again = run_recipe(RECIPE, base / "a", log=lambda s: None)
    fit1, fit2, score = again["steps"][:3]
    assert fit1["reused"] is True and fit2["reused"] is True
    assert score["computed"] == [] and len(score["reused_scores"]) == 9
    assert [step["reused"] for step in again["steps"]] == [True] * len(first["steps"])
