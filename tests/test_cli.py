"""The command line end to end: bad input gives one line, a non-zero exit, no output."""

import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from curate.scores import read_sharded
from tests.conftest import write_jsonl


def curate(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "curate.cli", *map(str, args)], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(result, *fragments):
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_score_filter_apply_sql(tmp_path, docs_file):
    out = tmp_path / "scores"
    r = curate("score", docs_file, "-s", "exact_dup", "-s", "minhash:ngram=3,seed=1", "-o", out)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith((".", "_"))) == \
        ["exact_dup", "minhash"]
    assert (out / "minhash" / "_table.json").exists()
    r = curate("filter", out, "--where", "NOT exact_dup_duplicate", "--tag", "fr",
               "id = 'fr'", "-o", tmp_path / "sel.parquet")
    assert r.returncode == 0, r.stderr
    assert "kept 11 of 12" in r.stdout
    r = curate("apply", docs_file, "--selection", tmp_path / "sel.parquet", "-o",
               tmp_path / "kept.parquet", "--rejected", tmp_path / "rej.jsonl",
               "--tag-as", "prefix")
    assert r.returncode == 0, r.stderr
    kept = pq.read_table(tmp_path / "kept.parquet").to_pylist()
    assert len(kept) == 11
    assert [row["text"][:6] for row in kept if row["id"] == "fr"] == ["<|fr|>"]
    assert '"reason": "where: NOT exact_dup_duplicate"' in (tmp_path / "rej.jsonl").read_text()
    r = curate("sql", out, "SELECT count(*) AS n FROM scores WHERE exact_dup_duplicate",
               "--format", "csv")
    assert r.stdout.split() == ['"n"', "1"]


@pytest.mark.parametrize("content, fragments", [
    (b'{"id": "a", "text": "x"}\n{"id": "b", "text": \n', ["bad.jsonl:2:", "malformed JSON"]),
    (b'{"id": "a", "body": "x"}\n', ["column 'text' not found", "columns are: id, body"]),
    (b"", ["bad.jsonl: dataset is empty"]),
    (b'{"id": "a", "text": "\xff\xfe"}\n', ["bad.jsonl:1:", "invalid UTF-8"]),
    (b'{"id": "a", "text": "x"}\n{"id": "a", "text": "y"}\n', ["duplicate id 'a'"]),
    (b'{"id": "a", "text": "' + b"w " * 2_600_000 + b'"}\n', ["bad.jsonl:1:", "5.0 MiB",
                                                                "--max-doc-bytes"]),
])
def test_bad_input_one_line_no_output(tmp_path, content, fragments):
    (tmp_path / "bad.jsonl").write_bytes(content)
    result = curate("score", tmp_path / "bad.jsonl", "-s", "exact_dup", "-o", tmp_path / "out")
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_recipe_with_unknown_key(tmp_path, docs_file):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"source: {docs_file}\nsteps:\n  - score:\n      scorer: [exact_dup]\n")
    result = curate("run", recipe, "--out", tmp_path / "run")
    assert_one_line_error(result, "r.yaml:4: unknown key 'scorer' in step 1 (score)",
                          "expected one of: scorers")
    assert not (tmp_path / "run").exists()


def test_unknown_scorer_and_bad_parameter(tmp_path, docs_file):
    assert_one_line_error(curate("score", docs_file, "-s", "nope", "-o", tmp_path / "o"),
                          "unknown scorer 'nope'")
    assert_one_line_error(curate("score", docs_file, "-s", "exact_dup:bogus=1", "-o",
                                 tmp_path / "o"), "scorer 'exact_dup' has no parameter 'bogus'")


def test_apply_with_foreign_selection(tmp_path, docs_file, docs):
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": "zzz", "text": "x"}])
    assert curate("score", other, "-s", "exact_dup", "-o", tmp_path / "s").returncode == 0
    assert curate("filter", tmp_path / "s", "--random", "1", "-o",
                  tmp_path / "sel.parquet").returncode == 0
    result = curate("apply", docs_file, "--selection", tmp_path / "sel.parquet", "-o",
                    tmp_path / "kept.jsonl")
    assert_one_line_error(result, "id 'doc0' of the dataset is not in the selection")
    assert not (tmp_path / "kept.jsonl").exists()


