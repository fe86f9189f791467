"""Every experiment is registered by name and called one way (curate.experiment)."""

import inspect

import numpy as np
import pyarrow as pa
import pytest

from curate.core.errors import CurateError
from curate.core.registry import EXPERIMENTS
from curate.io import Source, write_table

pytestmark = pytest.mark.usefixtures("one_torch_thread")

NAMES = ("prune-sweep", "curriculum", "lottery", "sharpness", "rewind-diet", "repetition")
COMMON = ("train_config", "seeds", "out_dir", "workers", "progress", "scores", "selection")
MLP = {"model": "mlp", "model_params": {"hidden": 8}, "optimizer": "adam", "lr": 0.01,
       "batch_size": 50, "steps": 8}
TEST = "builtin:digits:split=test"
N = 200


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """200 digits as a parquet file, the selection keeping the first 60, an EL2N table."""
    table = Source("builtin:digits").read_all().slice(0, N)
    path = tmp_path_factory.mktemp("data") / "digits.parquet"
    write_table(table, path)
    ids = table.column("id")
    selection = pa.table({"id": ids, "keep": [i < 60 for i in range(N)]})
    el2n = pa.table({"id": ids, "el2n": np.random.default_rng(0).random(N)})
    return str(path), selection, {"el2n": el2n}


def call(name, data, tmp_path, **own):
    path, selection, scores = data
    return EXPERIMENTS.get(name)(path, TEST, train_config=MLP, seeds=own.pop("seeds", 2),
                                 out_dir=tmp_path / name, scores=scores, selection=selection,
                                 **own)


def check(result, tmp_path, name):
    for attr in ("trained", "reused", "scores_computed", "scores_reused"):
        assert isinstance(getattr(result, attr), int), attr
    assert result.seconds > 0
    assert result.report == tmp_path / name / "report.md" and result.report.stat().st_size


def test_every_experiment_is_registered_with_the_common_parameters():
    assert set(NAMES) <= set(EXPERIMENTS.names())
    for name in NAMES:
        parameters = inspect.signature(EXPERIMENTS.get(name)).parameters
        assert list(parameters)[:2] == ["data", "test_data"], name
        assert all(p in parameters for p in COMMON), name


def test_prune_sweep_by_name_with_scores_and_the_recipe_selection(data, tmp_path):
    own = dict(methods=["el2n-hard", {"name": "recipe", "selection": "selection"}],
               fractions=[0.5], budget="same-steps")
    result = call("prune-sweep", data, tmp_path, **own)
    check(result, tmp_path, "prune-sweep")
    assert result.trained == 2 * 3 and result.scores_computed == 0 and result.scores_reused == 1
    assert result.subsets[("recipe", 0.3, 0)].tolist() == list(range(60))
    again = call("prune-sweep", data, tmp_path, **own)
    assert again.trained == 0 and again.reused == 6


def test_curriculum_by_name(data, tmp_path):
    own = dict(score={"name": "el2n", "model": "logreg"}, orderings=["easy_to_hard"],
               budgets=[6], eval_points=2)
    result = call("curriculum", data, tmp_path, seeds=1, **own)
    check(result, tmp_path, "curriculum")
    assert result.trained == 2 and result.scores_reused == 1 and result.scores_computed == 0
    assert call("curriculum", data, tmp_path, seeds=1, **own).trained == 0


def test_lottery_by_name_pretrains_on_the_recipe_selection(data, tmp_path):
    own = dict(levels=1, rewind_step=2, controls=[], instability="none", pretrain="selection")
    result = call("lottery", data, tmp_path, **own)
    check(result, tmp_path, "lottery")
    assert result.settings["pretrain_examples"] == 60
    assert result.trained == 2 * 2 and result.reused == 0
    assert "pre-trained on 60 examples" in result.report.read_text()
    again = call("lottery", data, tmp_path, **own)       # the rows come back from the cache
    assert again.trained == 0 and again.reused == 4
    assert again.runs.drop_columns(["seconds"]).equals(result.runs.drop_columns(["seconds"]))
    with pytest.raises(CurateError, match="pretrain: selection has no 'keep' column"):
        call("lottery", data, tmp_path, **{**own, "pretrain": pa.table({"id": [0]})})


