"""Curricula: orderings, pacing functions, schedules (paced, RS2, mixtures), trainer wiring."""

import numpy as np
import pyarrow as pa
import pytest
import torch

import filters as F
from curate.core.errors import CurateError
from curate.core.tables import ordered_positions
from curate.train import Callback, TensorData, TrainConfig, train
from filters.curriculum import PACINGS


def test_orderings_put_missing_last_and_random_is_seeded():
    values = [0.3, np.nan, 0.1, 0.2]
    assert F.difficulty_order(values).tolist() == [2, 3, 0, 1]
    assert F.difficulty_order(values, "hard_to_easy").tolist() == [0, 3, 2, 1]
    assert F.difficulty_order(values, higher_is_harder=False).tolist() == [0, 3, 2, 1]
    a = F.difficulty_order(np.zeros(50), "random", seed=3)
    assert sorted(a) == list(range(50)) and a.tolist() == F.difficulty_order(
        np.zeros(50), "random", seed=3).tolist()
    assert a.tolist() != F.difficulty_order(np.zeros(50), "random", seed=4).tolist()


# n = 1000, T = 100 steps, b = 0.1 (100 examples at step 0), a = 0.5 (all in at step 50).
MIDDLE = {"linear": 550, "quadratic": 325, "root": 736, "step": 100, "exponential": 106,
          "logarithmic": 937}


@pytest.mark.parametrize("name", PACINGS)
def test_pacing_start_middle_end_and_monotone(name):
    g = F.Pacing(name, n=1000, steps=100, start=0.1, full_at=0.5)
    values = [g(t) for t in range(100)]
    assert values[0] == 100 and values[25] == MIDDLE[name]
    assert values[50] == values[99] == 1000
    assert all(b >= a for a, b in zip(values, values[1:]))


def test_pacing_aliases_and_errors():
    assert F.Pacing("exp", 10, 10)(3) == F.Pacing("exponential", 10, 10)(3)
    with pytest.raises(CurateError, match="pacing must be one of"):
        F.Pacing("cubic", 10, 10)


def test_curriculum_schedule_draws_from_the_paced_prefix_and_is_seeded():
    order = np.random.default_rng(0).permutation(1000)
    sched = F.CurriculumSchedule(order, batch_size=32, steps=100, pacing="linear", start=0.1,
                                 full_at=0.5, seed=7)
    for step in (0, 10, 60):
        batch = sched(step)
        assert len(batch) == 32 == len(set(batch.tolist()))
        assert set(batch.tolist()) <= set(order[:sched.available(step)].tolist())
    assert sched.available(0) == 100
    batches = list(sched)
    assert len(batches) == len(sched) == 100
    assert batches == list(F.CurriculumSchedule(order, 32, 100, start=0.1, full_at=0.5, seed=7))
    assert batches != list(F.CurriculumSchedule(order, 32, 100, start=0.1, full_at=0.5, seed=8))
    small = F.CurriculumSchedule(order, batch_size=64, steps=10, start=0.01)
    assert small.available(0) == 64  # raised to a full batch
    with pytest.raises(CurateError, match="outside"):
        sched(100)


def test_schedule_is_a_batch_sampler_for_a_dataloader():
    sched = F.RS2Schedule(20, fraction=0.5, batch_size=4, steps=6, seed=0)
    assert isinstance(sched, torch.utils.data.Sampler)
    loader = torch.utils.data.DataLoader(torch.arange(100, 120), batch_sampler=sched)
    got = [b.tolist() for b in loader]
    assert got == [[100 + i for i in sched(s)] for s in range(6)]


def test_rs2_covers_every_example_once_per_pass():
    positions = np.arange(0, 30, 3)  # 10 positions
    sched = F.RS2Schedule(positions, fraction=0.3, batch_size=2, steps=20, seed=5)
    assert sched.round_size == 3 and sched.steps_per_round == 2
    batches = [sched(s) for s in range(20)]
    assert [len(b) for b in batches[:4]] == [2, 1, 2, 1]
    drawn = np.concatenate(batches)  # 10 rounds of 3 = 3 passes of 10
    assert len(drawn) == 30
    for p in range(3):
        assert sorted(drawn[10 * p:10 * p + 10].tolist()) == positions.tolist()
    assert drawn[:10].tolist() != drawn[10:20].tolist()  # a fresh permutation per pass
    assert np.array_equal(np.concatenate(list(F.RS2Schedule(positions, 0.3, 2, 20, seed=5))),
                          drawn)


