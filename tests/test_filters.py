"""Filters and selections: every id accounted for, reasons, composition, SQL sandbox."""

import numpy as np
import pyarrow as pa
import pytest

import filters as F
from curate.core.errors import CurateError
from curate.core.tables import counts
from curate.sql import evaluate_predicate, query


@pytest.fixture
def scores():
    n = 10
    return pa.table({
        "id": [f"e{i}" for i in range(n)],
        "q": [0.9, 0.1, 0.5, None, 0.7, 0.3, 0.8, 0.2, 0.6, 0.4],
        "g_keep": [True, True, False, True, True, True, False, True, True, True],
        "g_reason": [None, None, "too_short", None, None, None, "too_long", None, None, None],
        "d_keep": [True, False, True, True, True, True, True, True, False, True],
        "d_reason": [None, "duplicate", None, None, None, None, None, None, "duplicate", None],
    })


def _kept(selection):
    return [i for i, k in zip(selection.column("id").to_pylist(),
                              selection.column("keep").to_pylist()) if k]


def test_rules_use_first_rejecting_rule_set_as_reason(scores):
    sel = F.Rules(["g", "d"]).select(scores)
    c = counts(sel)
    assert c["input"] == 10 and c["kept"] + c["dropped"] == 10
    assert c["dropped_by_reason"] == {"d:duplicate": 2, "g:too_long": 1, "g:too_short": 1}


def test_steps_compose_and_keep_earlier_reasons(scores):
    sel = F.select(scores, [F.Rules(["g"]), F.Where("q >= 0.5", reason="low q")])
    reasons = dict(zip(sel.column("id").to_pylist(), sel.column("reason").to_pylist()))
    assert reasons["e2"] == "g:too_short"  # dropped by the first step, not re-judged
    assert reasons["e1"] == "low q"
    assert reasons["e3"] == "low q"  # NULL score: the predicate is not true
    assert _kept(sel) == ["e0", "e4", "e8"]


def test_threshold_bounds_are_inclusive_and_missing_is_dropped(scores):
    sel = F.Threshold("q", min=0.3, max=0.8).select(scores)
    assert _kept(sel) == ["e2", "e4", "e5", "e6", "e8", "e9"]
    assert counts(sel)["dropped_by_reason"] == {"q < 0.3": 2, "q > 0.8": 1, "q missing": 1}


def test_keep_fraction_top_and_bottom_with_missing_last(scores):
    assert _kept(F.KeepFraction("q", 0.3).select(scores)) == ["e0", "e4", "e6"]
    assert _kept(F.KeepFraction("q", 0.3, keep="bottom").select(scores)) == ["e1", "e5", "e7"]
    assert len(_kept(F.KeepFraction("q", 1.0).select(scores))) == 10
    assert _kept(F.KeepFraction("q", 0.05).select(scores)) == ["e0"]  # 0.5 rounds up


def test_random_is_exact_size_and_seeded(scores):
    a = _kept(F.RandomSubset(0.5, seed=1).select(scores))
    assert len(a) == 5
    assert a == _kept(F.RandomSubset(0.5, seed=1).select(scores))
    assert a != _kept(F.RandomSubset(0.5, seed=2).select(scores))


def test_tags_first_match_wins_and_never_drop(scores):
    sel = F.Tag([{"when": "q > 0.75", "tag": "hq"}, {"when": "q > 0.45", "tag": "mq"}],
                default="lq").select(scores)
    assert counts(sel)["kept"] == 10
    tags = sel.column("tag").to_pylist()
    assert tags[:4] == ["hq", "lq", "mq", "lq"]


def test_unknown_column_lists_columns(scores):
    with pytest.raises(CurateError, match="no score column 'nope'; columns are: id, q"):
        F.KeepFraction("nope", 0.5).select(scores)
    with pytest.raises(CurateError, match="bad predicate"):
        F.Where("nope > 1").select(scores)
    with pytest.raises(CurateError, match="expected a boolean"):
        F.Where("q + 1").select(scores)


def test_sql_cannot_touch_the_file_system(scores, tmp_path):
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    with pytest.raises(CurateError, match="SQL error"):
        query({"s": scores}, f"SELECT * FROM read_csv('{secret}')")
    with pytest.raises(CurateError, match="SQL error"):
        query({"s": scores}, f"COPY s TO '{tmp_path / 'out.csv'}'")
    assert not (tmp_path / "out.csv").exists()
    assert query({"s": scores}, "SELECT count(*) AS n FROM s").column("n")[0].as_py() == 10


def test_predicate_preserves_row_order():
    n = 5000
    table = pa.table({"id": np.arange(n), "x": np.arange(n) % 7})
    mask = evaluate_predicate(table, "x = 3").to_numpy(zero_copy_only=False)
    assert np.array_equal(mask, np.arange(n) % 7 == 3)
