"""Predicted vs observed one-shot prunable fraction (curate.train.prunability and its
tables and report, curate.experiment.prunability), on digits."""

import pyarrow.csv as pcsv
import pytest

from curate.core.errors import CurateError
from curate.experiment.outputs import write_result
from curate.experiment.prunability import (
    ACCURACY_PLOT,
    DISPLACEMENT_SCHEMA,
    FRACTIONS_SCHEMA,
    PREDICTED_PLOT,
    SEEDS_SCHEMA,
    SPECTRUM_SCHEMA,
    TRAJECTORY_SCHEMA,
    PrunabilityResult,
)
from curate.train import TensorData, TrainConfig
from curate.train.prunability import PREDICTION_GRID, PrunabilityRuns, prunability

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CONFIG = TrainConfig(model="mlp", model_params={"hidden": 16}, optimizer="adam", lr=1e-2,
                     schedule="cosine", batch_size=64, steps=60)
FRACTIONS = (0.2, 0.5, 0.8, 0.95)
OPTIONS = dict(rewind_step=3, fractions=FRACTIONS, seeds=(0, 1), hessian_examples=200,
               top_k=5, trace_samples=10, eval_every=5)
TIMES = ("lanczos_seconds", "trace_seconds", "sweep_seconds")


@pytest.fixture(scope="module")
def digits():
    return (TensorData.from_source("builtin:digits"),
            TensorData.from_source("builtin:digits:split=test"))


@pytest.fixture(scope="module")
def runs(digits):
    return prunability(CONFIG, *digits, **OPTIONS)


@pytest.fixture(scope="module")
def result(runs):
    return PrunabilityResult.from_runs(runs)


def test_prunability_returns_plain_rows(runs):
    assert isinstance(runs, PrunabilityRuns)
    assert [r["seed"] for r in runs.seeds] == [0, 1]
    assert all(isinstance(r, dict) for r in runs.fractions + runs.trajectory)


def test_tables_have_the_documented_columns(result):
    assert result.seeds.schema == SEEDS_SCHEMA
    assert result.fractions.schema == FRACTIONS_SCHEMA
    assert result.spectrum.schema == SPECTRUM_SCHEMA
    assert result.displacement.schema == DISPLACEMENT_SCHEMA
    assert result.trajectory.schema == TRAJECTORY_SCHEMA
    assert result.seeds.column("seed").to_pylist() == [0, 1]
    assert result.fractions.num_rows == 2 * len(FRACTIONS)
    assert result.spectrum.num_rows == 2 * 5
    assert result.displacement.num_rows == 2 * len(PREDICTION_GRID)
    # the dense run is checkpointed at W_k (step 3) and every 5 steps after it
    steps = [r["step"] for r in result.trajectory.to_pylist() if r["seed"] == 0]
    assert steps == list(range(3, 61, 5))
    n_params = 64 * 16 + 16 * 16 + 16 * 10   # mlp depth 2: in -> 16 -> 16 -> 10
    assert result.seeds.column("n_params").to_pylist() == [n_params, n_params]
    kept = [r["kept"] for r in result.fractions.to_pylist() if r["seed"] == 0]
    assert kept == [round(n_params * (1 - p)) for p in FRACTIONS]


def test_threshold_and_observed_follow_the_per_fraction_table(result):
    dense = result.seeds.column("dense_test_acc").to_pylist()
    assert result.dense["mean"] == pytest.approx(sum(dense) / 2)
    assert result.threshold == pytest.approx(min(result.dense["ci95"][0],
                                                 result.dense["mean"] - 0.01))
    for row in result.seeds.to_pylist():
        mine = [f for f in result.fractions.to_pylist() if f["seed"] == row["seed"]]
        for column, observed in (("acc_retrained", "observed"),
                                 ("acc_no_retrain", "observed_no_retrain")):
            expected = 0.0
            for f in mine:   # the largest fraction up to which every tried one matches
                if f[column] < result.threshold:
                    break
                expected = f["fraction"]
            assert row[observed] == expected