def test_mixture_respects_phase_weights_over_many_draws():
    tags = ["web"] * 300 + ["code"] * 100 + [None] * 50
    phases = [{"until": 0.8, "weights": {"web": 3, "code": 1}},
              {"until": 1.0, "weights": {"code": 1}}]
    sched = F.MixtureSchedule(tags, phases, batch_size=64, steps=200, seed=0)
    code = np.zeros(450, dtype=bool)
    code[300:400] = True
    early = np.concatenate([sched(s) for s in range(160)])
    late = np.concatenate([sched(s) for s in range(160, 200)])
    assert abs(code[early].mean() - 0.25) < 0.01
    assert code[late].all()
    assert not (early >= 400).any()  # untagged examples are never drawn
    assert sched.phase(159) == 0 and sched.phase(160) == 1
    assert np.array_equal(sched(3), F.MixtureSchedule(tags, phases, 64, 200, seed=0)(3))
    with pytest.raises(CurateError, match="unknown group 'math'"):
        F.MixtureSchedule(tags, [{"until": 1.0, "weights": {"math": 1}}], 64, 10)
    with pytest.raises(CurateError, match="end at 1.0"):
        F.MixtureSchedule(tags, [{"until": 0.5, "weights": {"web": 1}}], 64, 10)


def test_curriculum_step_writes_the_order_of_kept_rows():
    scores = pa.table({"id": [f"e{i}" for i in range(6)],
                       "s": [0.5, 0.1, 0.9, 0.3, 0.7, 0.2]})
    sel = F.select(scores, [F.KeepFraction("s", 0.5, keep="easy"), F.Curriculum("s")])
    assert sel.column("order").to_pylist() == [None, 0, None, 2, None, 1]
    anti = F.Curriculum("s", ordering="hard_to_easy").select(scores)
    assert anti.column("order").to_pylist() == [2, 5, 0, 3, 1, 4]
    ids = ["e5", "e4", "e3", "e2", "e1", "e0"]  # training data in another order
    assert ordered_positions(sel, ids).tolist() == [4, 0, 2]
    with pytest.raises(CurateError, match="without an order"):
        ordered_positions(F.KeepFraction("s", 0.5).select(scores), ids)


def test_trainer_consumes_a_schedule_step_by_step():
    rng = np.random.default_rng(0)
    data = TensorData(torch.as_tensor(rng.normal(size=(60, 5)), dtype=torch.float32),
                      torch.as_tensor(rng.integers(0, 3, 60)), list(range(60)), 3)
    sched = F.CurriculumSchedule(np.arange(60), batch_size=8, steps=12, start=0.2, seed=1)
    seen = []

    class Record(Callback):
        def on_batch(self, indices, logits, targets, losses, step):
            seen.append(indices)

    result = train(TrainConfig(steps=12, batch_size=8), data, seed=0, batches=sched,
                   callbacks=[Record()])
    assert result.final["steps"] == 12
    assert [b.tolist() for b in seen] == [sched(s).tolist() for s in range(12)]
    again = train(TrainConfig(steps=12, batch_size=8), data, seed=0)  # default path intact
    assert again.final["steps"] == 12


def test_train_seeds_builds_one_schedule_per_seed():
    from curate.train import train_seeds

    rng = np.random.default_rng(0)
    data = TensorData(torch.as_tensor(rng.normal(size=(60, 5)), dtype=torch.float32),
                      torch.as_tensor(rng.integers(0, 3, 60)), list(range(60)), 3)

    class Record(Callback):
        def __init__(self):
            self.batches = []

        def on_batch(self, indices, logits, targets, losses, step):
            self.batches.append(indices.tolist())

    def schedule(seed):
        return F.CurriculumSchedule(np.arange(60), batch_size=8, steps=6, start=0.2, seed=seed)

    result = train_seeds(TrainConfig(steps=6, batch_size=8), data, seeds=[3, 4],
                         callbacks_factory=lambda seed: [Record()], batches_factory=schedule)
    for run, seed in zip(result.runs, [3, 4]):
        assert run.callbacks[0].batches == [schedule(seed)(s).tolist() for s in range(6)]
