"""The quality card: numbers in the Markdown, valid PNGs, determinism, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest
from scipy.stats import spearmanr

from curate.card import (
    TOP_LANGUAGES,
    Threshold,
    _heatmap_figure,
    _hist_spec,
    _histogram_grid,
    _language_figure,
    _spearman_matrix,
    _threshold_marks,
    score_file_params,
    write_quality_card,
)

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


# --- plots: axes chosen from the data, thresholds, labels that fit ----------------------


def _bars(ax) -> np.ndarray:
    return np.array([patch.get_height() for patch in ax.patches])


def test_axis_scale_follows_the_data():
    rng = np.random.default_rng(2)
    heavy = rng.lognormal(0, 2, 2000)  # positive, about seven decades
    spec = _hist_spec(heavy)
    assert spec.scale == "log"
    assert np.allclose(np.diff(np.log(spec.edges)), np.log(spec.edges[1] / spec.edges[0]))
    assert (spec.counts > 0).sum() > 20 and spec.counts.max() < 0.2 * len(heavy)
    assert spec.counts.sum() == len(heavy)
    narrow = rng.normal(100, 5, 2000)
    spec = _hist_spec(narrow)
    assert spec.scale == "linear" and spec.count_scale == "linear" and not spec.notes
    assert spec.edges[0] == narrow.min() and spec.edges[-1] == narrow.max()


def test_heavy_tail_with_zeros_keeps_the_zeros_in_view():
    """Like c4 sentences or cleaned length: many zeros, then counts over three decades."""
    rng = np.random.default_rng(3)
    values = np.r_[np.zeros(300), np.round(rng.lognormal(2, 1.5, 1700))]
    zeros = int((values == 0).sum())
    spec = _hist_spec(values)
    assert spec.scale == "symlog"
    assert spec.counts[0] == zeros and spec.counts.sum() == len(values)
    assert (spec.counts[2:] > 0).sum() > 10  # the positive values spread over many bins
    assert np.all(np.diff(spec.edges[2:]) >= 1)  # integers: no bin narrower than one
    assert spec.notes == (f"first bar: {zeros:,} at 0",)
    fig = _histogram_grid({"c4_quality_sentences": values})
    ax = fig.axes[0]
    assert ax.get_xscale() == "symlog"
    assert (_bars(ax) > 0).sum() > 10
    assert f"first bar: {zeros:,} at 0" in ax.get_xlabel()


def test_outliers_are_folded_into_the_last_bin():
    rng = np.random.default_rng(4)
    values = np.r_[rng.normal(0, 1, 1000), np.full(5, 1000.0)]  # negative: no log axis
    spec = _hist_spec(values)
    assert spec.scale == "linear"
    assert spec.edges[-1] < 10  # clipped at the 99th percentile, not stretched to 1000
    assert spec.counts[-1] >= 5 and spec.counts.sum() == len(values)
    assert (spec.counts > 0).sum() > 20
    above = int((values > spec.edges[-1]).sum())
    assert spec.notes == (f"last bin includes {above} above {spec.edges[-1]:.4g}",)
    # Before: 40 equal bins over [min, 1000] put all but five values in one bar.
    assert np.histogram(values, 40)[0].max() == 1000


def test_one_spike_gets_a_log_count_axis():
    values = np.r_[np.zeros(1900), np.linspace(0.01, 0.4, 100)]  # a spike, a thin spread
    spec = _hist_spec(values)
    assert spec.count_scale == "log"
    assert (spec.counts > 0).sum() > 10
    assert _hist_spec(np.arange(100.0)).count_scale == "linear"


def test_integer_bins_are_aligned():
    spec = _hist_spec(np.arange(0, 61, dtype=float))  # 61 integers: two per bin
    assert np.all(spec.edges == np.round(spec.edges - 0.5) + 0.5)
    assert set(np.diff(spec.edges)) == {2.0}
    assert spec.counts.sum() == 61 and spec.counts.max() == 2


def test_language_chart_is_log_sorted_with_other():
    labels = [f"l{i:02d}" for i in range(30)]
    counts = np.array([5000, 300, 40] + [3] * 27)
    fig = _language_figure(labels, counts, int(counts.sum()), "langid")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log"
    ticks = [t.get_text() for t in ax.get_yticklabels()]
    assert len(ticks) == TOP_LANGUAGES + 1
    assert ticks[:3] == ["l00", "l01", "l02"]
    assert ticks[-1] == f"other ({30 - TOP_LANGUAGES} languages)"
    widths = [p.get_width() for p in ax.patches]
    assert widths[:TOP_LANGUAGES] == sorted(widths[:TOP_LANGUAGES], reverse=True)
    assert widths[-1] == counts[TOP_LANGUAGES:].sum()
    texts = [t.get_text() for t in ax.texts]
    assert "3 (0.06%)" in texts  # every bar has its count written beside it


def test_language_chart_in_card(card):
    path, md, _, _ = card
    assert "![langid language mix](language_langid.png)" in md


def _lines(ax) -> dict[str, float]:
    out = {}
    for line in ax.get_lines():
        xs = line.get_xdata()
        if len(xs) == 2 and xs[0] == xs[1]:
            out[line.get_label()] = float(xs[0])
    return out


def test_threshold_lines_at_parameter_values():
    rng = np.random.default_rng(5)
    words = rng.integers(1, 3000, 500).astype(float)
    columns = ["gopher_quality_word_count", "gopher_quality_mean_word_length",
               "gopher_repetition_dup_line_frac", "c4_quality_sentences"]
    marks = _threshold_marks(["gopher_quality", "gopher_repetition", "c4_quality"],
                             {"gopher_quality": {"min_doc_words": 80}}, columns)
    assert marks["gopher_quality_word_count"] == [
        Threshold("min_doc_words", 80.0, False), Threshold("max_doc_words", 100000.0, True)]
    assert [m.value for m in marks["gopher_quality_mean_word_length"]] == [3.0, 10.0]
    assert marks["c4_quality_sentences"] == [Threshold("min_num_sentences", 5.0, True)]
    # A check turned off (None, 0, -1) draws nothing.
    off = _threshold_marks(["gopher_quality", "c4_quality"],
                           {"gopher_quality": {"min_doc_words": None, "max_doc_words": 0},
                            "c4_quality": {"min_num_sentences": -1}}, columns)
    assert "gopher_quality_word_count" not in off and "c4_quality_sentences" not in off
    fig = _histogram_grid({"gopher_quality_word_count": words}, marks)
    ax = fig.axes[0]
    lines = _lines(ax)
    assert lines["min_doc_words = 80"] == 80
    assert lines["max_doc_words = 100,000 (default) (off axis, right)"] == 100000
    assert ax.get_xlim()[1] <= words.max() + 1  # the far threshold does not squash the data
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == list(lines)


def test_ngram_thresholds_come_from_pairs():
    columns = [f"gopher_repetition_dup_{n}_gram_frac" for n in (5, 6)]
    marks = _threshold_marks(["gopher_repetition"],
                             {"gopher_repetition": {"dup_n_grams": [[5, 0.25], [6, 0.2]]}},
                             columns)
    assert marks == {columns[0]: [Threshold("dup_n_grams[5]", 0.25, False)],
                     columns[1]: [Threshold("dup_n_grams[6]", 0.2, False)]}


def test_threshold_attributes_name_real_parameters_and_columns():
    import inspect

    from scorers.text.c4 import C4Quality
    from scorers.text.fineweb import FineWebQuality
    from scorers.text.gopher import GopherQuality, GopherRepetition

    batch = pa.table({"text": ["The cat sat on the mat. It was a good day to be a cat.\n"
                               "And the dog was there with the cat, too. It sat.\n" * 3]})
    for cls in (GopherQuality, GopherRepetition, C4Quality, FineWebQuality):
        params = inspect.signature(cls.__init__).parameters
        out = cls().score_batch(batch).column_names
        assert cls.thresholds, cls.__name__
        for suffix, names in cls.thresholds.items():
            for name in names:
                assert name in params, (cls.__name__, name)
                pairs = params[name].default if "{n}" in suffix else [(None, None)]
                for n, _ in pairs:
                    column = f"{cls.name}_{suffix.replace('{n}', str(n))}"
                    assert column in out, (cls.__name__, column)


def test_card_lists_thresholds_and_their_source(card, tmp_path):
    _, md, scores, lengths = card
    section = md.split("## Score distributions", 1)[1].split("## Correlations", 1)[0]
    assert "| `gopher_quality_word_count` | `min_doc_words` | 50 | scorer default |" in section
    assert "not given the parameters that `gopher_quality` ran with" in section
    again = write_quality_card(scores, tmp_path, title="x", text_lengths=lengths,
                               scorer_params={"gopher_quality": {"min_doc_words": 120}})
    section = again.read_text(encoding="utf-8").split("## Score distributions", 1)[1]
    assert "| `gopher_quality_word_count` | `min_doc_words` | 120 | scores' parameters |" \
        in section
    assert "| `gopher_quality_word_count` | `max_doc_words` | 100,000 | scorer default |" \
        in section
    assert "not given the parameters" not in section


def test_score_file_params_reads_parquet_metadata(tmp_path):
    from curate.scores import save_scores

    table = pa.table({"id": [0, 1], "gopher_quality_word_count": [10, 20]})
    save_scores({"gopher_quality": table}, tmp_path,
                {"gopher_quality": {"scorer": "gopher_quality",
                                    "params": {"min_doc_words": 7}}})
    save_scores({"langid": pa.table({"id": [0, 1]})}, tmp_path)  # no params stored
    assert score_file_params(tmp_path) == {"gopher_quality": {"min_doc_words": 7}}
    assert score_file_params([tmp_path / "gopher_quality.parquet"]) == {
        "gopher_quality": {"min_doc_words": 7}}


def _outside(fig, artists) -> list[str]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    bad = []
    for text in artists:
        if not text.get_text():
            continue
        ext = text.get_window_extent(renderer)
        if ext.x0 < box.x0 - 1 or ext.y0 < box.y0 - 1 or ext.x1 > box.x1 + 1 \
                or ext.y1 > box.y1 + 1:
            bad.append(text.get_text())
    return bad


def test_heatmap_labels_fit_and_drop_prefixes():
    names = ([f"gopher_repetition_dup_{n}_gram_frac" for n in range(5, 11)]
             + ["gopher_quality_word_count", "gopher_quality_mean_word_length",
                "fineweb_quality_line_punct_ratio", "fineweb_quality_char_dup_ratio",
                "c4_quality_sentences", "langid_confidence"]
             + [f"a_very_long_unregistered_column_name_number_{i}_of_many" for i in range(14)])
    k = len(names)
    rho = np.eye(k)
    fig = _heatmap_figure(names, rho)
    ax = fig.axes[0]
    xticks = [t.get_text() for t in ax.get_xticklabels()]
    assert xticks[0] == "dup_5_gram_frac" and xticks[6] == "word_count"
    assert xticks[11] == "confidence"
    assert all(len(t) <= 36 for t in xticks)
    assert len(set(xticks)) == k  # shortened, still distinct
    texts = ax.get_xticklabels() + ax.get_yticklabels()
    groups = ax.child_axes  # the scorer names above the heatmap
    group_texts = [t for a in groups for t in a.get_xticklabels() if t.get_text()]
    assert {t.get_text() for t in group_texts} >= {"gopher_repetition", "gopher_quality",
                                                   "fineweb_quality", "c4_quality", "langid"}
    assert _outside(fig, texts + group_texts) == []


def test_heatmap_keeps_full_names_when_suffixes_clash():
    names = ["gopher_quality_word_count", "c4_quality_word_count", "langid_confidence"]
    fig = _heatmap_figure(names, np.eye(3))
    ax = fig.axes[0]
    xticks = [t.get_text() for t in ax.get_xticklabels()]
    assert xticks == ["gopher_quality_word_count", "c4_quality_word_count", "confidence"]
    assert _outside(fig, ax.get_xticklabels() + ax.get_yticklabels()) == []


def test_heatmap_of_one_scorer_names_it_in_the_title():
    names = ["gopher_quality_word_count", "gopher_quality_token_count",
             "gopher_quality_stop_words"]
    fig = _heatmap_figure(names, np.eye(3))
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["word_count", "token_count",
                                                            "stop_words"]
    assert "gopher_quality" in ax.get_title()
