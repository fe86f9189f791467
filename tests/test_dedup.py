"""Exact and near-duplicate scorers: clusters, representatives, batching, determinism."""

from __future__ import annotations

import pickle
import random

import numpy as np
import pyarrow as pa
import pytest

from curate.core.errors import CurateError
from curate.core.registry import make_scorer
from scorers.dedup import ExactDup, MinHashDup
from scorers.dedup.shingles import shingle_hashes, word_hashes

WORDS = ("river stone cloud paper lamp garden window orange silver thunder basket candle "
         "mirror forest violin ladder pepper rocket meadow anchor castle button desert "
         "feather glacier harbor island jacket kettle lantern marble needle ocean pillow "
         "quartz saddle tunnel umbrella velvet wagon yogurt zebra bridge copper dragon").split()


def random_text(rng: random.Random, n: int = 120) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def run(scorer, texts, batch_size=None, ids=None) -> pa.Table:
    """Score ``texts`` in batches, concatenate, add ids, finalize: what the executor does."""
    table = pa.table({"text": pa.array(texts, pa.string())})
    size = batch_size or max(len(texts), 1)
    starts = range(0, len(texts), size) if texts else [0]
    parts = [scorer.score_batch(table.slice(i, size)) for i in starts]
    for part, start in zip(parts, starts, strict=True):
        assert part.num_rows == min(size, len(texts) - start)
        assert "id" not in part.column_names
    scores = pa.concat_tables(parts).combine_chunks()
    ids = ids if ids is not None else [f"doc{i}" for i in range(len(texts))]
    return scorer.finalize(scores.add_column(0, "id", pa.array(ids)))


def column(table: pa.Table, name: str) -> list:
    return table.column(name).to_pylist()


# ---------------------------------------------------------------- exact


@pytest.mark.parametrize("normalize, texts, clusters", [
    ("none", ["a b", "a b", "a  b", "A b"], [0, 0, 2, 3]),
    ("whitespace", ["a b", " a\t\nb ", "A b", "a  b"], [0, 0, 2, 0]),
    ("lower", ["Hello World", "hello   world", "HELLO WORLD!", "hello world"], [0, 0, 2, 0]),
    ("alnum", ["Hello, World!", "hello world", "hello_world", "helloworld", "ｈｅｌｌｏ world"],
     [0, 0, 0, 3, 0]),
])
def test_exact_dup_clusters_under_each_normalisation(normalize, texts, clusters):
    out = run(ExactDup(normalize=normalize), texts)
    assert column(out, "exact_dup_cluster") == clusters
    assert column(out, "exact_dup_duplicate") == [c != i for i, c in enumerate(clusters)]
    sizes = [clusters.count(c) for c in clusters]
    assert column(out, "exact_dup_cluster_size") == sizes
    hashes = column(out, "exact_dup_hash")
    assert all((hashes[i] == hashes[j]) == (clusters[i] == clusters[j])
               for i in range(len(texts)) for j in range(len(texts)))


def test_exact_dup_default_is_lower_and_keeps_first_in_dataset_order():
    scorer = ExactDup()
    assert scorer.normalize == "lower"
    out = run(scorer, ["x", "Same text", "y", "SAME  text", "same text"])
    assert column(out, "id") == ["doc0", "doc1", "doc2", "doc3", "doc4"]
    assert column(out, "exact_dup_cluster") == [0, 1, 2, 1, 1]
    assert column(out, "exact_dup_duplicate") == [False, False, False, True, True]
    assert column(out, "exact_dup_keep") == [True, True, True, False, False]
    assert column(out, "exact_dup_reason") == [None, None, None, "duplicate", "duplicate"]
    assert out.column_names == ["id", "exact_dup_keep", "exact_dup_reason", "exact_dup_cluster",
                                "exact_dup_cluster_size", "exact_dup_duplicate", "exact_dup_hash"]
    assert out.schema.field("exact_dup_hash").type == pa.uint64()


