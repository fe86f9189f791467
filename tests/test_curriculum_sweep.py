"""The curriculum sweep on a 600-example slice of builtin:digits with a logistic regression."""

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.core.errors import CurateError
from curate.experiment import curriculum_sweep
from curate.io import Source, write_table
from curate.train import TensorData, TrainConfig, train
from tests.test_cli import assert_one_line_error, curate

N, BATCH = 600, 64
BUDGETS = [8, 24]
SEEDS = [0, 1]
ORDERINGS = ("easy_to_hard", "random")
PACINGS = ("linear", "step")
SCORE = {"model": "logreg", "epochs": 2, "lr": 0.1, "seeds": 1}


@pytest.fixture(scope="module")
def digits():
    return Source("builtin:digits").read_all().slice(0, N)


@pytest.fixture(scope="module")
def config():
    return TrainConfig(model="logreg", lr=0.1, batch_size=BATCH, steps=1)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("curriculum")


@pytest.fixture(scope="module")
def sweep(digits, config, sweep_dir):
    return curriculum_sweep(digits, "builtin:digits:split=test", score="el2n",
                            score_params=SCORE, orderings=ORDERINGS, pacings=PACINGS,
                            budgets=BUDGETS, seeds=SEEDS, train_config=config, eval_points=4,
                            out_dir=sweep_dir)


def test_every_arm_budget_and_seed_runs_for_exactly_its_budget(sweep):
    rows = sweep.results.to_pylist()
    assert len(rows) == len(BUDGETS) * len(SEEDS) * (1 + len(ORDERINGS) * len(PACINGS))
    arms = {(r["ordering"], r["pacing"]) for r in rows}
    assert arms == {("none", "none")} | {(o, p) for o in ORDERINGS for p in PACINGS}
    assert all(r["steps"] == r["budget"] for r in rows)
    assert sweep.trained == len(rows) and sweep.scores_computed == 1


def test_standard_arm_is_plain_shuffled_training(sweep, digits, config):
    train_set = TensorData.from_table(digits)
    test_set = TensorData.from_source("builtin:digits:split=test")
    plain = train(TrainConfig(model="logreg", lr=0.1, batch_size=BATCH, steps=BUDGETS[0]),
                  train_set, test_set, seed=1).final["test_acc"]
    row = next(r for r in sweep.results.to_pylist()
               if r["ordering"] == "none" and r["budget"] == BUDGETS[0] and r["seed"] == 1)
    assert row["test_acc"] == pytest.approx(plain)


def test_comparisons_are_paired_differences(sweep):
    acc = {(r["ordering"], r["pacing"], r["budget"], r["seed"]): r["test_acc"]
           for r in sweep.results.to_pylist()}
    rows = sweep.comparisons.to_pylist()
    assert len(rows) == len(PACINGS) * len(BUDGETS) * 2
    for row in rows:
        other = ("random", row["pacing"]) if row["against"] == "random" else ("none", "none")
        diffs = [acc[("easy_to_hard", row["pacing"], row["budget"], s)]
                 - acc[(*other, row["budget"], s)] for s in SEEDS]
        assert row["n"] == len(SEEDS)
        assert row["mean"] == pytest.approx(sum(diffs) / len(diffs))
        assert row["ci95_lo"] <= row["mean"] <= row["ci95_hi"]


def test_curves_and_outputs(sweep, sweep_dir):
    curves = sweep.curves.to_pylist()
    steps = sorted({r["step"] for r in curves if r["budget"] == BUDGETS[1]})
    assert steps == [6, 12, 18, 24]  # eval_points=4 over 24 steps
    for name in ("results.parquet", "results.csv", "summary.csv", "curves.csv",
                 "comparisons.csv", "accuracy_vs_steps.png", "report.md"):
        assert (sweep_dir / name).stat().st_size > 0
    report = (sweep_dir / "report.md").read_text()
    assert "Budget rule" in report and "easy_to_hard" in report and "against" in report


def test_rerun_reuses_the_scores_and_every_run(sweep, digits, config, sweep_dir):
    again = curriculum_sweep(digits, "builtin:digits:split=test", score="el2n",
                             score_params=SCORE, orderings=ORDERINGS, pacings=PACINGS,
                             budgets=BUDGETS, seeds=SEEDS, train_config=config, eval_points=4,
                             out_dir=sweep_dir)
    assert again.trained == 0 and again.scores_computed == 0 and again.scores_reused == 1
    assert again.results.drop_columns(["reused"]).equals(sweep.results.drop_columns(["reused"]))


def test_bad_arguments_are_clear_errors(digits, config, tmp_path):
    kwargs = dict(score="el2n", score_params=SCORE, budgets=[4], train_config=config,
                  out_dir=tmp_path)
    with pytest.raises(CurateError, match="orderings"):
        curriculum_sweep(digits, digits, orderings=["sideways"], **kwargs)
    with pytest.raises(CurateError, match="pacing"):
        curriculum_sweep(digits, digits, pacings=["cubic"], **kwargs)
    with pytest.raises(CurateError, match="at least one seed"):
        curriculum_sweep(digits, digits, seeds=[], **kwargs)
    with pytest.raises(CurateError, match="column 'nope' has no direction"):
        curriculum_sweep(digits, digits, by="nope", **kwargs)   # before any scoring
    assert not list((tmp_path / "scores").glob("*.parquet"))
    with pytest.raises(CurateError, match="score column 'nope' not found; the scorer wrote el2n"):
        curriculum_sweep(digits, digits, by="nope", higher_is_harder=True, **kwargs)


def test_cli_runs_the_sweep(digits, tmp_path):
    data = tmp_path / "digits.parquet"
    write_table(digits.slice(0, 200), data)
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, [
        "experiment", "curriculum", str(data), "--test", "builtin:digits:split=test",
        "--score", "el2n:model=logreg,epochs=1,seeds=1", "--ordering", "easy_to_hard",
        "--budget", "5", "--model", "logreg", "--seeds", "2", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert pq.read_table(out / "results.parquet").num_rows == 2 * 2
    bad = curate("experiment", "curriculum", str(data), "--test", "builtin:digits:split=test",
                 "--score", "nosuchscore", "--budget", "5", "-o", str(tmp_path / "bad"))
    assert_one_line_error(bad, "unknown scorer 'nosuchscore'")
