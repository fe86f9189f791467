"""Sweep methods built from registered filters, scorers and schedules (curate.experiment.methods).

Most tests hand the sweep precomputed score tables, so that only the (tiny) training
runs cost time and the expected subsets follow from known score values.
"""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curate.core.errors import CurateError
from curate.core.registry import SCHEDULES, build
from curate.experiment import Method, method_spec, prune_sweep
from curate.experiment.cells import Scores
from curate.io import Source, write_table
from curate.train import TrainConfig
from filters import RandomSubset, select

N = 200
CONFIG = TrainConfig(model="logreg", lr=0.1, batch_size=50, steps=2)
TEST = "builtin:digits:split=test"


@pytest.fixture(scope="module")
def digits():
    return Source("builtin:digits").read_all().slice(0, N)


@pytest.fixture(scope="module")
def scores(digits):
    """Precomputed EL2N and AUM tables with known values (shuffled, so order matters)."""
    values = np.random.default_rng(0).permutation(N).astype(float)
    ids = digits.column("id")
    return {"el2n": pa.table({"id": ids, "el2n": values}),
            "aum": pa.table({"id": ids, "aum": values})}


def sweep(digits, tmp_path, methods, scores=None, **kwargs):
    return prune_sweep(digits, TEST, methods=methods, fractions=kwargs.pop("fractions", [0.25]),
                       seeds=kwargs.pop("seeds", [0, 1]), train_config=CONFIG,
                       out_dir=tmp_path, scores=scores, **kwargs)


def test_shorthands_expand_to_registered_filters_and_schedules():
    assert method_spec("el2n-hard") == {
        "name": "el2n-hard", "filter": "keep_fraction", "params": {"keep": "hard"},
        "score": "el2n", "score_params": {}, "schedule": None, "schedule_params": {},
        "selection": None}
    assert method_spec("forgetting-ccs")["filter"] == "ccs"
    assert method_spec("random")["filter"] == "random"
    rs2 = method_spec("rs2")
    assert rs2["schedule"] == "rs2" and rs2["filter"] is None
    with pytest.raises(CurateError, match="bad method 'el2n-sideways'"):
        method_spec("el2n-sideways")


def test_the_earlier_keys_read_as_filter_parameters():
    earlier = {"name": "m", "score": "el2n", "policy": "keep_fraction", "offset": 0.1,
               "balance": "label"}
    assert method_spec(earlier) == method_spec(
        {"name": "m", "score": "el2n", "filter": "keep_fraction",
         "params": {"keep": "hard", "offset": 0.1, "balance": "label"}})
    assert method_spec({"name": "r", "policy": "rs2"})["schedule"] == "rs2"
    with pytest.raises(CurateError, match="policy must be one of"):
        method_spec({"name": "m", "policy": "sideways"})


@pytest.mark.parametrize("method, message", [
    ({"name": "m", "filter": "nope"}, "method 'm': unknown filter 'nope'"),
    ({"name": "m", "filter": "keep_fraction", "score": "nope"}, "unknown scorer 'nope'"),
    ({"name": "m", "filter": "keep_fraction", "params": {"kep": "hard"}, "score": "el2n"},
     "has no parameter 'kep'.*did you mean 'keep'"),
    ({"name": "m", "filter": "keep_fraction", "params": {"keep": "sideways"}, "score": "el2n"},
     "keep must be one of"),
    ({"name": "m", "filter": "keep_fraction", "params": {"fraction": 0.2}, "score": "el2n"},
     "the experiment sets the filter's fraction"),
    ({"name": "m", "filter": "keep_fraction"}, "ranks by a score column: give score"),
    ({"name": "m", "schedule": "rs2", "schedule_params": {"pace": 2}},
     "schedule 'rs2' has no parameter 'pace'"),
    ({"name": "m", "filter": "random", "colour": "red"}, "unknown key 'colour'"),
    ({"name": "m", "selection": "selection"}, "trains on the recipe's selection, but none"),
])
def test_methods_are_checked_before_anything_runs(digits, tmp_path, method, message):
    with pytest.raises(CurateError, match=message):
        sweep(digits, tmp_path, ["random", method])
    assert not (tmp_path / "cells").exists()


def test_any_registered_filter_threshold_runs_once_per_seed_at_its_share(digits, tmp_path,
                                                                        scores):
    method = {"name": "low-el2n", "filter": "threshold", "params": {"max": 49}, "score": "el2n"}
    result = sweep(digits, tmp_path, [method], scores, fractions=[0.25, 0.5])
    rows = [r for r in result.results.to_pylist() if r["method"] == "low-el2n"]
    assert [(r["seed"], r["fraction"], r["n_kept"]) for r in rows] == [(0, 0.25, 50),
                                                                       (1, 0.25, 50)]
    kept = result.subsets[("low-el2n", 0.25, 0)]
    assert scores["el2n"].column("el2n").to_numpy()[kept].max() == 49   # column = primary
    assert {r["policy"] for r in rows} == {"threshold"}


def test_the_random_filter_takes_the_run_seed_unless_its_params_set_one(digits, tmp_path):
    result = sweep(digits, tmp_path, ["random", {"name": "fixed", "filter": "random",
                                                 "params": {"seed": 3}}])
    subsets = result.subsets
    assert not np.array_equal(subsets[("random", 0.25, 0)], subsets[("random", 0.25, 1)])
    assert np.array_equal(subsets[("fixed", 0.25, 0)], subsets[("fixed", 0.25, 1)])
    expected = select(digits.select(["id"]), [RandomSubset(0.25, seed=3)])
    assert subsets[("fixed", 0.25, 0)].tolist() == np.flatnonzero(
        expected.column("keep").to_numpy(zero_copy_only=False)).tolist()


