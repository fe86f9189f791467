"""Scorer parameters, and three signals that were hard to read or dangerous to load.

* Every constructor parameter of every text, dedup and model scorer is checked when the
  scorer is built: a bad value is one ``CurateError`` line naming the scorer, the parameter
  and what was expected; values written as text (``key=value`` on the command line, YAML)
  are converted, lists written ``a;b;c``; ``type(s)(**s.params())`` rebuilds an equal
  scorer.
* ``gopher_repetition_top_{n}_gram_frac`` is a fraction in [0, 1] of the word characters
  covered by the most frequent n-gram; DataTrove's own score (which exceeds 1 on a run of
  a repeated word) is ``top_{n}_gram_datatrove`` and still makes the decision.
* ``minhash_jaccard`` is null for documents that are kept (no 1.0 for a non-duplicate),
  and MinHash clusters are transitive.
* A truncated or foreign fastText ``.bin`` fails fast with a clear error instead of making
  fastText read forever.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import fasttext
import pyarrow as pa
import pytest

from curate.core.errors import CurateError
from curate.core.registry import make_scorer
from scorers.dedup import ExactDup, MinHashDup
from scorers.fasttext_quality import FastTextQuality, check_fasttext_bin
from scorers.langid import LANGUAGES, LangID, identifier
from scorers.perplexity import Perplexity
from scorers.text.c4 import C4Quality
from scorers.text.fineweb import FineWebQuality
from scorers.text.gopher import GopherQuality, GopherRepetition, NGrams
from scorers.text.tokenize import words as text_words

ROOT = Path(__file__).resolve().parents[1]

PROSE = ("The committee met on Tuesday to discuss the budget for the coming year, and the "
         "members agreed that the library should have a larger share of the funds. ")


def rows(scorer, *texts) -> list[dict]:
    return scorer.score_batch(pa.table({"text": pa.array(list(texts), pa.string())})).to_pylist()


def dedup(scorer, texts) -> pa.Table:
    """``score_batch`` then ``finalize``, as the executor runs a dedup scorer."""
    out = scorer.score_batch(pa.table({"text": pa.array(texts, pa.string())}))
    return scorer.finalize(out.add_column(0, "id", pa.array(range(len(texts)), pa.int64())))


# ------------------------------------------------------------------ models used below

def train_bin(path: Path, seed: int = 0) -> Path:
    """A tiny supervised fastText model saved as ``path`` (trained in well under a second)."""
    rng = random.Random(seed)
    good = ["committee", "library", "budget", "members", "agreed", "funds", "discussed"]
    bad = ["click", "cheap", "casino", "free", "login", "deals", "win"]
    lines = [f"__label__hq {' '.join(rng.choices(good, k=8))}" for _ in range(60)]
    lines += [f"__label__lq {' '.join(rng.choices(bad, k=8))}" for _ in range(60)]
    rng.shuffle(lines)
    train = path.with_suffix(".txt")
    train.write_text("\n".join(lines) + "\n")
    for attempt in range(3):  # this fastText build sporadically aborts with "Encountered NaN"
        try:
            model = fasttext.train_supervised(str(train), wordNgrams=2, dim=8, bucket=2_000,
                                              epoch=5, thread=1, seed=seed, verbose=0)
            break
        except RuntimeError:
            if attempt == 2:
                raise
    model.save_model(str(path))
    return path


@pytest.fixture(scope="module")
def model_files(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    perplexity = folder / "ref.npz"
    Perplexity().fit([PROSE, "The members met again.\nThe library agreed."] * 3,
                     order=2, min_count=1).save(perplexity)
    return {"bin": train_bin(folder / "quality.bin"), "npz": perplexity}


# ------------------------------------------------------------------ bad values fail at construction

BAD = [
    (GopherQuality, "min_doc_words", "abc", "an integer >= 0"),
    (GopherQuality, "min_doc_words", -5, "an integer >= 0"),
    (GopherQuality, "max_doc_words", 2.5, "an integer >= 0"),
    (GopherQuality, "min_avg_word_length", "short", "a number >= 0"),
    (GopherQuality, "max_avg_word_length", -1, "a number >= 0"),
    (GopherQuality, "max_symbol_word_ratio", "lots", "a number >= 0"),
    (GopherQuality, "max_bullet_lines_ratio", 1.5, "<= 1"),
    (GopherQuality, "max_ellipsis_lines_ratio", "x", "a number"),
    (GopherQuality, "max_non_alpha_words_ratio", -0.1, "a number >= 0"),
    (GopherQuality, "min_stop_words", "two", "an integer >= 0"),
    (GopherQuality, "stop_words", 7, "a list of strings"),
    (GopherQuality, "text_column", "", "a non-empty string"),
    (GopherRepetition, "dup_line_frac", "abc", "a number"),
    (GopherRepetition, "dup_para_frac", 2, "<= 1"),
    (GopherRepetition, "dup_line_char_frac", -1, ">= 0"),
    (GopherRepetition, "dup_para_char_frac", "x", "a number"),
    (GopherRepetition, "top_n_grams", "2", "(n, threshold) pairs"),
    (GopherRepetition, "top_n_grams", "0:0.2", "n must be an integer >= 1"),
    (GopherRepetition, "top_n_grams", "2:0.2;2:0.3", "each n once"),
    (GopherRepetition, "top_n_grams", 5, "(n, threshold) pairs"),
    (GopherRepetition, "dup_n_grams", [(5, -0.1)], "threshold must be a number >= 0"),
    (GopherRepetition, "dup_n_grams", [(5, 0.1, 3)], "(n, threshold) pairs"),
    (GopherRepetition, "all_signals", "always", "true or false"),
    (GopherRepetition, "text_column", None, "a non-empty string"),
    (C4Quality, "split_paragraph", "maybe", "true or false"),
    (C4Quality, "remove_citations", 2, "true or false"),
    (C4Quality, "filter_no_terminal_punct", None, "true or false"),
    (C4Quality, "min_num_sentences", -2, "an integer >= -1"),
    (C4Quality, "min_words_per_line", "three", "an integer >= 0"),
    (C4Quality, "max_word_length", "long", "an integer >= -1"),
    (C4Quality, "filter_lorem_ipsum", "sometimes", "true or false"),
    (C4Quality, "filter_javascript", 0.5, "true or false"),
    (C4Quality, "filter_curly_bracket", "x", "true or false"),
    (C4Quality, "filter_policy", [], "true or false"),
    (C4Quality, "text_column", 3, "a non-empty string"),
    (FineWebQuality, "line_punct_thr", 1.2, "<= 1"),
    (FineWebQuality, "line_punct_exclude_zero", "perhaps", "true or false"),
    (FineWebQuality, "stop_chars", 5, "a list of strings"),
    (FineWebQuality, "short_line_thr", "most", "a number"),
    (FineWebQuality, "short_line_length", -1, "an integer >= 0"),
    (FineWebQuality, "char_duplicates_ratio", -0.5, ">= 0"),
    (FineWebQuality, "new_line_ratio", "many", "a number >= 0"),
    (FineWebQuality, "all_signals", "lazily", "true or false"),
    (FineWebQuality, "text_column", "", "a non-empty string"),
    (ExactDup, "normalize", "stem", "one of 'none', 'whitespace', 'lower', 'alnum'"),
    (ExactDup, "text_column", 1, "a non-empty string"),
    (MinHashDup, "ngram", 0, "an integer >= 1"),
    (MinHashDup, "num_perm", "many", "an integer >= 1"),
    (MinHashDup, "bands", 12, "divide num_perm"),
    (MinHashDup, "threshold", 0, "a number > 0 <= 1"),
    (MinHashDup, "threshold", "1.5", "a number > 0 <= 1"),
    (MinHashDup, "verify", "perhaps", "true or false"),
    (MinHashDup, "seed", -1, "an integer >= 0"),
    (MinHashDup, "text_column", "", "a non-empty string"),
    (LangID, "languages", "en;xx", "codes langid knows"),
    (LangID, "languages", [], "codes langid knows"),
    (LangID, "languages", 3, "a list of strings"),
    (LangID, "max_chars", 0, "an integer >= 1"),
    (LangID, "max_chars", "lots", "an integer >= 1"),
    (LangID, "text_column", "", "a non-empty string"),
    (FastTextQuality, "model", 3, "the path of a .bin file"),
    (FastTextQuality, "label", 5, "a non-empty string"),
    (FastTextQuality, "text_column", "", "a non-empty string"),
    (Perplexity, "model", 3, "the path of a .npz file"),
    (Perplexity, "text_column", None, "a non-empty string"),
]


@pytest.mark.parametrize("cls, param, value, expected", BAD,
                         ids=[f"{c.name}-{p}-{v!r}" for c, p, v, _ in BAD])
def test_bad_value_fails_at_construction_in_one_line(cls, param, value, expected):
    with pytest.raises(CurateError) as info:
        cls(**{param: value})
    message = str(info.value)
    assert message.startswith(f"{cls.name}: {param}")
    assert expected in message and "\n" not in message


def test_every_constructor_parameter_is_covered():
    """Each parameter of each scorer has at least one bad value above."""
    import inspect

    for cls in {c for c, *_ in BAD}:
        params = set(inspect.signature(cls.__init__).parameters) - {"self"}
        assert params == {p for c, p, *_ in BAD if c is cls}, cls.name


@pytest.mark.parametrize("spec, message", [
    ("gopher_quality:min_doc_words=abc", "gopher_quality: min_doc_words must be an integer"),
    ("gopher_quality:min_doc_words=-5", "gopher_quality: min_doc_words must be an integer"),
    ("gopher_repetition:top_n_grams=2:x", "gopher_repetition: top_n_grams threshold"),
    ("fineweb_quality:line_punct_thr=high", "fineweb_quality: line_punct_thr"),
    ("minhash:threshold=0", "minhash: threshold"),
    ("langid:languages=en;zz", "langid: languages"),
])
def test_command_line_specs_fail_before_scoring(spec, message):
    """The defect: ``min_doc_words=abc`` used to pass and crash mid-scoring with TypeError."""
    with pytest.raises(CurateError, match=re.escape(message)):
        make_scorer(spec)


def test_text_values_are_converted():
    gq = make_scorer("gopher_quality:min_doc_words=10,max_symbol_word_ratio=0.2,"
                     "stop_words=the;of;and,min_stop_words=none")
    assert (gq.min_doc_words, gq.max_symbol_word_ratio) == (10, 0.2)
    assert gq.stop_words == ["the", "of", "and"] and gq.min_stop_words is None
    # values that stay text after the command-line parse (as YAML strings do) convert too
    gq = GopherQuality(min_doc_words="10", max_avg_word_length="12.5", stop_words=" the ; of ")
    assert (gq.min_doc_words, gq.max_avg_word_length, gq.stop_words) == (10, 12.5,
                                                                         ["the", "of"])
    rep = make_scorer("gopher_repetition:top_n_grams=2:0.25;4:0.1,dup_n_grams=")
    assert rep.top_n_grams == ((2, 0.25), (4, 0.1)) and rep.dup_n_grams == ()
    assert GopherRepetition(top_n_grams={"3": "0.5"}).top_n_grams == ((3, 0.5),)
    assert GopherRepetition(top_n_grams=[["2", "0.3"], "3:0.2"]).top_n_grams == ((2, 0.3),
                                                                                (3, 0.2))
    assert GopherRepetition(dup_n_grams=None).dup_n_grams == ()
    c4 = C4Quality(split_paragraph="false", min_num_sentences="-1", max_word_length="50")
    assert (c4.split_paragraph, c4.min_num_sentences, c4.max_word_length) == (False, -1, 50)
    fw = make_scorer("fineweb_quality:stop_chars=.;!,short_line_length=20,"
                     "line_punct_exclude_zero=yes")
    assert fw.stop_chars == (".", "!") and fw.short_line_length == 20
    assert fw.line_punct_exclude_zero is True
    mh = MinHashDup(ngram="3", num_perm="64", bands="8", threshold="0.7", verify="no",
                    seed="2")
    assert (mh.ngram, mh.num_perm, mh.bands, mh.threshold, mh.verify, mh.seed) == (
        3, 64, 8, 0.7, False, 2)
    assert LangID(languages="en;de", max_chars="100").languages == ["en", "de"]
    assert LangID(languages="en+de").languages == ["en", "de"]  # the older syntax
    assert LangID(max_chars="100").max_chars == 100


def test_converted_values_score_like_native_ones():
    texts = [PROSE * 3, "Go team go! Go go go go go go go go go go!\nLet's go!",
             "- item\n" * 20, ""]
    pairs = [(GopherQuality(min_doc_words="20", stop_words="the;and"),
              GopherQuality(min_doc_words=20, stop_words=["the", "and"])),
             (GopherRepetition(top_n_grams="2:0.3;3:0.25"),
              GopherRepetition(top_n_grams=((2, 0.3), (3, 0.25)))),
             (FineWebQuality(stop_chars=".;!", line_punct_thr="0.5"),
              FineWebQuality(stop_chars=(".", "!"), line_punct_thr=0.5)),
             (C4Quality(min_num_sentences="2"), C4Quality(min_num_sentences=2))]
    for text_built, native in pairs:
        assert rows(text_built, *texts) == rows(native, *texts)


def test_defaults_are_unchanged():
    assert GopherQuality().params() == {
        "min_doc_words": 50, "max_doc_words": 100000, "min_avg_word_length": 3,
        "max_avg_word_length": 10, "max_symbol_word_ratio": 0.1,
        "max_bullet_lines_ratio": 0.9, "max_ellipsis_lines_ratio": 0.3,
        "max_non_alpha_words_ratio": 0.8, "min_stop_words": 2, "stop_words": None,
        "text_column": "text"}
    rep = GopherRepetition()
    assert rep.top_n_grams == ((2, 0.2), (3, 0.18), (4, 0.16))
    assert rep.dup_n_grams == ((5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11),
                               (10, 0.10))
    assert (rep.dup_line_frac, rep.dup_para_frac, rep.dup_line_char_frac,
            rep.dup_para_char_frac) == (0.3, 0.3, 0.2, 0.2)
    assert FineWebQuality().stop_chars is None and C4Quality().min_num_sentences == 5
    assert LangID().languages is None
    assert (MinHashDup().bands, MinHashDup().threshold) == (16, 0.8)


def scorer_instances(model_files) -> list:
    return [
        GopherQuality(), GopherQuality(min_doc_words="0", max_avg_word_length=None,
                                       stop_words="cat;dog", text_column="body"),
        GopherRepetition(), GopherRepetition(top_n_grams="2:0.5", dup_n_grams=(),
                                             dup_line_frac=0),
        C4Quality(), C4Quality(split_paragraph=False, max_word_length=-1),
        FineWebQuality(), FineWebQuality(stop_chars=".;!", new_line_ratio=2),
        ExactDup(), ExactDup(normalize="alnum"),
        MinHashDup(), MinHashDup(num_perm=64, bands=8, verify=False, seed=3),
        LangID(), LangID(languages="fr;de", max_chars=300),
        FastTextQuality(), FastTextQuality(model=model_files["bin"], label="lq"),
        Perplexity(), Perplexity(model=model_files["npz"]),
    ]


def test_params_round_trip_to_an_equal_scorer(model_files):
    for scorer in scorer_instances(model_files):
        params = scorer.params()
        json.dumps(params)  # plain data, as manifests and fingerprints store it
        rebuilt = type(scorer)(**params)
        assert rebuilt.params() == params, scorer.name
        assert repr(rebuilt) == repr(scorer)
        # and through JSON, as a manifest hands them back
        assert type(scorer)(**json.loads(json.dumps(params))).params() == params


def test_rebuilt_rule_sets_score_identically(model_files):
    texts = [PROSE * 4, "word " * 80, "I am your father.\n" * 5, "", "Short one."]
    for scorer in scorer_instances(model_files)[:8]:
        scorer = scorer.with_text_column("text")
        rebuilt = type(scorer)(**scorer.params())
        assert rows(rebuilt, *texts) == rows(scorer, *texts)


def test_langid_language_list_is_the_models():
    assert sorted(LANGUAGES) == sorted(identifier().nb_classes)


def test_model_files_are_checked_at_construction(tmp_path, model_files):
    with pytest.raises(CurateError, match="not found"):
        FastTextQuality(model=tmp_path / "missing.bin")
    cut = tmp_path / "cut.bin"
    cut.write_bytes(model_files["bin"].read_bytes()[:200])
    with pytest.raises(CurateError, match="not a complete fastText model"):
        FastTextQuality(model=cut)
    with pytest.raises(CurateError, match="perplexity model not found"):
        Perplexity(model=tmp_path / "missing.npz")


def test_fit_parameters_are_checked(tmp_path):
    with pytest.raises(CurateError, match=r"fasttext_quality.fit: dim must be an integer >= 1"):
        FastTextQuality().fit(["good text"], ["bad text"], dim=0)
    with pytest.raises(CurateError, match=r"fasttext_quality.fit: bucket must be an integer >= 1"):
        FastTextQuality().fit(["good text"], ["bad text"], bucket=0)  # word bigrams hash in
    with pytest.raises(CurateError, match=r"fasttext_quality.fit: lr must be a number > 0"):
        FastTextQuality().fit(["good text"], ["bad text"], lr="fast")
    with pytest.raises(CurateError, match=r"perplexity.fit: order must be an integer >= 1"):
        Perplexity().fit([PROSE], order=0)


# ------------------------------------------------------------------ top n-gram fraction

#: A real-looking post whose top 4-gram DataTrove scores 1.27 (overlapping "go go go go").
CHEER = "Go team go! Go go go go go go go go go go!\nLet's go!"


def test_top_ngram_fraction_of_a_chant_is_bounded():
    row = rows(GopherRepetition(all_signals=True), CHEER)[0]
    # DataTrove's score: "go go go go" (11 characters) x 7 overlapping occurrences over 52
    # characters of text -- more than the whole document.
    assert row["gopher_repetition_top_4_gram_datatrove"] == pytest.approx(11 * 6 / 52)
    assert row["gopher_repetition_top_4_gram_datatrove"] > 1.2
    # The readable signal: the 9 lowercase "go" after "Go" are 18 of the 38 token
    # characters (Go team go ! Go go x9 ! Let 's go !), whatever n is.
    for n in (2, 3, 4):
        assert row[f"gopher_repetition_top_{n}_gram_frac"] == pytest.approx(18 / 38)
    assert row["gopher_repetition_reason"] == "top_2_gram"


def test_top_ngram_fraction_without_overlap_counts_each_occurrence():
    text = "red apple pie and red apple pie with cream"
    row = rows(GopherRepetition(dup_n_grams=(), all_signals=True), text)[0]
    # top 3-gram "red apple pie" twice: 22 of the 34 token characters
    assert row["gopher_repetition_top_3_gram_frac"] == pytest.approx(22 / 34)
    assert row["gopher_repetition_top_3_gram_datatrove"] == pytest.approx(26 / len(text))
    assert rows(GopherRepetition(), "one")[0]["gopher_repetition_top_2_gram_frac"] == 0


def brute_force_coverage(words: list[str], n: int) -> float:
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    top = Counter(grams).most_common(1)[0][0]
    covered = {i + k for i, g in enumerate(grams) if g == top for k in range(n)}
    return sum(len(words[i]) for i in covered) / sum(map(len, words))


def test_top_ngram_fraction_matches_its_definition_and_stays_in_bounds():
    rng = random.Random(3)
    for _ in range(500):
        words = rng.choices(["go", "a", "team", "!", "la"][:rng.randint(1, 5)],
                            k=rng.randint(1, 40))
        grams = NGrams.of_words(words)
        for n in (1, 2, 3, 4):
            if len(words) < n:
                assert grams.top_coverage(n)[0] == 0
                continue
            frac = grams.top_coverage(n)[0] / grams.chars[-1]
            assert 0 < frac <= 1
            assert frac == pytest.approx(brute_force_coverage(words, n))


REPETITIVE = [
    CHEER,
    "lol lol lol lol lol lol lol lol lol lol lol lol lol lol lol\n\nthat was funny",
    "hahaha ha ha ha ha ha ha ha ha ha ha ha ha ha ha lol",
    "Na na na na, na na na na, hey hey hey, goodbye.\n" * 6,
    "No no no no no no no no! I said no. " + PROSE,
    PROSE * 2 + "Buy now buy now buy now buy now buy now.",
]


def test_top_ngram_decisions_still_match_datatrove():
    pytest.importorskip("spacy")
    filters = pytest.importorskip("datatrove.pipeline.filters")
    helpers = pytest.importorskip("datatrove.pipeline.filters.gopher_repetition_filter")
    from datatrove.data import Document

    scorer, reference = GopherRepetition(all_signals=True), filters.GopherRepetitionFilter()
    for text, row in zip(REPETITIVE, rows(scorer, *REPETITIVE), strict=True):
        result = reference.filter(Document(text=text, id="0"))
        assert row["gopher_repetition_reason"] == (None if result is True else result[1])
        words = text_words(text)
        for n in (2, 3, 4):
            datatrove = helpers.find_top_duplicate(helpers.get_n_grams(words, n)) / len(text)
            assert row[f"gopher_repetition_top_{n}_gram_datatrove"] == pytest.approx(datatrove)
            assert 0 <= row[f"gopher_repetition_top_{n}_gram_frac"] <= 1
    # the documents that motivated the change: DataTrove's own score is above 1
    assert max(r["gopher_repetition_top_4_gram_datatrove"]
               for r in rows(scorer, *REPETITIVE)) > 1


def test_moving_a_top_ngram_threshold_uses_datatrove_score():
    """A threshold is compared with ``top_{n}_gram_datatrove``, as DataTrove compares it."""
    row = rows(GopherRepetition(all_signals=True), CHEER)[0]
    score = row["gopher_repetition_top_2_gram_datatrove"]
    just_above = GopherRepetition(top_n_grams=[(2, score + 1e-9)], dup_n_grams=())
    just_below = GopherRepetition(top_n_grams=[(2, score - 1e-9)], dup_n_grams=())
    assert rows(just_above, CHEER)[0]["gopher_repetition_reason"] is None
    assert rows(just_below, CHEER)[0]["gopher_repetition_reason"] == "top_2_gram"


# ------------------------------------------------------------------ minhash_jaccard

def words_text(rng: random.Random, n: int) -> list[str]:
    vocab = [f"w{i}" for i in range(3000)]
    return [rng.choice(vocab) for _ in range(n)]


def test_minhash_jaccard_is_null_for_documents_that_duplicate_nothing():
    rng = random.Random(11)
    texts = [" ".join(words_text(rng, 150)) for _ in range(12)] + ["", None, "tiny"]
    out = dedup(MinHashDup(), texts)
    assert not any(out.column("minhash_duplicate").to_pylist())
    assert out.column("minhash_jaccard").null_count == len(texts)
    assert out.schema.field("minhash_jaccard").type == pa.float64()


def test_minhash_jaccard_of_duplicates_and_representatives():
    rng = random.Random(12)
    base = words_text(rng, 200)
    edited = list(base)
    edited[100] = "changed"
    texts = [" ".join(base), " ".join(words_text(rng, 200)), " ".join(edited), " ".join(base)]
    out = dedup(MinHashDup(), texts).to_pylist()
    assert [r["minhash_cluster"] for r in out] == [0, 1, 0, 0]
    assert out[0]["minhash_jaccard"] is None  # the representative
    assert out[1]["minhash_jaccard"] is None  # in no cluster
    assert 0.85 < out[2]["minhash_jaccard"] < 1.0  # one word of 200 changed
    assert out[3]["minhash_jaccard"] == 1.0  # an exact copy is a duplicate at 1.0


def test_minhash_clusters_are_transitive_and_jaccard_shows_it():
    """Windows sliding over one text: each overlaps the next (Jaccard ~0.87), so all are one
    cluster, although the first and the last share less than half their shingles."""
    stream = words_text(random.Random(5), 2000)
    texts = [" ".join(stream[20 * k:20 * k + 300]) for k in range(8)]
    out = dedup(MinHashDup(), texts)
    assert out.column("minhash_cluster").to_pylist() == [0] * 8
    jaccard = out.column("minhash_jaccard").to_pylist()
    assert jaccard[0] is None and all(0 < j < 1 for j in jaccard[1:])
    shingles = [{tuple(stream[i:i + 5]) for i in range(20 * k, 20 * k + 296)} for k in (0, 7)]
    exact = len(shingles[0] & shingles[1]) / len(shingles[0] | shingles[1])
    assert exact < 0.4
    assert jaccard[1] > MinHashDup().verify_cutoff  # the first link is a verified pair
    assert jaccard[7] < 0.5 < MinHashDup().threshold  # a duplicate far below the threshold


# ------------------------------------------------------------------ truncated fastText models

LOADER = """
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))  # a reading loop cannot eat the host
from curate.core.errors import CurateError
from scorers.fasttext_quality import FastTextQuality
out = {}
for path in sys.argv[1:]:
    try:
        scorer = FastTextQuality.load(path)
        out[path] = "loaded " + scorer.scored_label()
    except CurateError as exc:
        out[path] = str(exc)
