"""The quality card: numbers in the Markdown, valid PNGs, determinism, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import spearmanr

from curate.card import _spearman_matrix, write_quality_card

N = 300
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _rule_set(drops: dict[str, range], nulls: range = range(0)) -> tuple[list, list]:
    """keep/reason lists of length N: rows in ``drops[reason]`` dropped, ``nulls`` unscored."""
    keep: list = [True] * N
    reason: list = [None] * N
    for why, rows in drops.items():
        for i in rows:
            keep[i], reason[i] = False, why
    for i in nulls:
        keep[i] = None
    return keep, reason


def make_scores() -> tuple[pa.Table, pa.Array]:
    """A synthetic joined score table with known counts, and per-document lengths."""
    rng = np.random.default_rng(0)
    idx = np.arange(N)
    gq_keep, gq_reason = _rule_set({"word_count": range(240, 280),
                                    "mean_word_length": range(280, 300)})
    gr_keep, gr_reason = _rule_set({"dup_line_frac": range(5, N, 10)})
    c4_keep, c4_reason = _rule_set({"lorem_ipsum": range(10, 25)}, nulls=range(10))
    fw_keep, fw_reason = _rule_set({})
    languages = ["en"] * 180 + ["de"] * 60 + ["fr"] * 30 + ["es"] * 20 + [None] * 10
    confidence = rng.uniform(0.5, 1.0, N)
    confidence[::37] = np.nan
    hq = rng.uniform(0, 1, N)
    hq[3:8] = np.nan
    ppl = np.exp(rng.normal(4, 2, N))
    table = pa.table({
        "id": pa.array(idx, pa.int64()),
        "gopher_quality_keep": pa.array(gq_keep, pa.bool_()),
        "gopher_quality_reason": pa.array(gq_reason, pa.string()),
        "gopher_quality_word_count": pa.array(rng.integers(0, 2000, N), pa.int64()),
        "gopher_repetition_keep": pa.array(gr_keep, pa.bool_()),
        "gopher_repetition_reason": pa.array(gr_reason, pa.string()),
        "c4_quality_keep": pa.array(c4_keep, pa.bool_()),
        "c4_quality_reason": pa.array(c4_reason, pa.string()),
        "fineweb_quality_keep": pa.array(fw_keep, pa.bool_()),
        "fineweb_quality_reason": pa.array(fw_reason, pa.string()),
        "fineweb_quality_line_count": pa.array([5] * N, pa.int32()),
        # 10 clusters of 3 (first member kept), every other document its own cluster.
        "exact_dup_duplicate": pa.array((idx < 30) & (idx % 3 != 0)),
        "exact_dup_cluster": pa.array(np.where(idx < 30, idx // 3, idx)),
        # One cluster of 50; non-duplicates have a null cluster.
        "minhash_duplicate": pa.array((idx > 0) & (idx < 50)),
        "minhash_cluster": pa.array([0 if i < 50 else None for i in idx], pa.int64()),
        "langid_language": pa.array(languages, pa.string()),
        "langid_confidence": pa.array(confidence),
        "fasttext_quality_hq": pa.array(hq),
        "perplexity_ppl": pa.array(ppl),
        "perplexity_nll": pa.array(np.log(ppl)),
        "perplexity_tokens": pa.nulls(N, pa.float64()),
    })
    lengths = pa.array((idx * 37) % 5000, pa.int64())
    return table, lengths


@pytest.fixture(scope="module")
def card(tmp_path_factory):
    scores, lengths = make_scores()
    out = tmp_path_factory.mktemp("card")
    path = write_quality_card(scores, out, title="Synthetic corpus", text_lengths=lengths,
                              source_info={"source": "data/web.jsonl", "ids_assigned": True})
    return path, path.read_text(encoding="utf-8"), scores, lengths


def test_size_section(card):
    path, md, _, lengths = card
    assert path.name == "card.md"
    assert md.startswith("# Synthetic corpus\n")
    assert "| source | `data/web.jsonl` |" in md
    values = np.asarray(lengths)
    assert "- Documents: 300\n" in md
    assert f"- Total characters: {int(values.sum()):,}\n" in md
    assert f"- Empty documents (0 characters): {int((values == 0).sum())}\n" in md
    p50 = np.percentile(values, 50)
    assert p50 == 2236  # an integer, so the card prints it in full
    header = "| min | p1 | p5 | p25 | p50 | p75 | p95 | p99 | max |"
    cells = md.split(header, 1)[1].splitlines()[2].strip("| ").split(" | ")
    assert cells[0] == "0" and cells[4] == "2,236" and cells[-1] == f"{values.max():,}"


def test_duplicate_rates(card):
    _, md, _, _ = card
    assert "| `exact_dup` | 20 | 6.67% | 10 | 3 |" in md
    assert "| `minhash` | 49 | 16.33% | 1 | 50 |" in md
    assert "Largest `minhash` clusters:" in md
    assert "| `0` | 50 |" in md


def test_language_mix(card):
    _, md, scores, _ = card
    conf = scores.column("langid_confidence").to_numpy()
    en = conf[:180]
    assert f"| `en` | 180 | 60.00% | {np.nanmean(en):.4g} |" in md
    assert "| `(none)` | 10 | 3.33% | " in md
    assert f"Mean confidence: {np.nanmean(conf):.4g}." in md


def test_keep_rates_and_reasons(card):
    _, md, scores, _ = card
    assert "| `gopher_quality` | 240 | 60 | 0 | 80.00% |" in md
    assert "| `gopher_repetition` | 270 | 30 | 0 | 90.00% |" in md
    assert "| `c4_quality` | 275 | 15 | 10 | 94.83% |" in md
    assert "| `fineweb_quality` | 300 | 0 | 0 | 100.00% |" in md
    gopher = md.split("### Drop reasons: `gopher_quality`", 1)[1]
    assert "| `word_count` | 40 | 66.67% | 13.33% |" in gopher
    assert "| `mean_word_length` | 20 | 33.33% | 6.67% |" in gopher
    assert "| `lorem_ipsum` | 15 | 100.00% | 5.00% |" in md
    fineweb = md.split("### Drop reasons: `fineweb_quality`", 1)[1]
    assert fineweb.lstrip().startswith("No documents dropped.")
    keeps = [scores.column(f"{p}_keep").to_pylist()
             for p in ("gopher_quality", "gopher_repetition", "c4_quality", "fineweb_quality")]
    combined = sum(all(k is True for k in row) for row in zip(*keeps, strict=True))
    assert (f"applying all 4 rule sets keeps {combined} of 300 documents "
            f"({100 * combined / N:.2f}%)") in md


def test_score_distributions_and_correlations(card):
    _, md, _, _ = card
    section = md.split("## Score distributions", 1)[1].split("## Correlations", 1)[0]
    for name in ("gopher_quality_word_count", "fasttext_quality_hq", "perplexity_ppl",
                 "langid_confidence"):
        assert f"| `{name}` |" in section
    for excluded in ("`id`", "exact_dup_cluster", "minhash_cluster"):
        assert excluded not in section
    assert "| `fasttext_quality_hq` | 295 | 5 |" in section
    assert "| `perplexity_tokens` | 0 | 300 | n/a |" in section
    correlations = md.split("## Correlations", 1)[1]
    assert "`fineweb_quality_line_count`" in correlations.split("\n\n")[1]  # skipped: constant
    assert "`perplexity_tokens`" in correlations.split("\n\n")[1]  # skipped: all null
    # ppl and nll are monotone in each other: the strongest pair, rho exactly +1.
    first_pair = correlations.split("| Spearman rho | documents |", 1)[1].splitlines()[2]
    assert first_pair == "| `perplexity_ppl` | `perplexity_nll` | +1.000 | 300 |"


def test_plots_are_pngs(card):
    path, md, _, _ = card
    linked = [part.split(")", 1)[0] for part in md.split("](")[1:]]
    assert set(linked) == {"length_histogram.png", "language_langid.png",
                           "drop_reasons_gopher_quality.png",
                           "drop_reasons_gopher_repetition.png", "drop_reasons_c4_quality.png",
                           "score_histograms.png", "score_correlations.png"}
    for name in linked:
        assert (path.parent / name).read_bytes().startswith(PNG_SIGNATURE), name
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files


def test_two_runs_are_identical(card, tmp_path):
    """A second run, over the same data split into Arrow chunks, gives the same bytes."""
    path, md, scores, lengths = card
    chunked = pa.concat_tables([scores.slice(0, 100), scores.slice(100)])
    chunked_lengths = pa.chunked_array([lengths.slice(0, 100), lengths.slice(100)])
    again = write_quality_card(chunked, tmp_path, title="Synthetic corpus",
                               text_lengths=chunked_lengths,
                               source_info={"source": "data/web.jsonl", "ids_assigned": True})
    assert again.read_text(encoding="utf-8") == md
    for png in path.parent.glob("*.png"):
        assert (tmp_path / png.name).read_bytes() == png.read_bytes(), png.name


def test_empty_table(tmp_path):
    scores, _ = make_scores()
    path = write_quality_card(scores.slice(0, 0), tmp_path, title="Empty",
                              text_lengths=pa.array([], pa.int64()))
    md = path.read_text(encoding="utf-8")
    assert "No documents" in md
    assert not list(tmp_path.glob("*.png"))


def test_absent_sections_are_named(tmp_path):
    scores = pa.table({"id": [0, 1, 2], "fasttext_quality_hq": [0.1, 0.5, 0.9]})
    md = write_quality_card(scores, tmp_path, title="Few").read_text(encoding="utf-8")
    assert "- Text lengths: not provided." in md
    assert "_No dedup scores" in md
    assert "_No language ID scores" in md
    assert "_No rule sets" in md
    assert "_Fewer than two varying numeric columns" in md
    assert "- Present (columns): `fasttext_quality` (1)" in md
    absent = md.split("- Absent:", 1)[1].splitlines()[0]
    assert "`langid`" in absent and "`el2n`" not in absent  # text scores: text kinds only


def test_length_mismatch_is_an_error(tmp_path):
    scores = pa.table({"id": [0, 1, 2]})
    with pytest.raises(ValueError, match="3 rows"):
        write_quality_card(scores, tmp_path, title="x", text_lengths=pa.array([1, 2]))


def test_spearman_matrix_matches_scipy_with_missing_values():
    rng = np.random.default_rng(1)
    a = rng.normal(size=200)
    b = a + rng.normal(size=200)
    c = np.round(rng.normal(size=200), 1)  # ties
    b[::7] = np.nan
    c[::11] = np.inf
    rho, count = _spearman_matrix([a, b, c])
    for i, j, x, y in ((0, 1, a, b), (0, 2, a, c), (1, 2, b, c)):
        both = np.isfinite(x) & np.isfinite(y)
        assert count[i, j] == both.sum()
        assert math.isclose(rho[i, j], spearmanr(x[both], y[both]).statistic, abs_tol=1e-12)