def test_eps_is_the_smallest_excess_of_a_non_matching_checkpoint(result):
    for row in result.seeds.to_pylist():
        candidates = [(t["excess"], t["step"]) for t in result.trajectory.to_pylist()
                      if t["seed"] == row["seed"] and t["test_acc"] < result.threshold
                      and t["excess"] > 0]
        assert candidates, "the config is chosen so that W_k does not match"
        assert (row["eps"], row["eps_step"]) == min(candidates)


def test_predictions_are_fractions_and_the_lambda_max_rule_is_the_more_cautious(result):
    for row in result.seeds.to_pylist():
        lam, gordon = row["predicted_lambda_max"], row["predicted_gordon"]
        assert 0 <= lam <= 1 and 0 <= gordon <= 1
        spectrum = [s["eigenvalue"] for s in result.spectrum.to_pylist()
                    if s["seed"] == row["seed"]]
        assert spectrum[0] == row["lambda_max"] == max(spectrum)
        tail_mean = (row["trace"] - sum(max(v, 0) for v in spectrum)) / (
            row["n_params"] - len(spectrum))
        # Where 1/2 lambda_max R^2 <= eps every Gordon term is >= 1/2, so up to 50% the
        # Gordon rule holds wherever the lambda_max rule does (if the tail is not sharper).
        if tail_mean <= row["lambda_max"]:
            assert gordon >= min(lam, 0.5)


def test_runs_repeat_and_workers_give_the_same_tables(result, digits):
    again = PrunabilityResult.from_runs(prunability(CONFIG, *digits, **OPTIONS, workers=2))
    assert again.seeds.drop_columns(list(TIMES)).equals(result.seeds.drop_columns(list(TIMES)))
    for name in ("fractions", "spectrum", "displacement", "trajectory"):
        assert getattr(again, name).equals(getattr(result, name)), name
    assert again.threshold == result.threshold


def test_without_retraining_only_the_pruned_accuracy_is_measured(digits):
    single = PrunabilityResult.from_runs(
        prunability(CONFIG, *digits, **{**OPTIONS, "seeds": (0,)}, retrain=False))
    assert single.fractions.column("acc_retrained").null_count == len(FRACTIONS)
    assert single.seeds.column("observed").to_pylist() == [None]
    assert single.trained == 1                 # the dense network; nothing retrained
    assert single.dense["ci95"] is None
    assert single.threshold == pytest.approx(single.dense["mean"] - 0.01)


def test_write_puts_tables_plots_and_report(result, tmp_path):
    assert result.trained == 2 * (1 + len(FRACTIONS))   # dense + one retrain per fraction
    out = write_result(result, tmp_path / "prunability").parent
    for name in ("seeds", "fractions", "spectrum", "displacement", "trajectory"):
        assert pcsv.read_csv(out / f"{name}.csv").num_rows == getattr(result, name).num_rows
    for plot in (PREDICTED_PLOT, ACCURACY_PLOT):
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert f"Matching threshold {result.threshold:.4f}" in report
    assert f"]({PREDICTED_PLOT})" in report
    assert not [p for p in out.iterdir() if p.name.startswith(".")]   # no temporary files


@pytest.mark.parametrize("change, message", [
    ({"rewind_step": 60}, "rewind_step must be an integer in [0, 60)"),
    ({"fractions": (0.5, 0.2)}, "fractions must be increasing numbers in (0, 1]"),
    ({"top_k": 500}, "top_k=500 exceeds lanczos_iters=400"),
    ({"tolerance": 1.0}, "tolerance must be an accuracy drop in [0, 1)"),
    ({"seeds": (0, 0)}, "seeds must be distinct integers"),
    ({"trace_samples": 1}, "trace_samples must be an integer >= 2"),
])
def test_bad_arguments_are_refused(digits, change, message):
    with pytest.raises(CurateError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        prunability(CONFIG, *digits, **{**OPTIONS, **change})