def test_exact_dup_handles_empty_null_and_non_ascii():
    out = run(ExactDup(), ["", None, "  ", "Ünïcode ✓", "ünïcode ✓", "cafe\u0301", "caf\u00e9"])
    assert column(out, "exact_dup_cluster") == [0, 0, 0, 3, 3, 5, 6]
    out = run(ExactDup(normalize="alnum"), ["cafe\u0301", "Caf\u00e9!"])
    assert column(out, "exact_dup_cluster") == [0, 0]


def test_exact_dup_rejects_unknown_normalisation():
    with pytest.raises(CurateError, match="alnum"):
        ExactDup(normalize="stem")


def test_exact_dup_empty_corpus():
    out = run(ExactDup(), [])
    assert out.num_rows == 0
    assert "exact_dup_cluster" in out.column_names


# ---------------------------------------------------------------- minhash


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], list[tuple[int, int]]]:
    """40 unrelated texts plus near copies (one word changed) of texts 3, 10 and 25."""
    rng = random.Random(7)
    texts = [random_text(rng) for _ in range(40)]
    pairs = []
    for i in (3, 10, 25):
        words = texts[i].split()
        words[60] = "changed"
        pairs.append((i, len(texts)))
        texts.append(" ".join(words))
    return texts, pairs


def test_minhash_clusters_near_duplicates_and_not_unrelated(corpus):
    texts, pairs = corpus
    out = run(MinHashDup(), texts)
    cluster = column(out, "minhash_cluster")
    expected = list(range(len(texts)))
    for original, copy in pairs:
        expected[copy] = original
    assert cluster == expected
    duplicate = column(out, "minhash_duplicate")
    assert [i for i, d in enumerate(duplicate) if d] == [copy for _, copy in pairs]
    sizes = column(out, "minhash_cluster_size")
    assert [sizes[i] for i, _ in pairs] == [2, 2, 2]
    jac = column(out, "minhash_jaccard")
    # One changed word of 120 touches 5 of 116 shingles: true Jaccard 111/121 = 0.917.
    assert all(0.8 <= jac[copy] < 1.0 for _, copy in pairs)
    # kept documents (representatives and documents in no cluster) have no Jaccard
    assert all(jac[i] is None for i in range(len(texts)) if not duplicate[i])
    assert out.column_names == ["id", "minhash_keep", "minhash_reason", "minhash_cluster",
                                "minhash_cluster_size", "minhash_duplicate", "minhash_jaccard"]


def test_minhash_representative_is_first_in_dataset_order(corpus):
    texts, pairs = corpus
    original, copy = pairs[0]
    # Put the edited copy first: it becomes the representative.
    order = [copy] + [i for i in range(len(texts)) if i != copy]
    out = run(MinHashDup(), [texts[i] for i in order])
    cluster = column(out, "minhash_cluster")
    moved = order.index(original)
    assert cluster[0] == 0 and cluster[moved] == 0
    assert column(out, "minhash_duplicate")[moved] is True


@pytest.mark.parametrize("scorer", [MinHashDup(), ExactDup()], ids=["minhash", "exact"])
def test_output_identical_across_batch_splits_and_runs(corpus, scorer):
    texts = corpus[0] + corpus[0][:5]  # exact copies too
    reference = run(scorer, texts)
    for batch_size in (1, 7, 16, 1000):
        assert run(scorer, texts, batch_size=batch_size).equals(reference)
    fresh = pickle.loads(pickle.dumps(scorer))
    assert run(fresh, texts, batch_size=5).equals(reference)


def test_minhash_signature_is_deterministic_for_a_seed(corpus):
    texts = pa.array(corpus[0])
    a = MinHashDup(seed=3).signatures(texts)
    assert a.shape == (len(corpus[0]), 128) and a.dtype == np.uint32
    assert np.array_equal(a, MinHashDup(seed=3).signatures(texts))
    assert (a != MinHashDup(seed=4).signatures(texts)).mean() > 0.9


