"""The prune sweep on a 600-example slice of builtin:digits with a logistic regression."""

import math

import numpy as np
import pyarrow.parquet as pq
import pytest

from curate.core.errors import CurateError
from curate.experiment import prune_sweep
from curate.io import Source
from curate.train import TrainConfig

N, BATCH, EPOCHS = 600, 64, 2
EL2N = {"name": "el2n-hard", "filter": "keep_fraction", "params": {"keep": "hard"},
        "score": "el2n", "score_params": {"model": "logreg", "epochs": 2, "lr": 0.1}}
METHODS = ["random", EL2N]
FRACTIONS = [0.25, 0.5]
SEEDS = [0, 1]


@pytest.fixture(scope="module")
def digits():
    return Source("builtin:digits").read_all().slice(0, N)


@pytest.fixture(scope="module")
def config():
    return TrainConfig(model="logreg", lr=0.1, batch_size=BATCH, epochs=EPOCHS)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("sweep")


@pytest.fixture(scope="module")
def sweep(digits, config, sweep_dir):
    return prune_sweep(digits, "builtin:digits:split=test", methods=METHODS,
                       fractions=FRACTIONS, seeds=SEEDS, train_config=config, score_seeds=1,
                       out_dir=sweep_dir)


def test_one_row_per_run(sweep):
    rows = sweep.results.to_pylist()
    assert len(rows) == len(SEEDS) * (1 + len(METHODS) * len(FRACTIONS))
    for method in ("random", "el2n-hard"):
        for fraction in FRACTIONS:
            mine = [r for r in rows if r["method"] == method and r["fraction"] == fraction]
            assert sorted(r["seed"] for r in mine) == SEEDS
    full = [r for r in rows if r["method"] == "full"]
    assert [r["fraction"] for r in full] == [1.0, 1.0]
    assert all(0 <= r["test_acc"] <= 1 and r["budget"] == "same-steps" for r in rows)
    assert sweep.trained == len(rows) and sweep.reused == 0
    assert sweep.scores_computed == 1 and sweep.scores_reused == 0


def test_subsets_have_the_right_sizes_and_pick_the_hardest(sweep, sweep_dir, digits):
    for (_, fraction, _), positions in sweep.subsets.items():
        assert len(positions) == round(fraction * N)
        assert len(np.unique(positions)) == len(positions)
    scores = pq.read_table(next((sweep_dir / "scores").glob("*.parquet")))
    assert scores.column("id").to_pylist() == digits.column("id").to_pylist()
    el2n = scores.column("el2n").to_numpy()
    kept = sweep.subsets[("el2n-hard", 0.25, 0)]
    assert el2n[kept].min() >= np.sort(el2n)[-len(kept)]
    # random subsets follow the run's seed; scored ones do not
    assert not np.array_equal(sweep.subsets[("random", 0.5, 0)], sweep.subsets[("random", 0.5, 1)])
    assert np.array_equal(sweep.subsets[("el2n-hard", 0.5, 0)],
                          sweep.subsets[("el2n-hard", 0.5, 1)])


def test_same_steps_trains_the_full_data_steps(sweep):
    full_steps = EPOCHS * math.ceil(N / BATCH)
    assert set(sweep.results.column("steps").to_pylist()) == {full_steps}


def test_rerun_reuses_every_score_and_cell(sweep, digits, config, sweep_dir):
    again = prune_sweep(digits, "builtin:digits:split=test", methods=METHODS,
                        fractions=FRACTIONS, seeds=SEEDS, train_config=config, score_seeds=1,
                        out_dir=sweep_dir)
    assert again.trained == 0 and again.reused == sweep.results.num_rows
    assert again.scores_computed == 0 and again.scores_reused == 1
    assert all(again.results.column("reused").to_pylist())
    assert again.results.drop_columns(["reused"]).equals(sweep.results.drop_columns(["reused"]))


