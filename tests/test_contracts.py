"""The contracts, checked for every registered scorer and filter.

Every scorer returns one row per input row, in order, with columns prefixed by its name
and no id column; pickles; is deterministic; round-trips through ``cls(**obj.params())``;
declares its kind and the direction of its primary column; and gives byte-identical
tables with ``workers=1`` and ``workers=2``. Every filter accounts for every row, in
order, pickles, is deterministic and round-trips its parameters.

A newly registered scorer or filter must get an entry in ``SCORER_CASES`` or
``FILTER_CASES``: the completeness tests fail until it does.
"""

import pickle

import numpy as np
import pyarrow as pa
import pytest

from curate.core.hashing import table_hash
from curate.core.registry import FILTERS, SCORERS, build
from curate.core.scorer import EASIER, HARDER, KINDS
from curate.core.tables import new_selection
from curate.executor import LocalExecutor, score_source
from curate.io import Source
from tests.conftest import PROSE

TINY_DYNAMICS = {"model": "logreg", "epochs": 2, "seeds": 2, "batch_size": 16}
#: name -> (parameters, data kind: "text" or "labelled")
SCORER_CASES = {
    "gopher_quality": ({}, "text"), "gopher_repetition": ({}, "text"),
    "c4_quality": ({}, "text"), "fineweb_quality": ({}, "text"),
    "exact_dup": ({}, "text"), "minhash": ({"ngram": 3}, "text"), "langid": ({}, "text"),
    "fasttext_quality": ({"model": "FASTTEXT"}, "text"),
    "perplexity": ({"model": "PERPLEXITY"}, "text"),
    "loss": (TINY_DYNAMICS, "labelled"), "el2n": ({**TINY_DYNAMICS, "epoch": 1}, "labelled"),
    "grand": ({**TINY_DYNAMICS, "epoch": 1}, "labelled"),
    "forgetting": (TINY_DYNAMICS, "labelled"), "aum": (TINY_DYNAMICS, "labelled"),
    "cartography": (TINY_DYNAMICS, "labelled"),
    "prototypicality": ({**TINY_DYNAMICS, "space": "input"}, "labelled"),
    "cv_loss": ({**TINY_DYNAMICS, "folds": 2}, "labelled"),
}
#: name -> parameters over the score table of ``_scores()``
FILTER_CASES = {
    "rules": {"scorers": ["a"]}, "where": {"predicate": "s > 0.3"},
    "threshold": {"column": "s", "min": 0.2, "max": 0.8},
    "keep_fraction": {"by": "s", "fraction": 0.5, "keep": "easy"},
    "random": {"fraction": 0.4, "seed": 3}, "ccs": {"by": "s", "fraction": 0.3, "bins": 4},
    "curriculum": {"by": "s", "ordering": "hard_to_easy"},
    "tag": {"rules": [{"when": "s > 0.5", "tag": "high"}], "default": "low"},
}


def _text_table() -> pa.Table:
    rng = np.random.default_rng(0)
    words = PROSE.split()
    texts = [" ".join(rng.choice(words, size=int(rng.integers(5, 120)))) + "." for _ in range(40)]
    texts[7] = texts[3]  # an exact duplicate
    texts[11] = ""
    return pa.table({"id": [f"d{i:02d}" for i in range(40)], "text": texts})


def _labelled_table() -> pa.Table:
    from curate.builtin import resolve

    return resolve("digits").slice(0, 64)


@pytest.fixture(scope="module")
def models(tmp_path_factory, one_torch_thread):
    from scorers.fasttext_quality import FastTextQuality
    from scorers.perplexity import Perplexity

    folder = tmp_path_factory.mktemp("models")
    texts = _text_table().column("text").to_pylist()
    FastTextQuality().fit(texts[:20], texts[20:], epoch=2, dim=8, bucket=1000).save(
        folder / "q.bin")
    Perplexity().fit(texts).save(folder / "lm.npz")
    return {"FASTTEXT": str(folder / "q.bin"), "PERPLEXITY": str(folder / "lm.npz")}


def _case(name, models):
    params, kind = SCORER_CASES[name]
    params = {k: models.get(v, v) if isinstance(v, str) else v for k, v in params.items()}
    return build(SCORERS, name, params), _text_table() if kind == "text" else _labelled_table()


def test_every_registered_scorer_and_filter_has_a_contract_case():
    assert set(SCORERS.names()) == set(SCORER_CASES)
    assert set(FILTERS.names()) == set(FILTER_CASES)


@pytest.mark.parametrize("name", sorted(SCORER_CASES))
def test_scorer_contract(name, models):
    scorer, data = _case(name, models)
    assert scorer.kind in KINDS
    assert scorer.direction() in (HARDER, EASIER)
    table = score_source([scorer], Source(data))[scorer.name]
    # one row per input row, in order, id first, then prefixed columns
    assert table.num_rows == data.num_rows
    assert table.column("id").to_pylist() == data.column("id").to_pylist()
    assert table.column_names[0] == "id" and "id" not in table.column_names[1:]
    assert all(c.startswith(scorer.name) for c in table.column_names[1:])
    assert scorer.primary in table.column_names
    assert set(scorer.directions) <= set(table.column_names)
    if not scorer.needs_whole_dataset:
        raw = scorer.score_batch(data.slice(0, 5).select(scorer.columns_needed()))
        assert raw.num_rows == 5 and "id" not in raw.column_names
    # pickles, and the unpickled copy scores the same
    copy = pickle.loads(pickle.dumps(scorer))
    assert copy.params() == scorer.params()
    # round-trips through its parameters
    rebuilt = type(scorer)(**scorer.params())
    assert rebuilt.params() == scorer.params()
    # deterministic, and the same bytes with two worker processes
    again = score_source([rebuilt], Source(data))[scorer.name]
    assert table_hash(again) == table_hash(table)
    if scorer.needs_whole_dataset:  # trains its seeds in processes
        parallel = type(scorer)(**{**scorer.params(), "workers": 2})
        two = score_source([parallel], Source(data))[scorer.name]
    else:
        two = score_source([copy], Source(data), executor=LocalExecutor(2), batch_size=7)[
            scorer.name]
    assert table_hash(two) == table_hash(table)


def test_a_scorer_passed_in_is_never_changed():
    import curate
    from scorers.text.gopher import GopherQuality

    scorer = GopherQuality()
    data = _text_table().rename_columns(["id", "body"])
    out = curate.score(data, [scorer], text_column="body")
    assert scorer.text_column == "text"
    assert out.num_rows == data.num_rows


def _scores() -> pa.Table:
    values = np.linspace(0, 1, 20)
    return pa.table({"id": [f"e{i}" for i in range(20)], "s": values,
                     "a_keep": values > 0.1, "a_reason": ["short"] * 20})


@pytest.mark.parametrize("name", sorted(FILTER_CASES))
def test_filter_contract(name):
    step = build(FILTERS, name, FILTER_CASES[name])
    scores = _scores()
    selection = step.select(scores)
    assert selection.num_rows == scores.num_rows
    assert selection.column("id").equals(scores.column("id"))
    assert selection.column_names == new_selection(scores.column("id")).column_names
    dropped = selection.filter(pa.compute.invert(selection.column("keep")))
    assert dropped.column("reason").null_count == 0  # every drop says why
    copy = pickle.loads(pickle.dumps(step))
    assert table_hash(copy.select(scores)) == table_hash(selection)
    rebuilt = type(step)(**step.params())
    assert rebuilt.params() == step.params()
    assert table_hash(rebuilt.select(scores)) == table_hash(selection)