def test_minhash_signature_batch_output_is_arrow_fixed_size_list(corpus):
    out = MinHashDup(num_perm=64, bands=8).score_batch(pa.table({"text": corpus[0][:3] + [""]}))
    assert out.column_names == ["minhash_signature"] + [f"minhash_band{b}" for b in range(8)]
    assert out.schema.field("minhash_signature").type == pa.list_(pa.uint32(), 64)
    assert out.column("minhash_signature").null_count == 1
    assert out.schema.field("minhash_band0").type == pa.uint64()
    assert all(out.column(f"minhash_band{b}").null_count == 1 for b in range(8))


def test_minhash_estimates_jaccard(corpus):
    """The estimate is within 4 standard deviations of the exact shingle Jaccard."""
    rng = random.Random(1)
    base = random_text(rng, 400).split()
    edited = list(base)
    for pos in rng.sample(range(400), 12):
        edited[pos] = "zzz"
    shingles = [{tuple(w[i:i + 5]) for i in range(len(w) - 4)} for w in (base, edited)]
    exact = len(shingles[0] & shingles[1]) / len(shingles[0] | shingles[1])
    sigs = MinHashDup(num_perm=256, bands=16).signatures(pa.array([" ".join(base),
                                                                   " ".join(edited)]))
    estimate = (sigs[0] == sigs[1]).mean()
    assert abs(estimate - exact) < 4 * np.sqrt(exact * (1 - exact) / 256)


def test_minhash_empty_and_short_texts():
    texts = ["", None, "   ...  ", "two words", "Two, WORDS!", "two words more", "one"]
    out = run(MinHashDup(), texts)
    cluster = column(out, "minhash_cluster")
    # Empty texts are never near duplicates; short texts are one shingle of all their words.
    assert cluster == [0, 1, 2, 3, 3, 5, 6]
    assert column(out, "minhash_cluster_size") == [1, 1, 1, 2, 2, 1, 1]


def test_shingles_stay_within_documents():
    words, offsets = word_hashes(pa.array(["a b c", "", "d e f g h i j", "k l"]))
    assert offsets.tolist() == [0, 3, 3, 10, 12]
    keys, key_offsets = shingle_hashes(words, offsets, ngram=5)
    assert key_offsets.tolist() == [0, 1, 1, 4, 5]
    # "d e f g h i j" shifted into another document gives the same shingles.
    words2, offsets2 = word_hashes(pa.array(["x", "d e f g h i j"]))
    keys2, _ = shingle_hashes(words2, offsets2, ngram=5)
    assert keys2[1:].tolist() == keys[1:4].tolist()


def test_minhash_without_verification_keeps_band_matches(corpus):
    texts, pairs = corpus
    out = run(MinHashDup(verify=False), texts)
    cluster = column(out, "minhash_cluster")
    assert all(cluster[copy] == original for original, copy in pairs)


def test_minhash_keeps_the_executor_id_column(corpus):
    out = run(MinHashDup(), corpus[0][:4], ids=[10, 11, 12, 13])
    assert column(out, "id") == [10, 11, 12, 13]


def test_minhash_empty_corpus():
    out = run(MinHashDup(), [])
    assert out.num_rows == 0
    assert "minhash_cluster" in out.column_names


@pytest.mark.parametrize("params, message", [
    ({"num_perm": 128, "bands": 12}, "divide"),
    ({"threshold": 0}, "threshold"),
    ({"ngram": 0}, "ngram"),
])
def test_minhash_rejects_bad_parameters(params, message):
    with pytest.raises(CurateError, match=message):
        MinHashDup(**params)


def test_registry_builds_both_scorers():
    assert isinstance(make_scorer("exact_dup", {"normalize": "alnum"}), ExactDup)
    scorer = make_scorer("minhash", {"bands": 32, "threshold": 0.7})
    assert isinstance(scorer, MinHashDup) and scorer.rows == 4
    assert scorer.params()["threshold"] == 0.7