def test_same_epochs_trains_fewer_steps_on_subsets(digits, config, sweep_dir, sweep):
    result = prune_sweep(digits, "builtin:digits:split=test", methods=METHODS,
                         fractions=FRACTIONS, seeds=[0], budget="same-epochs",
                         train_config=config, score_seeds=1, out_dir=sweep_dir)
    assert result.scores_reused == 1 and result.scores_computed == 0
    assert result.trained == 1 + len(METHODS) * len(FRACTIONS)  # new budget: new cells
    for row in result.results.to_pylist():
        assert row["budget"] == "same-epochs"
        assert row["steps"] == EPOCHS * math.ceil(row["n_kept"] / BATCH)
    assert "same-epochs" in (sweep_dir / "report.md").read_text()


def test_outputs_are_written(sweep, sweep_dir):
    for name in ("results.parquet", "results.csv", "summary.csv", "accuracy_vs_fraction.png",
                 "report.md"):
        assert (sweep_dir / name).stat().st_size > 0
    assert (sweep_dir / "accuracy_vs_fraction.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pq.read_table(sweep_dir / "results.parquet").num_rows > 0
    summary = sweep.summary.to_pylist()
    assert len(summary) == 1 + len(METHODS) * len(FRACTIONS)
    for row in summary:
        assert row["n"] == len(SEEDS)
        assert row["ci95_lo"] <= row["mean"] <= row["ci95_hi"]


def test_report_states_the_rule_and_the_table(sweep):
    report = (sweep.out_dir / "report.md").read_text()
    assert "Budget rule:" in report and "el2n-hard" in report
    assert "accuracy_vs_fraction.png" in report and "Wall time" in report
    assert sweep.report == sweep.out_dir / "report.md"


def test_same_epochs_needs_an_epoch_budget(digits, tmp_path):
    with pytest.raises(CurateError, match="same-epochs"):
        prune_sweep(digits, digits, methods=["random"], fractions=[0.5], seeds=[0],
                    budget="same-epochs", train_config=TrainConfig(model="logreg", steps=5),
                    out_dir=tmp_path)


def test_workers_give_the_same_results_as_one_process(digits, config, tmp_path):
    kwargs = dict(methods=["random"], fractions=[0.5], seeds=[0], train_config=config,
                  out_dir=tmp_path / "serial")
    serial = prune_sweep(digits, digits, **kwargs)
    parallel = prune_sweep(digits, digits, **{**kwargs, "out_dir": tmp_path / "parallel"},
                           workers=2)
    assert parallel.trained == serial.trained == 2
    assert parallel.results.column("test_acc").to_pylist() == pytest.approx(
        serial.results.column("test_acc").to_pylist(), abs=1e-6)


def test_an_empty_subset_is_an_error(digits, config, tmp_path):
    with pytest.raises(CurateError, match="keeps no example"):
        prune_sweep(digits, digits, methods=["random"], fractions=[0.0001], seeds=[0],
                    train_config=config, out_dir=tmp_path)


def test_rs2_draws_a_fresh_subset_each_round_under_both_budgets(digits, config, tmp_path):
    result = prune_sweep(digits, "builtin:digits:split=test", methods=["rs2"], fractions=[0.25],
                         seeds=[0, 1], train_config=config, out_dir=tmp_path / "steps")
    rows = [r for r in result.results.to_pylist() if r["method"] == "rs2"]
    assert [r["policy"] for r in rows] == ["rs2", "rs2"]  # a schedule, not a filter
    assert {r["steps"] for r in rows} == {EPOCHS * math.ceil(N / BATCH)}  # same steps as full
    assert rows[0]["n_kept"] == round(0.25 * N)  # examples per round
    assert rows[0]["test_acc"] != rows[1]["test_acc"]  # seeds draw different rounds
    assert ("rs2", 0.25, 0) not in result.subsets  # no fixed subset to report
    epochs = prune_sweep(digits, "builtin:digits:split=test", methods=["rs2"], fractions=[0.25],
                         seeds=[0], budget="same-epochs", train_config=config,
                         out_dir=tmp_path / "epochs")
    rs2 = next(r for r in epochs.results.to_pylist() if r["method"] == "rs2")
    assert rs2["steps"] == EPOCHS * math.ceil(round(0.25 * N) / BATCH)