def test_help_lists_commands_with_examples():
    result = curate("--help")
    for command in ("score", "filter", "apply", "run", "sql", "inspect", "fasttext"):
        assert command in result.stdout
    assert "curate score docs.jsonl.gz -s gopher_quality" in curate("score", "--help").stdout


def test_inspect_writes_a_quality_card(tmp_path, docs_file):
    result = curate("inspect", docs_file, "-s", "exact_dup", "-s", "minhash:ngram=3", "-o",
                    tmp_path / "card")
    assert result.returncode == 0, result.stderr
    card = (tmp_path / "card" / "card.md").read_text()
    assert "Documents: 12" in card
    assert "| `exact_dup` | 1 | 8.33% |" in card  # one duplicate of twelve
    assert (tmp_path / "card" / "length_histogram.png").read_bytes()[:4] == b"\x89PNG"
    # the scores it computed are kept beside the card and can be given back with --scores
    assert read_sharded(tmp_path / "card" / "scores" / "minhash").num_rows == 12
    again = curate("inspect", docs_file, "--scores", tmp_path / "card" / "scores", "-o",
                   tmp_path / "card2")
    assert again.returncode == 0, again.stderr
    assert "| `exact_dup` | 1 | 8.33% |" in (tmp_path / "card2" / "card.md").read_text()


def test_fit_saves_a_model_that_score_then_uses(tmp_path, docs_file):
    model = tmp_path / "lm.npz"
    result = curate("fit", "perplexity", "--data", f"texts={docs_file}", "--param", "order=2",
                    "-o", model)
    assert result.returncode == 0, result.stderr
    scored = curate("score", docs_file, "-s", f"perplexity:model={model}", "-o", tmp_path / "s")
    assert scored.returncode == 0, scored.stderr
    assert read_sharded(tmp_path / "s" / "perplexity").num_rows == 12
    bad = curate("fit", "gopher_quality", "--data", f"texts={docs_file}", "-o", model)
    assert_one_line_error(bad, "scorer 'gopher_quality' has no fit step")
    typo = curate("fit", "perplexity", "--data", f"text={docs_file}", "-o", model)
    assert_one_line_error(typo, "fit perplexity: unknown argument 'text'")


def test_experiment_prune_sweep_writes_results_and_report(tmp_path):
    out = tmp_path / "sweep"
    result = curate("experiment", "prune-sweep", "builtin:digits", "--test",
                    "builtin:digits:split=test", "--method", "random", "--fraction", "0.5",
                    "--seeds", "1", "--model", "logreg", "--epochs", "1", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "2 runs" in result.stdout  # the random half and the full-data baseline
    assert "Budget rule: same-steps" in (out / "report.md").read_text()
    assert pq.read_table(out / "results.parquet").num_rows == 2


def test_filter_and_sql_find_the_id_column_the_scores_were_written_with(tmp_path):
    from tests.conftest import write_jsonl

    rows = [{"doc_id": f"d{i}", "body": "word " * (i + 1)} for i in range(6)]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    scored = curate("score", data, "--id-column", "doc_id", "--text-column", "body", "-s",
                    "exact_dup", "-o", tmp_path / "s")
    assert scored.returncode == 0, scored.stderr
    chosen = curate("filter", tmp_path / "s", "--where", "exact_dup_keep", "-o",
                    tmp_path / "sel.parquet")
    assert chosen.returncode == 0, chosen.stderr
    assert pq.read_table(tmp_path / "sel.parquet").column_names[0] == "doc_id"
    counted = curate("sql", tmp_path / "s", "SELECT count(*) AS n FROM scores", "--format",
                     "csv")
    assert counted.returncode == 0 and counted.stdout.split() == ['"n"', "6"]
    missing = curate("apply", data, "--selection", tmp_path / "nope.parquet", "-o",
                     tmp_path / "k.jsonl")
    assert_one_line_error(missing, "nope.parquet: no such selection file")
