"""Selection policies: easy/hard/middle/offset fractions, class balance, CCS, labels."""

import numpy as np
import pyarrow as pa
import pytest

import filters as F
from curate.core.errors import CurateError
from curate.core.tables import counts
from curate.recipe import RecipeRun
from curate.recipe_schema import read_yaml, validate
from filters.ccs import allocate, strata
from filters.labels import apportion

# Hardness of e0..e9: the easiest is e3 (0), the hardest e4 (9).
S = [5, 2, 8, 0, 9, 1, 7, 3, 6, 4]


@pytest.fixture
def scores():
    return pa.table({"id": [f"e{i}" for i in range(10)], "s": pa.array(S, pa.float64())})


def _kept(selection):
    return sorted(i for i, k in zip(selection.column("id").to_pylist(),
                                    selection.column("keep").to_pylist()) if k)


def _ids(values):
    return sorted(f"e{S.index(v)}" for v in values)


@pytest.mark.parametrize("keep,expected", [
    ("easy", [0, 1, 2]), ("hard", [9, 8, 7]), ("bottom", [0, 1, 2]), ("top", [9, 8, 7])])
def test_easy_and_hard_keep_exact_counts(scores, keep, expected):
    assert _kept(F.KeepFraction("s", 0.3, keep=keep).select(scores)) == _ids(expected)


def test_middle_keeps_the_centre_of_the_ranking(scores):
    assert _kept(F.KeepFraction("s", 0.4, keep="middle").select(scores)) == _ids([3, 4, 5, 6])
    assert _kept(F.KeepFraction("s", 0.5, keep="middle").select(scores)) == _ids([2, 3, 4, 5, 6])


def test_offset_skips_the_hardest_first(scores):
    sel = F.KeepFraction("s", 0.3, keep="hard", offset=0.2).select(scores)
    assert _kept(sel) == _ids([7, 6, 5])
    assert counts(sel)["dropped_by_reason"] == {"not in hardest 0.3 by s": 5,
                                                "among hardest 0.2 by s": 2}
    assert _kept(F.KeepFraction("s", 0.4, keep="middle", offset=0.2).select(scores)) == \
        _ids([2, 3, 4, 5])  # the centre of the 8 that are left
    assert _kept(F.KeepFraction("s", 0.8, keep="easy", offset=0.2).select(scores)) == \
        _ids(range(8))
    with pytest.raises(CurateError, match="offset"):
        F.KeepFraction("s", 0.9, offset=0.2)


def test_lower_is_harder_flips_easy_and_hard_but_not_top(scores):
    aum = F.KeepFraction("s", 0.3, keep="easy", higher_is_harder=False).select(scores)
    assert _kept(aum) == _ids([9, 8, 7])
    offset = F.KeepFraction("s", 0.2, keep="hard", offset=0.1, higher_is_harder=False)
    assert _kept(offset.select(scores)) == _ids([1, 2])
    top = F.KeepFraction("s", 0.3, keep="top", higher_is_harder=False).select(scores)
    assert _kept(top) == _ids([9, 8, 7])


def test_missing_scores_are_ranked_last_for_every_policy():
    table = pa.table({"id": list(range(5)), "s": [0.0, None, 2.0, 3.0, float("nan")]})
    for keep in ("easy", "hard", "middle"):
        sel = F.KeepFraction("s", 0.6, keep=keep).select(table)
        assert sorted(i for i, k in enumerate(sel.column("keep").to_pylist()) if k) == [0, 2, 3]
    assert sum(F.KeepFraction("s", 0.8, keep="hard").select(table).column("keep").to_pylist()
               ) == 4


def _balanced_table():
    # class 0: 12 examples with hardness 0..11, class 1: 8 examples with hardness 100..107
    labels = [0] * 12 + [1] * 8
    s = list(range(12)) + list(range(100, 108))
    order = np.random.default_rng(0).permutation(20)
    return pa.table({"id": order.tolist(), "s": [float(s[i]) for i in order],
                     "label": [labels[i] for i in order]})


def test_class_balance_keeps_the_same_fraction_per_class():
    table = _balanced_table()
    sel = F.KeepFraction("s", 0.5, keep="hard", balance="label").select(table)
    keep = np.array(sel.column("keep").to_pylist())
    s, label = np.array(table.column("s").to_pylist()), np.array(table.column("label"))
    assert sorted(s[keep & (label == 0)]) == [6, 7, 8, 9, 10, 11]
    assert sorted(s[keep & (label == 1)]) == [104, 105, 106, 107]
    # Without balance the hardest half is 8 of class 1 and 2 of class 0.
    unbalanced = np.array(F.KeepFraction("s", 0.5, keep="hard").select(table)
                          .column("keep").to_pylist())
    assert (label[unbalanced] == 1).sum() == 8
    easy = np.array(F.KeepFraction("s", 0.25, keep="easy", offset=0.25, balance="label")
                    .select(table).column("keep").to_pylist())
    assert sorted(s[easy]) == [0, 1, 2, 100, 101]


def test_apportion_hits_the_total_by_largest_remainder():
    assert apportion(5, np.array([3, 3, 4]), 0.5).tolist() == [2, 1, 2]
    assert apportion(5, np.array([12, 8]), 0.25).tolist() == [3, 2]
    assert apportion(1, np.array([1, 1, 1]), 1 / 3).tolist() == [1, 0, 0]


