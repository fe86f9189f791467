"""Lottery tickets on a data diet, on a slice of builtin:digits with a small MLP."""

import numpy as np
import pytest

from curate.core.errors import CurateError
from curate.experiment.outputs import write_result
from curate.experiment.rewind_diet import first_matching, rewind_diet
from curate.train import TensorData, TrainConfig

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data():
    train_set = TensorData.from_source("builtin:digits").subset(np.arange(400))
    return train_set, TensorData.from_source("builtin:digits:split=test")


CONFIG = TrainConfig(model="mlp", model_params={"hidden": 16}, optimizer="adam", lr=0.01,
                     batch_size=50, steps=12)


def _run(data, tolerance, tmp_path=None):
    train_set, test_set = data
    result = rewind_diet(CONFIG, train_set, test_set,
                         subsets={"full": None, "first 100": np.arange(100)},
                         rewind_steps=[4, 0], levels=1, seeds=[0, 1], tolerance=tolerance)
    if tmp_path is not None:
        write_result(result, tmp_path)
    return result


def test_rows_share_the_unpretrained_run_and_follow_the_matching_rule(data, tmp_path):
    result = _run(data, tolerance=1.0, tmp_path=tmp_path)  # every ticket matches
    rows = result.rows.to_pylist()
    assert [(r["subset"], r["rewind_step"]) for r in rows] == [
        ("full", 0), ("full", 4), ("first 100", 0), ("first 100", 4)]
    assert rows[0]["mean"] == rows[2]["mean"]  # k = 0 pre-trains nothing
    assert rows[3]["n_pretrain"] == 100 and rows[1]["n_pretrain"] == 400
    assert rows[1]["mean"] != rows[3]["mean"]  # the diet changed the rewind point
    assert all(r["matches"] and r["sparsity"] == pytest.approx(0.2) for r in rows)
    assert result.first_matching == {"full": 0, "first 100": 0}
    assert result.speedup == {"full": None, "first 100": None}  # nothing to save at k=0
    # 2 dense runs, then IMP (dense + 1 ticket per seed) at k=0 once and at k=4 per subset
    assert result.trained == 2 + 3 * 4 and result.reused == 0
    for name in ("rewind_diet.csv", "report.md", "ticket_accuracy_vs_rewind_step.png"):
        assert (tmp_path / name).stat().st_size > 0
    never = _run(data, tolerance=-1.0)  # a ticket 100 points above dense: none match
    assert never.first_matching == {"full": None, "first 100": None}


def test_first_matching_and_speedup():
    rows = [{"subset": "full", "rewind_step": k, "matches": k >= 200} for k in (0, 100, 200)]
    rows += [{"subset": "easy", "rewind_step": k, "matches": k >= 50} for k in (0, 50, 100)]
    rows += [{"subset": "random", "rewind_step": k, "matches": False} for k in (0, 50)]
    first, speedup = first_matching(rows)
    assert first == {"full": 200, "easy": 50, "random": None}
    assert speedup == {"full": 1.0, "easy": 4.0, "random": None}


def test_the_full_data_reference_is_required(data):
    with pytest.raises(CurateError, match="full"):
        rewind_diet(CONFIG, *data, subsets={"easy": np.arange(10)}, rewind_steps=[0],
                    levels=1)
