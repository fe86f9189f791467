"""The training harness: built-in datasets, TensorData, the zoo, train and train_seeds."""

import math
import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
import torch.nn.functional as F

from curate.core.errors import CurateError
from curate.io import Source
from curate.train import (
    Callback,
    TensorData,
    TrainConfig,
    make_model,
    summarize,
    train,
    train_seeds,
)
from curate.train.builtin_data import FASHION_MNIST_PATH, digits, fashion_mnist, mnist1d
from curate.train.optim import lr_schedule

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def digits_data():
    return TensorData.from_source("builtin:digits"), TensorData.from_source(
        "builtin:digits:split=test")


class Recorder(Callback):
    """Records every call (module level so that it pickles into worker processes)."""

    def __init__(self):
        self.begin, self.batches, self.epochs, self.ended = None, [], [], False

    def on_train_begin(self, n_examples, num_classes):
        self.begin = (n_examples, num_classes)

    def on_batch(self, indices, logits, targets, losses, step):
        self.batches.append((indices.clone(), logits.clone(), targets.clone(), losses.clone(),
                             step))

    def on_epoch_end(self, epoch, model):
        self.epochs.append((epoch, len(self.batches)))

    def on_train_end(self, model):
        self.ended = True


# -- built-in datasets ------------------------------------------------------------------
def test_mnist1d_generates_cached_deterministic_splits(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_CACHE", str(tmp_path))
    random.seed(7)
    np.random.seed(7)
    py_state, np_state = random.getstate(), np.random.get_state()
    train_t = mnist1d(n_train=205, n_test=103, seed=3)
    assert random.getstate() == py_state
    assert np.array_equal(np.random.get_state()[1], np_state[1])
    test_t = mnist1d(split="test", n_train=205, n_test=103, seed=3)
    assert (train_t.num_rows, test_t.num_rows) == (205, 103)
    assert train_t.column("id").to_pylist() == list(range(205))
    assert train_t.schema.field("x").type == pa.list_(pa.float32(), 40)
    assert train_t.schema.metadata[b"curate.shape"] == b"[40]"
    assert set(train_t.column("label").to_pylist()) == set(range(10))
    cached = list((tmp_path / "builtin").glob("*.parquet"))
    assert len(cached) == 1
    cached[0].unlink()  # regenerate from scratch: same values
    assert mnist1d(n_train=205, n_test=103, seed=3).equals(train_t)
    assert mnist1d(n_train=205, n_test=103, seed=3).equals(train_t)  # from the cache
    other = mnist1d(n_train=205, n_test=103, seed=4)
    assert not np.array_equal(other.column("x").combine_chunks().flatten().to_numpy(),
                              train_t.column("x").combine_chunks().flatten().to_numpy())


def test_builtin_spec_reaches_the_generator(tmp_path, monkeypatch):
    monkeypatch.setenv("CURATE_CACHE", str(tmp_path))
    data = TensorData.from_source("builtin:mnist1d:n_train=100,n_test=50,split=test")
    assert len(data) == 50 and data.input_shape == (40,) and data.num_classes == 10
    with pytest.raises(CurateError, match="split"):
        Source("builtin:mnist1d:split=valid")


def test_label_noise_is_exact_recorded_and_reproducible():
    clean = digits()
    noisy = digits(noise=0.1, noise_seed=0)
    flipped = np.array(noisy.column("label_flipped").to_pylist())
    original = noisy.column("label_original").to_numpy()
    label = noisy.column("label").to_numpy()
    assert flipped.sum() == round(0.1 * clean.num_rows)
    assert np.array_equal(original, clean.column("label").to_numpy())
    assert np.all(label[flipped] != original[flipped])
    assert np.array_equal(label[~flipped], original[~flipped])
    assert noisy.equals(digits(noise=0.1, noise_seed=0))
    assert not noisy.equals(digits(noise=0.1, noise_seed=1))
    data = TensorData.from_table(noisy)  # bookkeeping columns are not inputs
    assert data.input_shape == (1, 8, 8) and torch.equal(data.y, torch.tensor(label))
    with pytest.raises(CurateError, match="noise"):
        digits(noise=1.5)


def test_digits_split_is_stratified_and_disjoint():
    train_t, test_t = digits(seed=0), digits(split="test", seed=0)
    train_ids, test_ids = train_t.column("id").to_pylist(), test_t.column("id").to_pylist()
    assert train_ids == sorted(train_ids)
    assert sorted(train_ids + test_ids) == list(range(1797))
    counts = np.bincount(test_t.column("label").to_numpy(), minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # ~20% of each class's ~180
    assert digits(seed=1).column("id").to_pylist() != train_ids


@pytest.mark.skipif(not Path(FASHION_MNIST_PATH).is_dir(),
                    reason="apt-get install dataset-fashion-mnist")
def test_fashion_mnist_reads_idx_files():
    table = fashion_mnist(split="test", limit=50)
    assert table.num_rows == 50 and table.schema.metadata[b"curate.shape"] == b"[1, 28, 28]"
    data = TensorData.from_table(table)
    assert data.x.shape == (50, 1, 28, 28)
    assert 0.0 <= float(data.x.min()) and float(data.x.max()) <= 1.0
    assert data.y.max() < 10


def test_fashion_mnist_missing_files_say_how_to_get_them(tmp_path):
    with pytest.raises(CurateError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist(path=str(tmp_path))


# -- TensorData -------------------------------------------------------------------------
def test_tensordata_from_numeric_columns():
    table = pa.table({"id": ["a", "b", "c"], "f1": [1.0, 2.0, 3.0], "f2": [4, 5, 6],
                      "note": ["x", "y", "z"], "label": [0, 2, 1]})
    data = TensorData.from_table(table)
    assert data.ids == ["a", "b", "c"] and data.num_classes == 3
    assert data.x.dtype == torch.float32
    assert torch.equal(data.x, torch.tensor([[1.0, 4], [2, 5], [3, 6]]))
    assert torch.equal(data.y, torch.tensor([0, 2, 1]))
    sub = data.subset([2, 0])
    assert sub.ids == ["c", "a"] and torch.equal(sub.y, torch.tensor([1, 0]))
    with pytest.raises(CurateError, match="columns are: id, f1, f2, note, label"):
        TensorData.from_table(table, label_column="target")


def test_tensordata_from_list_column_with_shape(tmp_path):
    rows = [{"pixels": list(range(i, i + 12)), "label": i % 2} for i in range(4)]
    path = tmp_path / "images.jsonl"
    path.write_text("\n".join(__import__("json").dumps(r) for r in rows))
    data = TensorData.from_source(str(path), shape=(3, 2, 2))
    assert data.x.shape == (4, 3, 2, 2) and data.ids == [0, 1, 2, 3]
    assert data.x[1, 0, 0, 1].item() == 2.0
    with pytest.raises(CurateError, match="holds 10 values"):
        TensorData.from_source(str(path), shape=(10,))
    ragged = pa.table({"x": [[1.0, 2.0], [3.0]], "label": [0, 1]})
    with pytest.raises(CurateError, match="different lengths"):
        TensorData.from_table(ragged)


# -- models -------------------------------------------------------------------------------
@pytest.mark.parametrize("name,shape", [("logreg", (40,)), ("mlp", (40,)), ("cnn1d", (40,)),
                                        ("cnn", (1, 28, 28)), ("resnet", (1, 28, 28)),
                                        ("mlp", (1, 8, 8)), ("resnet", (3, 8, 8))])
def test_zoo_models_map_inputs_to_logits(name, shape):
    model = make_model(name, shape, 7)
    assert model(torch.randn(5, *shape)).shape == (5, 7)


def test_cnn1d_is_the_papers_conv_base():
    assert sum(p.numel() for p in make_model("cnn1d", (40,), 10).parameters()) == 5210
    assert sum(p.numel() for p in make_model("mlp", (40,), 10).parameters()) == 15210


def test_model_factory_and_errors():
    model = make_model(lambda shape, k, width=3: torch.nn.Linear(shape[0], k * width), (4,), 2,
                       width=5)
    assert model(torch.randn(1, 4)).shape == (1, 10)
    with pytest.raises(CurateError, match="known models"):
        make_model("transformer", (4,), 2)
    with pytest.raises(CurateError, match="image inputs"):
        make_model("cnn", (40,), 2)


# -- train ----------------------------------------------------------------------------------
def test_training_reduces_loss(digits_data):
    train_d, test_d = digits_data
    config = TrainConfig(model="mlp", lr=0.05, steps=60, eval_every=20)
    result = train(config, train_d, test_d, seed=0)
    assert [h["step"] for h in result.history] == [20, 40, 60]
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    assert result.final["test_acc"] > 0.8
    assert result.final["train_loss"] < math.log(10) / 4


def test_same_seed_is_bit_identical_and_seeds_differ(digits_data):
    train_d, test_d = digits_data
    config = TrainConfig(model="cnn", model_params={"widths": (4, 8), "hidden": 16},
                         optimizer="adam", lr=1e-2, schedule="cosine",
                         schedule_params={"warmup_steps": 3}, steps=15, eval_every=5)
    rng_before = torch.get_rng_state()
    a, b = (train(config, train_d, test_d, seed=1) for _ in range(2))
    c = train(config, train_d, test_d, seed=2)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the caller's RNG is untouched

    def weights(run):
        return run.model.state_dict()

    assert all(torch.equal(weights(a)[k], weights(b)[k]) for k in weights(a))
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in a.history]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in b.history]
    assert not torch.equal(weights(a)["head.3.weight"], weights(c)["head.3.weight"])


def test_steps_and_epochs_budgets(digits_data):
    train_d, _ = digits_data  # 1437 examples: 12 steps of 128 per epoch
    by_epochs = train(TrainConfig(epochs=2, batch_size=128), train_d,
                      callbacks=[rec_e := Recorder()])
    assert by_epochs.final["steps"] == 24 and by_epochs.final["epochs"] == 2.0
    assert by_epochs.final["examples"] == 2 * 1437
    assert by_epochs.budget == {"steps": None, "epochs": 2}
    assert rec_e.epochs == [(0, 12), (1, 24)]
    by_steps = train(TrainConfig(steps=30, batch_size=128), train_d,
                     callbacks=[rec_s := Recorder()])
    assert by_steps.final["steps"] == 30 and by_steps.final["epochs"] == 30 / 12
    assert by_steps.final["examples"] == 2 * 1437 + 6 * 128
    assert rec_s.epochs == [(0, 12), (1, 24)] and rec_s.ended  # partial third epoch: no end
    with pytest.raises(CurateError, match="exactly one budget"):
        TrainConfig(steps=3, epochs=1)
    with pytest.raises(CurateError, match="exactly one budget"):
        TrainConfig()


def test_checkpoints_at_requested_steps(digits_data):
    train_d, _ = digits_data
    config = TrainConfig(model="logreg", steps=10, checkpoint_steps=(0, 4, 10))
    result = train(config, train_d, seed=3, callbacks=[rec := Recorder()])
    assert sorted(result.checkpoints) == [0, 4, 10]
    final = result.model.state_dict()
    assert all(torch.equal(result.checkpoints[10][k], final[k]) for k in final)
    assert not torch.equal(result.checkpoints[0]["linear.weight"],
                           result.checkpoints[4]["linear.weight"])
    # Logits passed to callbacks come from the pre-update model of that step.
    init = make_model("logreg", train_d.input_shape, 10)
    init.load_state_dict(result.checkpoints[0])
    indices, logits = rec.batches[0][0], rec.batches[0][1]
    assert torch.allclose(init(train_d.x[indices]), logits)
    with pytest.raises(CurateError, match="checkpoint step 11"):
        train(TrainConfig(steps=10, checkpoint_steps=(11,)), train_d)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_masked_weights_stay_zero_and_rewinding_restarts_from_a_checkpoint(digits_data,
                                                                           optimizer):
    train_d, _ = digits_data
    config = TrainConfig(model="mlp", optimizer=optimizer, lr=0.05, weight_decay=1e-3,
                         steps=20, batch_size=64, checkpoint_steps=(0, 5))
    first = train(config, train_d, seed=0)
    mask = (torch.rand(first.model.first.weight.shape,
                       generator=torch.Generator().manual_seed(0)) > 0.7).float()
    run = train(config, train_d, seed=1, initial_state=first.checkpoints[5],
                masks={"first.weight": mask})
    weight = run.model.first.weight.detach()
    assert torch.all(weight[mask == 0] == 0)
    assert torch.all(weight[mask == 1] != 0)
    # The run started from the checkpoint (masked), not from the seed's initialisation.
    assert torch.equal(run.checkpoints[0]["first.weight"],
                       first.checkpoints[5]["first.weight"] * mask)
    assert torch.equal(run.checkpoints[0]["out.weight"], first.checkpoints[5]["out.weight"])
    with pytest.raises(CurateError, match="unknown parameter 'nope'"):
        train(config, train_d, masks={"nope": mask})
    with pytest.raises(CurateError, match="has shape"):
        train(config, train_d, masks={"out.weight": mask})


def test_schedule_window_continues_a_schedule_across_a_rewind(digits_data):
    train_d, _ = digits_data
    config = TrainConfig(model="logreg", lr=0.5, momentum=0.0, schedule="cosine", steps=12)
    every = torch.arange(256)  # the same full batch at every step: order plays no part

    def batches(step):
        return every

    whole = train(config, train_d, seed=0, batches=batches)
    head = train(TrainConfig(model="logreg", lr=0.5, momentum=0.0, schedule="cosine", steps=5),
                 train_d, seed=0, batches=batches, schedule_window=(0, 12))
    tail = train(TrainConfig(model="logreg", lr=0.5, momentum=0.0, schedule="cosine", steps=7),
                 train_d, seed=0, batches=batches, schedule_window=(5, 12),
                 initial_state=head.model.state_dict())
    restarted = train(TrainConfig(model="logreg", lr=0.5, momentum=0.0, schedule="cosine",
                                  steps=7), train_d, seed=0, batches=batches,
                      initial_state=head.model.state_dict())
    weight = whole.model.linear.weight
    assert torch.allclose(tail.model.linear.weight, weight, atol=1e-6)
    assert not torch.allclose(restarted.model.linear.weight, weight, atol=1e-4)
    with pytest.raises(CurateError, match="schedule_window"):
        train(config, train_d, schedule_window=(12, 12))


def test_callbacks_see_batches_in_training_positions(digits_data):
    train_d, _ = digits_data
    positions = torch.arange(0, 1437, 3)  # 479 examples: 4 batches of 128 per epoch
    config = TrainConfig(model="mlp", epochs=2, batch_size=128)
    result = train(config, train_d, seed=0, positions=positions, callbacks=[rec := Recorder()])
    assert rec.begin == (1437, 10)
    assert [b[4] for b in rec.batches] == list(range(8))
    for indices, logits, targets, losses, _ in rec.batches:
        assert logits.shape == (len(indices), 10) and losses.shape == (len(indices),)
        assert torch.equal(targets, train_d.y[indices])
        assert torch.allclose(losses, F.cross_entropy(logits, targets, reduction="none"))
    for epoch in range(2):
        seen = torch.cat([b[0] for b in rec.batches[4 * epoch:4 * epoch + 4]])
        assert torch.equal(seen.sort().values, positions)
    assert [len(b[0]) for b in rec.batches[:4]] == [128, 128, 128, 95]
    assert result.callbacks[0] is rec and rec.ended


@pytest.mark.parametrize("schedule,params,expected", [
    ("constant", {"warmup_steps": 4}, {0: 0.025, 3: 0.1, 4: 0.1, 99: 0.1}),
    ("cosine", {}, {0: 0.1, 50: 0.05, 100: 0.0}),
    ("cosine", {"warmup_steps": 10, "min_factor": 0.1}, {9: 0.1, 10: 0.1, 55: 0.055}),
    ("linear", {"end_factor": 0.5}, {0: 0.1, 50: 0.075, 100: 0.05}),
    ("step", {"milestones": [30, 60], "gamma": 0.5}, {29: 0.1, 30: 0.05, 60: 0.025}),
    ("step", {"milestone_epochs": [2]}, {19: 0.1, 20: 0.01}),
])
def test_learning_rate_schedules(schedule, params, expected):
    config = TrainConfig(lr=0.1, schedule=schedule, schedule_params=params, steps=100)
    lr_at = lr_schedule(config, total_steps=100, steps_per_epoch=10)
    assert {step: lr_at(step) for step in expected} == pytest.approx(expected)


def test_config_errors_name_the_problem():
    with pytest.raises(CurateError, match="unknown schedule 'poly'"):
        TrainConfig(steps=1, schedule="poly")
    with pytest.raises(CurateError, match="unknown parameter 'gamma'"):
        TrainConfig(steps=1, schedule="cosine", schedule_params={"gamma": 0.1})
    with pytest.raises(CurateError, match="unknown optimizer"):
        TrainConfig(steps=1, optimizer="lion")
    with pytest.raises(CurateError, match="nesterov"):
        TrainConfig(steps=1, optimizer="adam", nesterov=True)


# -- train_seeds ----------------------------------------------------------------------------
def test_summary_is_a_student_t_interval():
    values = [0.91, 0.93, 0.96]
    mean = sum(values) / 3
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    half = 4.302652729911275 * std / math.sqrt(3)  # t(0.975, df=2)
    out = summarize(values)
    assert out["n"] == 3 and out["mean"] == pytest.approx(mean)
    assert out["std"] == pytest.approx(std)
    assert out["ci95"] == pytest.approx([mean - half, mean + half])
    assert summarize([0.5]) == {"mean": 0.5, "std": None, "ci95": None, "n": 1}


def test_train_seeds_summary_and_workers_agree(digits_data):
    train_d, test_d = digits_data
    config = TrainConfig(model="logreg", lr=0.1, steps=20)
    serial = train_seeds(config, train_d, test_d, seeds=(0, 1, 2),
                         callbacks_factory=lambda seed: [Recorder()])
    accs = [run.final["test_acc"] for run in serial.runs]
    assert [run.seed for run in serial.runs] == [0, 1, 2]
    assert serial.summary["test_acc"] == summarize(accs)
    assert serial.budget == {"steps": 20, "epochs": None}
    parallel = train_seeds(config, train_d, test_d, seeds=(0, 1, 2), workers=2,
                           callbacks_factory=lambda seed: [Recorder()])
    assert [run.final["test_acc"] for run in parallel.runs] == accs
    for s, p in zip(serial.runs, parallel.runs):
        assert torch.equal(s.model.linear.weight, p.model.linear.weight)
        assert len(p.callbacks[0].batches) == 20 and p.callbacks[0].ended
        assert torch.equal(p.callbacks[0].batches[-1][0], s.callbacks[0].batches[-1][0])