def test_sharpness_by_name(data, tmp_path):
    own = dict(rewind_step=2, fractions=[0.5], hessian_examples=50, top_k=2,
               trace_samples=2, lanczos_iters=4, eval_every=2, retrain=False)
    result = call("sharpness", data, tmp_path, seeds=1, **own)
    check(result, tmp_path, "sharpness")
    assert result.trained == 1 and result.seeds.num_rows == 1
    assert (tmp_path / "sharpness" / "predicted_vs_observed.png").exists()
    again = call("sharpness", data, tmp_path, seeds=1, **own)
    assert again.trained == 0 and again.reused == 1
    assert again.fractions.equals(result.fractions)


def test_rewind_diet_by_name_with_method_subsets(data, tmp_path):
    own = dict(subsets=["el2n-easy", {"name": "recipe", "selection": "selection"}],
               subset_fraction=0.25, rewind_steps=[0, 2], levels=1, tolerance=1.0)
    result = call("rewind-diet", data, tmp_path, **own)
    check(result, tmp_path, "rewind-diet")
    rows = result.rows.to_pylist()
    assert {(r["subset"], r["n_pretrain"]) for r in rows if r["rewind_step"] == 2} == {
        ("full", N), ("el2n-easy", 50), ("recipe", 60)}
    assert result.scores_reused == 1 and result.trained == 2 + 4 * 4
    again = call("rewind-diet", data, tmp_path, **own)
    assert again.trained == 0 and again.reused == result.trained
    with pytest.raises(CurateError, match="fixed subset"):
        call("rewind-diet", data, tmp_path, **{**own, "subsets": ["rs2"]})


def test_bad_common_arguments_are_one_line_errors(data, tmp_path):
    with pytest.raises(CurateError, match="train_config has no field 'epoch'"):
        EXPERIMENTS.get("lottery")(data[0], TEST, train_config={**MLP, "epoch": 2}, seeds=1,
                                   out_dir=tmp_path, levels=1)
    with pytest.raises(CurateError, match="seeds must be"):
        EXPERIMENTS.get("prune-sweep")(data[0], TEST, train_config=MLP, seeds=0,
                                       out_dir=tmp_path, methods=["random"], fractions=[0.5])


def test_repetition_by_name_draws_pools_from_the_selection_and_the_scores(data, tmp_path):
    path, selection, scores = data
    pools = ["all", {"name": "kept", "selection": "selection"},
             {"name": "hard", "where": "el2n > 0.5 AND label <> 3"}]
    result = EXPERIMENTS.get("repetition")(
        path, TEST, train_config={**MLP, "batch_size": 25, "steps": 2}, seeds=1,
        out_dir=tmp_path / "repetition", scores=scores, selection=selection, pools=pools,
        epochs=[1, 2], bootstrap=0)
    check(result, tmp_path, "repetition")
    assert result.trained == 3 * 3
    el2n = dict(zip(scores["el2n"].column("id").to_pylist(),
                    scores["el2n"].column("el2n").to_pylist()))
    table = Source(path).read_all()
    label = dict(zip(table.column("id").to_pylist(), table.column("label").to_pylist()))
    drawn = {(r["pool"], r["epochs"]): r["unique"] for r in result.pools.to_pylist()}
    assert drawn == {(p, e): 50 // e for p in ("all", "kept", "hard") for e in (1, 2)}
    # the pools really hold what they say (their cells train on those positions)
    from curate.experiment.repetition import _base_rows, _pool_frame

    frame = _pool_frame(table, scores, drop=())
    rows = _base_rows(pools[2], frame, table, selection)
    ids = table.column("id").take(rows).to_pylist()
    assert ids and all(el2n[i] > 0.5 and label[i] != 3 for i in ids)
    assert _base_rows(pools[1], frame, table, selection).tolist() == list(range(60))