def test_the_direction_comes_from_the_scorer(digits, tmp_path, scores):
    """AUM declares low = hard, EL2N high = hard: the same values, opposite hard subsets."""
    result = sweep(digits, tmp_path, ["aum-hard", "el2n-hard"], scores, seeds=[0])
    values = scores["el2n"].column("el2n").to_numpy()
    assert sorted(values[result.subsets[("aum-hard", 0.25, 0)]]) == list(range(50))
    assert sorted(values[result.subsets[("el2n-hard", 0.25, 0)]]) == list(range(150, 200))


def test_precomputed_scores_are_used_instead_of_scoring(digits, tmp_path, scores):
    method = {"name": "el2n-easy", "filter": "keep_fraction", "params": {"keep": "easy"},
              "score": "el2n", "score_params": {"model": "logreg", "epochs": 1}}
    result = sweep(digits, tmp_path, [method, "el2n-hard"], scores)
    assert result.scores_computed == 0 and result.scores_reused == 1   # one table, used twice
    assert not list((tmp_path / "scores").glob("*"))                   # nothing scored or kept


def test_a_text_scorer_method_runs_on_a_table_with_text(tmp_path):
    prose = ("The committee met on Tuesday to discuss the budget for the coming year, and the "
             "members agreed that the library should have a larger share of the funds. ") * 3
    rng = np.random.default_rng(0)
    n = 40
    table = pa.table({"id": [f"d{i}" for i in range(n)],
                      "x": [rng.normal(size=4).tolist() for _ in range(n)],
                      "label": [i % 2 for i in range(n)],
                      "text": [prose if i % 4 else "click here | home" for i in range(n)]})
    result = prune_sweep(table, table, methods=["gopher_quality-hard"], fractions=[0.25],
                         seeds=[0], train_config=TrainConfig(model="logreg", steps=2),
                         out_dir=tmp_path)
    assert result.scores_computed == 1 and result.trained == 2
    # gopher_quality_keep says True = easier, so the hardest quarter is the junk
    assert result.subsets[("gopher_quality-hard", 0.25, 0)].tolist() == list(range(0, n, 4))


def test_a_text_scorer_on_data_without_text_is_one_clear_error(tmp_path):
    with pytest.raises(CurateError, match="scorer 'gopher_quality' reads column 'text', which "
                                          "the data does not have; columns are: id, label, x"):
        prune_sweep("builtin:mnist1d", "builtin:mnist1d:split=test",
                    methods=["gopher_quality-hard"], fractions=[0.5], seeds=[0],
                    train_config=TrainConfig(model="logreg", steps=2), out_dir=tmp_path)
    assert not (tmp_path / "cells").exists()


def test_rs2_is_a_schedule_method_keyed_as_before(digits, tmp_path):
    first = sweep(digits, tmp_path, ["rs2"])
    again = sweep(digits, tmp_path, [{"name": "rs2", "schedule": "rs2"}])
    assert again.trained == 0 and again.reused == first.trained
    row = next(r for r in first.results.to_pylist() if r["method"] == "rs2")
    assert row["policy"] == "rs2" and row["n_kept"] == 50        # one round: a quarter
    assert ("rs2", 0.25, 0) not in first.subsets                  # no fixed subset


def test_a_schedule_over_a_filter_draws_only_the_kept_examples(digits, tmp_path, scores):
    spec = {"name": "easy-rs2", "filter": "keep_fraction", "params": {"keep": "easy"},
            "score": "el2n", "schedule": "rs2", "schedule_params": {"fraction": 0.5}}
    method = Method(spec)
    table = Scores(None, {}, scores)
    choice = method.choose(0.5, 7, digits, digits.column("id").to_pylist(), table)
    assert choice.schedule_params == {"fraction": 0.5, "seed": 7}
    easy = set(choice.positions.tolist())
    assert len(easy) == 100
    schedule = build(SCHEDULES, "rs2", {**choice.schedule_params, "positions": choice.positions,
                                        "batch_size": 10, "steps": 30})
    drawn = {int(p) for step in range(30) for p in schedule(step)}
    assert drawn == easy                      # three rounds of 50 cover the 100 easy ones
    result = sweep(digits, tmp_path, [spec], scores, fractions=[0.5], seeds=[0])
    row = next(r for r in result.results.to_pylist() if r["method"] == "easy-rs2")
    assert row["policy"] == "keep_fraction+rs2" and row["n_kept"] == 50


def test_a_selection_method_trains_on_what_the_selection_keeps(digits, tmp_path):
    ids = digits.column("id").to_pylist()
    selection = pa.table({"id": ids, "keep": [i < 30 for i in range(N)]})
    path = tmp_path / "selection.parquet"
    write_table(selection, path)
    result = sweep(digits, tmp_path / "out", [{"name": "recipe", "selection": "selection"},
                                              {"name": "file", "selection": str(path)}],
                   selection=selection, seeds=[0])
    for name in ("recipe", "file"):
        assert result.subsets[(name, 0.15, 0)].tolist() == list(range(30))
    rows = [r for r in result.results.to_pylist() if r["method"] == "recipe"]
    assert [(r["policy"], r["fraction"]) for r in rows] == [("selection", 0.15)]
    assert pq.read_table(tmp_path / "out" / "results.parquet").num_rows == 3
