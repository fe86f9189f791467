"""Model-based text scorers: fastText quality, langid, n-gram perplexity."""

import ast
import json
import pickle
import random
import sysconfig
from pathlib import Path

import fasttext
import numpy as np
import pyarrow as pa
import pytest

from curate.core.errors import CurateError
from scorers.fasttext_quality import FastTextQuality
from scorers.langid import LangID, identifier
from scorers.perplexity import Perplexity

SMALL_FIT = {"dim": 16, "bucket": 20_000, "epoch": 10}

SUBJECTS = ["the committee", "our research group", "the museum", "a small library",
            "the city council", "the orchestra", "the university", "an old farmer"]
VERBS = ["reviewed", "published", "discussed", "restored", "described", "studied", "planned"]
OBJECTS = ["the annual report", "a history of the river", "the new bridge design",
           "several letters from the war", "the results of the survey", "a careful plan"]
SPAM = ["buy now", "cheap pills", "click here", "free shipping", "limited offer", "casino",
        "win cash", "discount", "login", "subscribe", "hot deals", "100% free", "$$$"]


def prose(rng: random.Random) -> str:
    return " ".join(f"{rng.choice(SUBJECTS).capitalize()} {rng.choice(VERBS)} "
                     f"{rng.choice(OBJECTS)}." for _ in range(rng.randint(2, 4)))


def spam(rng: random.Random) -> str:
    return " | ".join(rng.choice(SPAM) for _ in range(rng.randint(4, 9)))


def scores(scorer, texts, column=None) -> np.ndarray:
    out = scorer.score_batch(pa.table({"text": pa.array(texts, pa.string())}))
    assert out.num_rows == len(texts)
    return out.column(column or 0).to_numpy(zero_copy_only=False)


# -- fastText quality ---------------------------------------------------------------

@pytest.fixture(scope="module")
def quality():
    rng = random.Random(1)
    return FastTextQuality().fit([prose(rng) for _ in range(300)],
                                 [spam(rng) for _ in range(300)], **SMALL_FIT)


def test_fasttext_separates_held_out_examples(quality):
    rng = random.Random(99)
    good = [prose(rng) for _ in range(20)]
    bad = [spam(rng) for _ in range(20)]
    out = quality.score_batch(pa.table({"text": good + bad}))
    assert out.column_names == ["fasttext_quality_hq"]
    assert out.schema.field(0).type == pa.float32()
    hq = out.column(0).to_numpy()
    assert (hq[:20] > 0.5).all() and (hq[20:] < 0.5).all()


def test_fasttext_one_row_per_input_in_order(quality):
    texts = [spam(random.Random(3)), None, "", prose(random.Random(4)), "x\ny"]
    forward = scores(quality, texts)
    assert np.array_equal(scores(quality, texts[::-1]), forward[::-1])
    assert forward[0] < 0.5 < forward[3]
    # Newlines are spaces: a multi-line text scores like its one-line form.
    assert scores(quality, ["x y"])[0] == forward[4]


def test_fasttext_save_load_round_trip(quality, tmp_path):
    texts = [prose(random.Random(5)), spam(random.Random(6))]
    path = tmp_path / "quality.bin"
    quality_copy = pickle.loads(pickle.dumps(quality))
    quality_copy.save(path)
    assert path.exists() and not list(tmp_path.glob("*.tmp-*"))
    loaded = FastTextQuality.load(path)
    assert loaded.params()["model"] == str(path)
    assert np.array_equal(scores(loaded, texts), scores(quality, texts))


def test_fasttext_pickles_unsaved_and_saved_models(quality, tmp_path):
    texts = [prose(random.Random(9)), spam(random.Random(10))]
    expected = scores(quality, texts)
    unsaved = pickle.loads(pickle.dumps(quality))  # carries the .bin bytes
    assert np.array_equal(scores(unsaved, texts), expected)
    quality_copy = pickle.loads(pickle.dumps(quality))
    quality_copy.save(tmp_path / "q.bin")
    blob = pickle.dumps(FastTextQuality.load(tmp_path / "q.bin"))
    assert len(blob) < 10_000  # a saved model pickles as its path, not its weights
    assert np.array_equal(scores(pickle.loads(blob), texts), expected)