def test_balance_without_label_column_says_how_to_join_it(scores):
    with pytest.raises(CurateError, match="no score column 'label'; columns are: id, s"):
        F.KeepFraction("s", 0.5, balance="label").select(scores)


def test_join_labels_matches_by_id_whatever_the_order(scores):
    data = pa.table({"id": [f"e{i}" for i in reversed(range(10))], "label": list(range(10)),
                     "x": [0.0] * 10})
    joined = F.join_labels(scores, data)
    assert joined.column_names == ["id", "s", "label"]
    assert joined.column("label").to_pylist() == list(reversed(range(10)))
    with pytest.raises(CurateError, match="score table: id 'e9' is not in the data"):
        F.join_labels(scores, data.slice(1))
    with pytest.raises(CurateError, match="already has"):
        F.join_labels(joined, data)


def _ccs_table():
    """34 scores in [0, 20]; after dropping the two outliers (20, 19) the range is [0, 10]
    and 5 bins of width 2 hold 2, 10, 4, 10, 6 examples."""
    bins = {0: [0.0, 1.0], 1: list(np.linspace(2.0, 3.9, 10)), 2: [4.0, 4.5, 5.0, 5.5],
            3: list(np.linspace(6.0, 7.9, 10)), 4: [8.0, 8.5, 9.0, 9.5, 9.9, 10.0]}
    values = [v for b in bins.values() for v in b] + [20.0, 19.0]
    order = np.random.default_rng(1).permutation(len(values))
    return pa.table({"id": list(range(34)), "s": [values[i] for i in order]})


def test_ccs_drops_beta_and_fills_the_smallest_bins_first():
    table = _ccs_table()
    sel = F.CCS("s", fraction=0.5, beta=0.05, bins=5, seed=0).select(table)
    s = np.array(table.column("s").to_pylist())
    keep = np.array(sel.column("keep").to_pylist())
    assert keep.sum() == 17
    assert not keep[s >= 19].any()
    assert np.bincount(strata(s[s < 19], 5), minlength=5).tolist() == [2, 10, 4, 10, 6]
    per_bin = np.bincount(np.minimum(s[keep] // 2, 4).astype(int), minlength=5).tolist()
    assert per_bin == [2, 4, 3, 4, 4]  # smallest first, each min(size, left // bins left)
    reasons = counts(sel)["dropped_by_reason"]
    assert reasons["ccs: among hardest 0.05 by s"] == 2
    again = F.CCS("s", fraction=0.5, beta=0.05, bins=5, seed=0).select(table)
    other = F.CCS("s", fraction=0.5, beta=0.05, bins=5, seed=1).select(table)
    assert again.equals(sel) and not other.equals(sel)


def test_ccs_lower_is_harder_drops_the_lowest():
    table = pa.table({"id": list(range(10)), "aum": [float(v) for v in S]})
    sel = F.CCS("aum", fraction=0.5, beta=0.2, bins=3, higher_is_harder=False).select(table)
    kept_scores = [v for v, k in zip(S, sel.column("keep").to_pylist()) if k]
    assert len(kept_scores) == 5 and min(kept_scores) >= 2


def test_ccs_balance_keeps_each_class_share_and_drops_each_class_hardest():
    table = _balanced_table()
    sel = F.CCS("s", fraction=0.5, beta=0.25, bins=2, balance="label", seed=0).select(table)
    keep = np.array(sel.column("keep").to_pylist())
    s, label = np.array(table.column("s").to_pylist()), np.array(table.column("label"))
    assert (keep & (label == 0)).sum() == 6 and (keep & (label == 1)).sum() == 4
    # beta is taken within each class: its hardest quarter goes, not class 1's alone.
    assert not keep[(label == 0) & (s >= 9)].any() and not keep[(label == 1) & (s >= 106)].any()
    unbalanced = np.array(F.CCS("s", fraction=0.5, beta=0.25, bins=2, seed=0).select(table)
                          .column("keep").to_pylist())
    # Globally, beta takes class 1's five hardest and the bins split by class: 7 and 3.
    assert (unbalanced & (label == 0)).sum() == 7 and (unbalanced & (label == 1)).sum() == 3


def test_allocate_follows_the_reference_rule():
    assert allocate(17, np.array([2, 10, 4, 10, 6])).tolist() == [2, 4, 3, 4, 4]
    assert allocate(100, np.array([0, 3, 5])).tolist() == [0, 3, 5]  # budget above supply
    assert allocate(4, np.array([0, 0, 9])).tolist() == [0, 0, 4]


RECIPE = """\
source: data.jsonl
steps:
  - score: {scorers: [exact_dup]}
  - filter: {ccs: {by: el2n, fraction: 0.3, beta: 0.1}}
  - filter: {keep_fraction: {by: el2n, fraction: 0.5, keep: middle, offset: 0.1}}
  - filter: {curriculum: {by: el2n, ordering: hard_to_easy}}
"""


def test_recipe_validator_accepts_the_new_filters(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(RECIPE)
    validate(path, read_yaml(path))
    path.write_text(RECIPE.replace("ccs:", "coreset:"))
    with pytest.raises(CurateError, match=r"r.yaml:\d+: step 2 \(filter\): unknown filter "
                                          r"'coreset'"):
        RecipeRun(path, tmp_path / "run")
