"""Lottery tickets: pruning masks, linear mode connectivity and IMP with rewinding."""

import math

import pyarrow as pa
import pytest
import torch

from curate.core.errors import CurateError
from curate.experiment.lottery import LotteryResult
from curate.experiment.outputs import write_result
from curate.train import TensorData, TrainConfig, make_model, train
from curate.train.connectivity import barrier, error_along_path, error_barrier, interpolate
from curate.train.lottery import ImpRuns, imp
from curate.train.pruning import (
    apply_masks,
    magnitude_masks,
    prunable_parameters,
    random_masks,
    sparsity,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = TrainConfig(model="mlp", model_params={"hidden": 32}, optimizer="adam", lr=1e-2,
                     batch_size=64, steps=30, eval_every=10)


@pytest.fixture(scope="module")
def digits():
    return (TensorData.from_source("builtin:digits"),
            TensorData.from_source("builtin:digits:split=test"))


@pytest.fixture(scope="module")
def runs(digits):
    return imp(CONFIG, *digits, levels=2, seeds=(0, 1), rewind_step=5, target_acc=0.5,
               instability="all")


@pytest.fixture(scope="module")
def lottery(runs):
    return LotteryResult.from_runs(runs)


def toy_state():
    """Two layers with distinct magnitudes: a = 1..10, b = 0.5, 1.5, ..., 9.5 (signs mixed)."""
    a = torch.arange(1, 11, dtype=torch.float32).reshape(2, 5)
    b = -(torch.arange(10, dtype=torch.float32) + 0.5).reshape(5, 2)
    return {"a.weight": a, "a.bias": torch.zeros(2), "b.weight": b, "b.bias": torch.zeros(5)}


# --- pruning ---------------------------------------------------------------------------

def test_prunable_parameters_are_linear_and_conv_weights_in_order():
    resnet = make_model("resnet", (1, 8, 8), 3)
    names = prunable_parameters(resnet)
    assert names[0] == "stem.0.weight" and names[-1] == "head.weight"
    assert not any("bn" in n or n.endswith("bias") for n in names)
    assert names == prunable_parameters(resnet.state_dict())
    assert prunable_parameters(make_model("mlp", (4,), 3)) == [
        "first.weight", "hidden.0.weight", "out.weight"]


def test_global_pruning_takes_the_smallest_magnitudes_across_layers():
    masks = magnitude_masks(toy_state(), 0.3)          # 6 of 20: |w| 0.5..3.5 and 1..3
    assert list(masks) == ["a.weight", "b.weight"]
    assert masks["a.weight"].flatten().tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    assert masks["b.weight"].flatten().tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    assert masks["a.weight"].dtype == torch.float32


def test_layer_pruning_counts_each_layer_with_half_up_rounding():
    masks = magnitude_masks(toy_state(), 0.25, scope="layer")    # 2.5 -> 3 per layer
    assert [int(m.sum()) for m in masks.values()] == [7, 7]
    assert masks["a.weight"].flatten()[:3].tolist() == [0, 0, 0]
    global_masks = magnitude_masks(toy_state(), 0.25)              # 5 of 20, all in b or a
    assert sparsity(global_masks)["overall"]["kept"] == 15


def test_pruning_only_counts_remaining_weights_and_masks_only_shrink():
    first = magnitude_masks(toy_state(), 0.5)
    state = apply_masks(toy_state(), first)
    second = magnitude_masks(state, 0.5, masks=first)
    assert sparsity(second)["overall"]["kept"] == 5
    for name in first:
        assert torch.all(second[name] <= first[name])


def test_ties_are_broken_by_position():
    state = {"w.weight": torch.ones(3, 4)}
    masks = magnitude_masks(state, 0.5)
    assert masks["w.weight"].flatten().tolist() == [0] * 6 + [1] * 6
    assert torch.equal(masks["w.weight"], magnitude_masks(state, 0.5)["w.weight"])


def test_output_layer_is_pruned_at_its_own_rate():
    model = make_model("mlp", (40,), 10)                 # 4000 + 10000 + 1000 weights
    masks = magnitude_masks(model, 0.2, output_fraction=0.1)
    assert int(masks["out.weight"].sum()) == 900
    assert int(masks["first.weight"].sum() + masks["hidden.0.weight"].sum()) == 14000 - 2800
    masks = magnitude_masks(model, 0.2, masks=masks, output_fraction=0.1)
    assert int(masks["out.weight"].sum()) == 810
    whole = magnitude_masks(model, 0.2, output_fraction=0.5, output_layer="first.weight")
    assert int(whole["first.weight"].sum()) == 2000


def test_random_masks_keep_per_layer_counts_and_are_seeded():
    masks = magnitude_masks(make_model("mlp", (40,), 10), 0.6)
    shuffled = random_masks(masks, seed=3)
    assert [r["kept"] for r in sparsity(shuffled)["layers"]] == \
        [r["kept"] for r in sparsity(masks)["layers"]]
    assert not torch.equal(shuffled["hidden.0.weight"], masks["hidden.0.weight"])
    again = random_masks(masks, seed=3)
    assert all(torch.equal(again[n], shuffled[n]) for n in masks)
    assert not torch.equal(random_masks(masks, seed=4)["first.weight"], shuffled["first.weight"])


def test_sparsity_reports_layers_and_overall():
    report = sparsity(magnitude_masks(toy_state(), 0.3))
    assert report["overall"] == {"kept": 14, "total": 20, "sparsity": pytest.approx(0.3)}
    assert pa.Table.from_pylist(report["layers"]).column_names == [
        "layer", "kept", "total", "sparsity"]


def test_apply_masks_copies():
    state = toy_state()
    masked = apply_masks(state, magnitude_masks(state, 0.3))
    assert masked["a.weight"][0, :3].tolist() == [0, 0, 0]
    assert state["a.weight"][0, 0] == 1                   # the input is untouched
    masked["a.bias"] += 1
    assert state["a.bias"].sum() == 0


@pytest.mark.parametrize("call, message", [
    (lambda: magnitude_masks(toy_state(), 1.5), "fraction must be"),
    (lambda: magnitude_masks(toy_state(), 0.2, scope="local"), "scope must be"),
    (lambda: magnitude_masks(toy_state(), 0.2, layers=["c.weight"]), "not a parameter"),
    (lambda: magnitude_masks(toy_state(), 0.2, layers=["a.weight"],
                             masks={"b.weight": torch.ones(5, 2)}), "not among the layers"),
    (lambda: magnitude_masks(toy_state(), 0.2, masks={"a.weight": torch.ones(3)}), "shape"),
    (lambda: magnitude_masks(toy_state(), 0.2, output_fraction=0.1, output_layer="x"),
     "output_layer"),
    (lambda: apply_masks(toy_state(), {"c.weight": torch.ones(1)}), "does not have"),
])
def test_bad_pruning_arguments(call, message):
    with pytest.raises(CurateError, match=message):
        call()


# --- connectivity ----------------------------------------------------------------------

def test_interpolate_mixes_floats_and_keeps_integer_buffers_of_a():
    a, b = make_model("resnet", (1, 8, 8), 3).state_dict(), make_model(
        "resnet", (1, 8, 8), 3).state_dict()
    b["stem.1.running_mean"] += 2
    b["stem.1.num_batches_tracked"] += 7
    mid = interpolate(a, b, 0.5)
    assert torch.allclose(mid["stem.1.running_mean"], a["stem.1.running_mean"] + 1)
    assert torch.allclose(mid["head.weight"], (a["head.weight"] + b["head.weight"]) / 2)
    assert mid["stem.1.num_batches_tracked"] == a["stem.1.num_batches_tracked"]
    assert torch.equal(interpolate(a, b, 1.0)["head.weight"], b["head.weight"])


def test_barrier_is_zero_for_identical_endpoints(digits):
    state = train(CONFIG, digits[0], seed=0).model.state_dict()
    result = error_barrier(CONFIG, state, state, digits[1], points=5)
    assert result["barrier"] == 0 and result["barrier_linear"] == 0
    assert len({p["error"] for p in result["path"]}) == 1
    assert [p["alpha"] for p in result["path"]] == [0, 0.25, 0.5, 0.75, 1]


def test_barrier_is_zero_along_a_rescaled_linear_model(digits):
    """Between W and 2W a linear classifier predicts the same classes: flat error."""
    state = train(TrainConfig(model="logreg", steps=20), digits[0], seed=0).model.state_dict()
    doubled = {name: 2 * value for name, value in state.items()}
    path = error_along_path("logreg", state, doubled, digits[1], points=7)
    assert len({p["error"] for p in path}) == 1
    assert path[0]["loss"] != path[-1]["loss"]
    assert barrier(path)["barrier"] == 0


def test_barrier_of_a_path_with_linear_error():
    path = [{"alpha": i / 4, "error": 0.1 + 0.2 * i / 4, "loss": 0.0} for i in range(5)]
    result = barrier(path)
    assert result["barrier_linear"] == pytest.approx(0, abs=1e-12)
    assert result["barrier"] == pytest.approx(0.1)            # max 0.3 - mean 0.2
    bump = [dict(p, error=p["error"] + (0.05 if p["alpha"] == 0.5 else 0)) for p in path]
    assert barrier(bump)["barrier_linear"] == pytest.approx(0.05)


def test_bad_connectivity_arguments(digits):
    state = make_model("logreg", (64,), 10).state_dict()
    with pytest.raises(CurateError, match="points must be"):
        error_along_path("logreg", state, state, digits[1], points=1)
    with pytest.raises(CurateError, match="differ in their entries"):
        interpolate(state, {"x": torch.ones(1)}, 0.5)


# --- IMP -------------------------------------------------------------------------------

def test_imp_returns_plain_rows(runs):
    assert isinstance(runs, ImpRuns)
    assert all(isinstance(r, dict) for r in runs.runs + runs.barriers + runs.curves)
    assert {(r["level"], r["kind"]) for r in runs.runs if r["seed"] == 0} == {
        (0, "dense"), *((lv, k) for lv in (1, 2) for k in ("ticket", "reinit", "random_mask"))}


def test_lottery_tables_have_the_documented_columns(lottery):
    assert isinstance(lottery, LotteryResult)
    assert lottery.trained == lottery.runs.num_rows and lottery.reused == 0
    assert lottery.runs.column_names == [
        "seed", "level", "kind", "kept", "total", "density", "sparsity", "test_acc",
        "test_loss", "train_acc", "train_loss", "steps", "steps_to_target", "seconds"]
    assert lottery.summary.column_names == [
        "level", "kind", "density", "sparsity", "n", "mean", "std", "ci95_lo", "ci95_hi",
        "reached", "steps_to_target"]
    assert lottery.barriers.column_names == [
        "seed", "kind", "level", "other_level", "sparsity", "barrier", "barrier_linear",
        "max_error", "endpoint_error_mean", "error_a", "error_b"]
    assert lottery.curves.column_names == ["seed", "level", "kind", "step", "test_acc",
                                           "test_loss"]
    # 2 seeds x (dense + 2 levels x 3 kinds); successive 2 + instability 3 per seed.
    assert lottery.runs.num_rows == 14 and lottery.summary.num_rows == 7
    assert sorted(lottery.barriers.column("kind").to_pylist()) == ["instability"] * 6 + [
        "successive"] * 4
    assert set(lottery.runs.column("steps").to_pylist()) == {30}
    assert set(lottery.curves.column("step").to_pylist()) == {15, 25, 30}


def test_lottery_densities_follow_the_pruning_rate(lottery):
    rows = lottery.runs.to_pylist()
    total = rows[0]["total"]
    kept = {(r["level"], r["kind"]): r["kept"] for r in rows if r["seed"] == 0}
    assert kept[(0, "dense")] == total
    expected = total
    for level in (1, 2):
        expected -= math.floor(0.2 * expected + 0.5)
        assert kept[(level, "ticket")] == kept[(level, "reinit")] == \
            kept[(level, "random_mask")] == expected


def test_lottery_masks_shrink_and_pruned_weights_stay_zero(lottery):
    for seed in (0, 1):
        first, second = lottery.masks[(seed, 1)], lottery.masks[(seed, 2)]
        for name, mask in first.items():
            assert torch.all(second[name] <= mask)
            assert torch.all(lottery.states[(seed, 2)][name][second[name] == 0] == 0)
            assert torch.all(lottery.states[(seed, 1)][name][mask == 0] == 0)


def test_rewind_state_is_the_step_k_checkpoint(lottery, digits):
    dense = train(TrainConfig(**{**CONFIG.__dict__, "checkpoint_steps": (5,)}), digits[0],
                  seed=1)
    rewind = lottery.rewind_states[1]
    assert all(torch.equal(rewind[n], dense.checkpoints[5][n]) for n in rewind)


def test_levels_restart_from_the_masked_rewind_weights(digits):
    """With a vanishing learning rate the trained ticket is the masked rewind state."""
    still = TrainConfig(model="mlp", model_params={"hidden": 32}, optimizer="sgd", lr=1e-12,
                        momentum=0.0, batch_size=64, steps=8)
    result = imp(still, *digits, levels=2, seeds=(0,), rewind_step=3, controls=(),
                 instability="none")
    rewind, masks = result.rewind_states[0], result.masks[(0, 2)]
    expected = apply_masks(rewind, masks)
    trained = result.states[(0, 2)]
    for name, value in expected.items():
        assert torch.allclose(trained[name], value, atol=1e-8)
    assert int((trained["first.weight"] != 0).sum()) == int(masks["first.weight"].sum())


def test_pretrain_positions_change_only_the_rewind_phase(digits):
    positions = list(range(0, 200))
    result = imp(CONFIG, *digits, levels=0, seeds=(0,), rewind_step=5, controls=(),
                 pretrain=positions, instability="none")
    pre = train(TrainConfig(**{**CONFIG.__dict__, "steps": 5, "eval_every": None}),
                digits[0], seed=0, positions=positions)
    rewind = result.rewind_states[0]
    assert all(torch.equal(rewind[n], pre.model.state_dict()[n]) for n in rewind)
    assert result.settings["pretrain_examples"] == 200


def test_lottery_is_deterministic(lottery, digits):
    again = LotteryResult.from_runs(imp(CONFIG, *digits, levels=2, seeds=(0, 1), rewind_step=5,
                                        target_acc=0.5, instability="all"))
    assert again.runs.drop(["seconds"]).equals(lottery.runs.drop(["seconds"]))
    assert again.barriers.equals(lottery.barriers)
    assert again.curves.equals(lottery.curves)


def test_lottery_write(lottery, tmp_path):
    report = write_result(lottery, tmp_path / "imp")
    out = report.parent
    assert lottery.report == report == tmp_path / "imp" / "report.md"
    names = {p.name for p in out.iterdir()}
    assert {"runs.parquet", "runs.csv", "summary.csv", "barriers.csv", "report.md",
            "accuracy_vs_sparsity.png", "barrier_vs_level.png"} <= names
    report = (out / "report.md").read_text()
    assert "| 2 | 64.00 |" in report and "accuracy_vs_sparsity.png" in report


@pytest.mark.parametrize("kwargs, message", [
    ({"levels": -1}, "levels must be"),
    ({"levels": 1, "fraction": 1.0}, "fraction must be in"),
    ({"levels": 1, "rewind_step": 30}, "rewind_step must be"),
    ({"levels": 1, "controls": ("shuffle",)}, "controls must be"),
    ({"levels": 1, "seeds": ()}, "seeds must be"),
    ({"levels": 1, "pretrain": [0, 1]}, "need rewind_step > 0"),
    ({"levels": 1, "rewind_step": 2, "pretrain": [10 ** 6]}, "pretrain must be"),
    ({"levels": 1, "instability": "some"}, "instability must be"),
    ({"levels": 1, "target_acc": 80}, "target_acc must be"),
    ({"levels": 1, "barrier_points": 1}, "barrier_points must be"),
])
def test_bad_imp_arguments(digits, kwargs, message):
    with pytest.raises(CurateError, match=message):
        imp(CONFIG, *digits, **kwargs)


def test_imp_needs_test_data(digits):
    with pytest.raises(CurateError, match="needs test_data"):
        imp(CONFIG, digits[0], None, levels=1)