def train_raw_fasttext(tmp_path, labels: tuple[str, str]) -> Path:
    """A tiny fastText model trained directly with fastText, DCLM-style labels."""
    rng = random.Random(2)
    lines = [f"__label__{labels[0]} {prose(rng)}" for _ in range(150)]
    lines += [f"__label__{labels[1]} {spam(rng)}" for _ in range(150)]
    rng.shuffle(lines)
    train = tmp_path / "train.txt"
    train.write_text("\n".join(lines) + "\n")
    for attempt in range(3):  # this fastText build sporadically aborts with "Encountered NaN"
        try:
            model = fasttext.train_supervised(str(train), wordNgrams=2, dim=16, bucket=20_000,
                                              epoch=10, thread=1, seed=0, verbose=0)
            break
        except RuntimeError:
            if attempt == 2:
                raise
    path = tmp_path / f"{labels[0]}_{labels[1]}.bin"
    model.save_model(str(path))
    return path


def test_fasttext_loads_bin_with_other_labels(tmp_path):
    path = train_raw_fasttext(tmp_path, ("hq", "cc"))
    texts = [prose(random.Random(11)), spam(random.Random(12))]
    hq = FastTextQuality.load(path)
    cc = FastTextQuality.load(path, label="__label__cc")
    hq_scores, cc_scores = scores(hq, texts, "fasttext_quality_hq"), scores(cc, texts,
                                                                             "fasttext_quality_cc")
    assert hq_scores[0] > 0.5 > hq_scores[1]
    # fastText adds 1e-5 to each probability before reporting it.
    np.testing.assert_allclose(hq_scores + cc_scores, 1.0, atol=1e-4)
    with pytest.raises(CurateError, match="cc, hq|hq, cc"):
        FastTextQuality.load(path, label="lq")


def test_fasttext_default_label_without_hq_is_first_label(tmp_path):
    path = train_raw_fasttext(tmp_path, ("ham", "spam"))
    scorer = FastTextQuality.load(path)
    assert scorer.scored_label() == scorer.labels()[0]
    assert scorer.score_batch(pa.table({"text": ["a"]})).column_names == [
        f"fasttext_quality_{scorer.labels()[0]}"]


def test_fasttext_errors_are_clear(tmp_path):
    with pytest.raises(CurateError, match="no model"):
        FastTextQuality().score_batch(pa.table({"text": ["a"]}))
    with pytest.raises(CurateError, match="not found"):
        FastTextQuality.load(tmp_path / "missing.bin")
    (tmp_path / "bad.bin").write_text("not a model")
    with pytest.raises(CurateError, match="not a complete fastText model"):
        FastTextQuality.load(tmp_path / "bad.bin")
    with pytest.raises(CurateError, match="non-empty"):
        FastTextQuality().fit(["some text"], ["", None])


# -- langid ---------------------------------------------------------------------------

SENTENCES = {
    "en": "The weather was cold, so we stayed inside and read books by the fire.",
    "fr": "Il faisait froid, alors nous sommes restés à la maison pour lire des livres.",
    "de": "Es war kalt, deshalb sind wir zu Hause geblieben und haben Bücher gelesen.",
    "ja": "寒かったので、私たちは家にいて暖炉のそばで本を読みました。",
}


def test_langid_identifies_languages_and_matches_langid():
    texts = list(SENTENCES.values())
    out = LangID().score_batch(pa.table({"text": texts}))
    assert out.column("langid_language").to_pylist() == list(SENTENCES)
    assert out.schema.field("langid_confidence").type == pa.float32()
    confidence = out.column("langid_confidence").to_numpy()
    expected = [identifier().classify(t)[1] for t in texts]
    np.testing.assert_allclose(confidence, expected, rtol=1e-6)
    assert (confidence > 0.9).all()


def test_langid_empty_text_and_order():
    texts = ["", SENTENCES["de"], "   \n\t", None, SENTENCES["en"]]
    out = LangID().score_batch(pa.table({"text": pa.array(texts, pa.string())}))
    assert out.column("langid_language").to_pylist() == [None, "de", None, None, "en"]
    assert out.column("langid_confidence").to_pylist()[:4:2] == [0.0, 0.0]


def test_langid_languages_and_max_chars():
    for restricted in (LangID(languages=["en", "de"]), LangID(languages="en+de")):
        language = restricted.score_batch(pa.table({"text": [SENTENCES["fr"]]})).column(0)
        assert language.to_pylist()[0] in ("en", "de")
    mixed = SENTENCES["en"] + " " + SENTENCES["de"] * 20
    head = LangID(max_chars=len(SENTENCES["en"])).score_batch(pa.table({"text": [mixed]}))
    assert head.column(0).to_pylist() == ["en"]
    with pytest.raises(CurateError, match="xx"):
        LangID(languages=["en", "xx"]).score_batch(pa.table({"text": ["hello"]}))


