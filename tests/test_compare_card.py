"""The comparison card (`curate inspect A --against B`): both sides, their difference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from curate.card import _hist_layers, _hist_spec, _histogram_grid
from curate.cli import cli
from curate.compare_card import side_labels, write_comparison_card
from curate.core.errors import CurateError
from curate.io import Source
from curate.scores import read_sharded
from tests.test_cli import assert_one_line_error, curate

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    """The quickstart sample against what gopher_quality keeps of it (`curate apply`)."""
    tmp = tmp_path_factory.mktemp("compare")
    invoke("score", "builtin:quickstart", "-s", "gopher_quality", "-o", tmp / "scores")
    invoke("filter", tmp / "scores", "--rules", "gopher_quality", "-o", tmp / "sel.parquet")
    kept = tmp / "kept.jsonl.gz"
    invoke("apply", "builtin:quickstart", "--selection", tmp / "sel.parquet", "-o", kept)
    out = tmp / "card"
    invoke("inspect", "builtin:quickstart", "--against", kept, "-s", "gopher_quality",
           "-s", "exact_dup", "-s", "langid", "--labels", "pool,kept", "-o", out)
    n_pool = Source("builtin:quickstart").read_all(["id"]).num_rows
    n_kept = Source(kept).read_all(["id"]).num_rows
    return out, (out / "card.md").read_text(encoding="utf-8"), n_pool, n_kept


def test_card_names_both_sides_and_counts_their_documents(compared):
    out, md, n_pool, n_kept = compared
    assert md.startswith("# Comparison card: pool vs kept\n")
    assert "**A** = `pool`, **B** = `kept`" in md
    assert 0 < n_kept < n_pool
    change = f"{n_kept - n_pool:+,} ({(n_kept - n_pool) / n_pool:+.2%})"
    assert f"| documents | {n_pool:,} | {n_kept:,} | {change} |" in md
    assert "| total bytes (UTF-8) |" in md
    # each side's scores are kept, one row per document of that side
    assert read_sharded(out / "scores" / "a" / "exact_dup").num_rows == n_pool
    assert read_sharded(out / "scores" / "b" / "exact_dup").num_rows == n_kept


def test_the_filtered_side_keeps_everything_its_filter_kept(compared):
    _, md, n_pool, n_kept = compared
    rate = n_kept / n_pool
    assert (f"| `gopher_quality` | {n_kept:,} of {n_pool:,} | {rate:.2%} | "
            f"{n_kept:,} of {n_kept:,} | 100.00% | +{100 * (1 - rate):.2f} pp |") in md
    # B dropped nothing for gopher_quality: every reason's drop rate falls to 0
    block = md.split("### Drop reasons: `gopher_quality`", 1)[1].split("###", 1)[0]
    rows = [r for r in block.splitlines() if r.startswith("| `gopher_")]
    assert rows and all("| 0 | 0.00% | -" in r for r in rows)
    # sections present on both sides are compared in adjacent columns
    assert "| `exact_dup` |" in md.split("## Duplicates", 1)[1].split("## Language", 1)[0]
    language = md.split("## Language", 1)[1].split("## Rule sets", 1)[0]
    assert "| `en` |" in language and "pp |" in language


def test_figures_are_written_and_linked(compared):
    out, md, _, _ = compared
    for name in ("length_histogram.png", "score_histograms.png", "language_langid.png",
                 "drop_reasons_gopher_quality.png"):
        assert f"]({name})" in md, name
        assert (out / name).read_bytes().startswith(PNG_SIGNATURE), name
    assert not (out / "score_correlations.png").exists()  # not a comparison section


def test_missing_second_dataset_is_one_line_and_scores_nothing(tmp_path):
    out = tmp_path / "card"
    result = curate("inspect", "builtin:quickstart", "--against", tmp_path / "nope.jsonl",
                    "-s", "exact_dup", "-o", out)
    assert_one_line_error(result, "nope.jsonl")
    assert not out.exists()


def test_labels_are_checked(tmp_path, docs_file):
    result = curate("inspect", docs_file, "--against", docs_file, "--labels", "same,same",
                    "-o", tmp_path / "card")
    assert_one_line_error(result, "--labels 'same,same'")
    alone = curate("inspect", docs_file, "--labels", "a,b", "-o", tmp_path / "card")
    assert_one_line_error(alone, "--against")


def test_default_labels_are_file_names():
    assert side_labels("data/pool.jsonl.gz", "out/kept.jsonl.gz") == ("pool.jsonl.gz",
                                                                      "kept.jsonl.gz")
    assert side_labels("a/docs.jsonl", "b/docs.jsonl") == ("a/docs.jsonl", "b/docs.jsonl")
    assert side_labels("docs.jsonl", "docs.jsonl") == ("docs.jsonl (A)", "docs.jsonl (B)")
    assert side_labels("x", "y", " raw , clean ") == ("raw", "clean")
    with pytest.raises(CurateError, match="two different names"):
        side_labels("x", "y", "only")


def _scores(n: int, *, langid: bool, seed: int) -> pa.Table:
    rng = np.random.default_rng(seed)
    columns = {"id": pa.array(np.arange(n)),
               "c4_quality_keep": pa.array(np.arange(n) % 4 != 0),
               "c4_quality_reason": pa.array([None if i % 4 else "lorem_ipsum" for i in range(n)],
                                             pa.string()),
               "c4_quality_sentences": pa.array(rng.integers(0, 30, n))}
    if langid:
        columns["langid_language"] = pa.array(["en", "de"] * (n // 2), pa.string())
        columns["langid_confidence"] = pa.array(rng.uniform(0.5, 1, n))
    return pa.table(columns)


def test_a_column_on_one_side_only_is_not_scored_on_the_other(tmp_path):
    a, b = _scores(40, langid=True, seed=0), _scores(10, langid=False, seed=1)
    texts = (pa.array(["x" * i for i in range(40)]), pa.array(["é" * (i + 1) for i in range(10)]))
    card = write_comparison_card(a, b, tmp_path, labels=("big", "small"), texts=texts)
    md = card.read_text(encoding="utf-8")
    assert "- Only in `big` (not scored in `small`): `langid_language`, `langid_confidence`" in md
    assert "| `en` | 20 | 50.00% | not scored | not scored | n/a |" in md
    row = next(r for r in md.splitlines() if r.startswith("| `langid_confidence` |"))
    assert row.endswith("| not scored | not scored | n/a |")
    assert "| `c4_quality` | 30 of 40 | 75.00% | 7 of 10 | 70.00% | -5.00 pp |" in md
    assert "| total bytes (UTF-8) | 780 | 110 | -670 (-85.90%) |" in md  # é is two bytes
    assert "| empty documents (0 characters) | 1 | 0 | -1 |" in md
    again = write_comparison_card(a, b, tmp_path / "again", labels=("big", "small"),
                                  texts=texts)
    assert again.read_text(encoding="utf-8") == md  # deterministic, PNGs included
    for png in tmp_path.glob("*.png"):
        assert (tmp_path / "again" / png.name).read_bytes() == png.read_bytes(), png.name


def test_an_empty_side_is_an_error(tmp_path):
    a = _scores(8, langid=False, seed=0)
    with pytest.raises(CurateError, match="^small: no documents"):
        write_comparison_card(a, a.slice(0, 0), tmp_path, labels=("big", "small"))
    assert not list(tmp_path.iterdir())


def test_histograms_share_bins_and_show_shares():
    rng = np.random.default_rng(2)
    big, small = rng.normal(0, 1, 1000), rng.normal(3, 1, 50)
    spec, layers = _hist_layers([big, small], ("big", "small"))
    assert np.array_equal(spec.edges, _hist_spec(np.r_[big, small]).edges)
    assert [round(float(layer.sum()), 9) for layer in layers] == [1.0, 1.0]
    assert layers[1][spec.edges[1:] > 2].sum() > 0.5 > layers[0][spec.edges[1:] > 2].sum()
    fig = _histogram_grid({"x": [big, small], "only_big": [big, np.empty(0)]},
                          names=("big", "small"))
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["big", "small"]
    assert fig.axes[0].get_ylabel() == "share of documents"