print(json.dumps(out))
"""


def load_in_subprocess(paths: list[Path]) -> dict[str, str]:
    """Load each model in a child process; a load that hangs fails the test, not CI."""
    try:
        done = subprocess.run([sys.executable, "-c", LOADER, *map(str, paths)], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        pytest.fail("loading a damaged fastText model hung")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_truncated_and_foreign_fasttext_files_fail_fast(tmp_path, model_files):
    data = model_files["bin"].read_bytes()
    inside_word = data.find(b"committee") + 4  # fastText would read this word forever
    last_label = data.rfind(b"__label__")
    cuts = {"empty": 0, "magic": 3, "signature": 8, "arguments": 40, "dictionary header": 70,
            "dictionary word": inside_word, "label entry": last_label + 12,
            "input matrix header": last_label + 11 + 10 + 1 + 4,
            "input matrix": len(data) // 2, "output matrix": len(data) - 40,
            "last byte": len(data) - 1}
    assert 0 < inside_word < last_label < len(data) // 2
    paths = {}
    for name, size in cuts.items():
        paths[name] = tmp_path / f"cut-{name.replace(' ', '-')}.bin"
        paths[name].write_bytes(data[:size])
    rng = random.Random(0)
    paths["random bytes"] = tmp_path / "random.bin"
    paths["random bytes"].write_bytes(rng.randbytes(50_000))
    paths["random after a valid signature"] = tmp_path / "signed-random.bin"
    paths["random after a valid signature"].write_bytes(data[:8] + rng.randbytes(50_000))
    paths["text"] = tmp_path / "text.bin"
    paths["text"].write_text("__label__hq not a model at all\n" * 100)
    paths["complete"] = model_files["bin"]

    results = load_in_subprocess(list(paths.values()))
    assert results[str(paths.pop("complete"))] == "loaded hq"
    for name, path in paths.items():
        message = results[str(path)]
        assert message.startswith(f"{path}: not a complete fastText model: "), (name, message)
        assert "\n" not in message


def test_checker_accepts_complete_models_and_names_what_is_missing(tmp_path, model_files):
    data = model_files["bin"].read_bytes()
    check_fasttext_bin(str(model_files["bin"]))
    (tmp_path / "longer.bin").write_bytes(data + b"\0" * 16)  # fastText ignores the tail
    check_fasttext_bin(str(tmp_path / "longer.bin"))
    cut = tmp_path / "cut.bin"
    for size, what in [(5, "8-byte signature"), (30, "arguments"),
                       (data.find(b"committee") + 4, "dictionary"),
                       (len(data) // 2, "input matrix"), (len(data) - 1, "output matrix")]:
        cut.write_bytes(data[:size])
        with pytest.raises(CurateError, match=what):
            check_fasttext_bin(str(cut))
    cut.write_bytes(b"\x00" * 4 + data[4:])
    with pytest.raises(CurateError, match="magic number 0, expected 793712314"):
        check_fasttext_bin(str(cut))
    cut.write_bytes(data[:4] + (13).to_bytes(4, "little") + data[8:])
    with pytest.raises(CurateError, match="version 13"):
        check_fasttext_bin(str(cut))


def test_pickled_model_bytes_are_checked_too(model_files):
    scorer = FastTextQuality.load(model_files["bin"])
    clone = FastTextQuality.__new__(FastTextQuality)
    clone.__setstate__({**scorer.__getstate__(), "_path": None, "model": None,
                        "_bin": model_files["bin"].read_bytes()[:300]})
    with pytest.raises(CurateError, match="not a complete fastText model"):
        clone.score_batch(pa.table({"text": ["some text"]}))