def test_langid_pickles_without_the_model():
    scorer = LangID(languages=["en", "fr"])
    blob = pickle.dumps(scorer)
    assert len(blob) < 2_000
    out = pickle.loads(blob).score_batch(pa.table({"text": [SENTENCES["fr"]]}))
    assert out.column(0).to_pylist() == ["fr"]


# -- perplexity -------------------------------------------------------------------------

def stdlib_docstrings() -> list[str]:
    """English reference text: docstrings of a few stdlib modules (always installed)."""
    docs = []
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for name in ("argparse", "textwrap", "pathlib", "subprocess", "shutil", "tarfile",
                 "zipfile", "csv", "logging/__init__", "json/__init__", "calendar", "inspect"):
        tree = ast.parse((stdlib / f"{name}.py").read_text(encoding="utf-8"))
        docs += [d for node in ast.walk(tree)
                 if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
                 and (d := ast.get_docstring(node)) and len(d.split()) >= 12]
    return docs


@pytest.fixture(scope="module")
def corpus():
    docs = stdlib_docstrings()
    random.Random(0).shuffle(docs)
    return docs[:-60], docs[-60:]


@pytest.fixture(scope="module")
def reference(corpus):
    return Perplexity().fit(corpus[0], order=3, min_count=2)


def mean_nll(model, texts) -> float:
    return float(np.mean(scores(model, texts, "perplexity_nll")))


def test_perplexity_in_domain_beats_shuffled_and_foreign(reference, corpus):
    held_out = corpus[1]
    rng = random.Random(0)
    shuffled = [" ".join(rng.sample(t.split(), len(t.split()))) for t in held_out]
    foreign = [SENTENCES["fr"], SENTENCES["de"],
               "Die Funktion gibt eine Liste der Dateien im Verzeichnis zurück.",
               "La fonction renvoie la liste des fichiers du répertoire courant."]
    in_domain = mean_nll(reference, held_out)
    assert in_domain < mean_nll(reference, shuffled) - 0.5
    assert in_domain < mean_nll(reference, foreign) - 0.5


def test_perplexity_columns_and_empty_text(reference):
    out = reference.score_batch(pa.table({"text": pa.array(
        ["Return the path.\nRaise an error.", "", None, " \n "], pa.string())}))
    assert out.column_names == ["perplexity_nll", "perplexity_ppl", "perplexity_tokens"]
    assert [f.type for f in out.schema] == [pa.float32(), pa.float32(), pa.int64()]
    assert out.column("perplexity_tokens").to_pylist() == [10, 0, 0, 0]  # (4 + </s>) x 2
    assert out.column("perplexity_nll").null_count == 3
    nll, ppl = out.column(0)[0].as_py(), out.column(1)[0].as_py()
    assert ppl == pytest.approx(np.exp(nll), rel=1e-5)


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_perplexity_distribution_sums_to_one(corpus, order):
    model = Perplexity().fit(corpus[0][:300], order=order, min_count=2)
    for context in ["", "return the", "if the file", "qwzx vvb", "the name of the"]:
        tokens, probs = model.next_token_probs(context)
        assert len(tokens) == len(model.vocabulary) - 1 and "<s>" not in tokens
        assert (probs > 0).all()
        assert probs.sum() == pytest.approx(1.0, abs=1e-5)
    tokens, probs = model.next_token_probs("return the")
    if order >= 2:  # a seen continuation beats an unseen one in a seen context
        assert probs[tokens.index("value")] > probs[tokens.index("csv")]


def test_perplexity_save_load_and_determinism(reference, corpus, tmp_path):
    texts = corpus[1][:20]
    expected = reference.score_batch(pa.table({"text": texts}))
    path = tmp_path / "ref.npz"
    reference.save(path)
    with np.load(path, allow_pickle=False) as npz:  # no pickled objects inside
        header = json.loads(npz["header"].tobytes())
    assert header["order"] == 3 and header["vocab"][:3] == ["<s>", "</s>", "<unk>"]
    assert Perplexity.load(path).score_batch(pa.table({"text": texts})).equals(expected)
    refit = Perplexity().fit(corpus[0], order=3, min_count=2)
    assert refit.score_batch(pa.table({"text": texts})).equals(expected)
    assert pickle.loads(pickle.dumps(refit)).score_batch(
        pa.table({"text": texts})).equals(expected)


def test_perplexity_errors_are_clear(tmp_path):
    with pytest.raises(CurateError, match="no model"):
        Perplexity().score_batch(pa.table({"text": ["a"]}))
    with pytest.raises(CurateError, match="no text"):
        Perplexity().fit(["", None, "  "])
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(CurateError, match="cannot read"):
        Perplexity.load(tmp_path / "bad.npz")
