"""Training-dynamics scorers: definitions pinned on hand-made logits, then end to end."""

import math

import numpy as np
import pyarrow as pa
import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from curate.cli import cli
from curate.core.errors import CurateError
from curate.core.registry import make_scorer, parse_spec
from curate.io import Source
from curate.scores import read_sharded
from curate.train import TensorData, TrainConfig, make_model, train
from scorers.dynamics import AUM, EL2N, Cartography, CVLoss, Forgetting, GraNd, Loss, statistics
from scorers.dynamics.gradients import grad_norms, output_layer
from scorers.dynamics.prototypicality import Prototypicality
from scorers.dynamics.recording import PresentationRecorder, margins

pytestmark = pytest.mark.usefixtures("one_torch_thread")


RIGHT = torch.tensor([2.0, 0.0, 0.0])  # label 0 predicted correctly (margin 2)
WRONG = torch.tensor([0.0, 2.0, 0.0])  # label 0 predicted as class 1 (margin -2)

# Correctness of 5 examples (label 0) over 5 epochs.
SEQUENCES = [
    [1, 0, 1, 0, 1],  # forgotten twice
    [0, 0, 0, 0, 0],  # never learned
    [0, 1, 1, 1, 1],  # learned, never forgotten: unforgettable
    [1, 1, 0, 0, 0],  # forgotten once, never relearned
    [1, 1, 1, 1, 1],  # unforgettable
]


def record(logit_rows, targets, batch_size=2, seed=0):
    """Feed per-epoch logits [E][N, C] through a recorder in shuffled mini-batches."""
    recorder = PresentationRecorder()
    n = len(targets)
    recorder.on_train_begin(n, logit_rows[0].shape[1])
    gen = torch.Generator().manual_seed(seed)
    step = 0
    for epoch, logits in enumerate(logit_rows):
        for idx in torch.randperm(n, generator=gen).split(batch_size):
            z = logits[idx]
            losses = F.cross_entropy(z, targets[idx], reduction="none")
            recorder.on_batch(idx, z, targets[idx], losses, step)
            step += 1
        recorder.on_epoch_end(epoch, model=None)
    return recorder


def sequence_logits(sequences):
    epochs = len(sequences[0])
    return [torch.stack([RIGHT if s[e] else WRONG for s in sequences]) for e in range(epochs)]


@pytest.fixture
def forgetting_run():
    targets = torch.zeros(len(SEQUENCES), dtype=torch.long)
    return record(sequence_logits(SEQUENCES), targets)


def test_margin_is_assigned_minus_largest_other_logit():
    z = torch.tensor([[3.0, 1.0, 2.0], [1.0, 3.0, 2.0], [5.0, 5.0, 0.0]])
    assert margins(z, torch.tensor([0, 0, 1])).tolist() == [1.0, -2.0, 0.0]


def test_forgetting_counts_events_and_gives_never_learned_the_presentation_count(forgetting_run):
    stats = statistics.forgetting(forgetting_run.margins)
    assert stats["events"].tolist() == [2, 0, 0, 1, 0]
    assert stats["never_learned"].tolist() == [False, True, False, False, False]
    assert stats["presentations"].tolist() == [5] * 5
    # Never learned ranks above every observed count (not 0, DeepCore's inversion).
    assert stats["count"].tolist() == [2, 5, 0, 1, 0]


def test_forgetting_skips_epochs_where_the_example_was_not_presented():
    m = torch.tensor([[1.0], [math.nan], [-1.0], [math.nan], [1.0], [-1.0]])
    stats = statistics.forgetting(m)
    assert stats["events"].tolist() == [2]
    assert stats["presentations"].tolist() == [4]


def test_forgetting_scorer_sums_over_seeds_and_flags(forgetting_run):
    never_learned_in_one_seed = record(sequence_logits([[1, 1, 1, 1, 1], [0] * 5, [0, 1, 1, 1, 1],
                                                        [1, 1, 0, 0, 0], [0] * 5]),
                                       torch.zeros(5, dtype=torch.long), seed=1)
    cols = Forgetting().reduce([[forgetting_run], [never_learned_in_one_seed]], None)
    assert cols["forgetting"].tolist() == [2 + 0, 5 + 5, 0, 1 + 1, 0 + 5]
    assert cols["forgetting_events"].tolist() == [2, 0, 0, 2, 0]
    assert cols["forgetting_never_learned"].tolist() == [0, 2, 0, 0, 1]
    assert cols["forgetting_unforgettable"].tolist() == [False, False, True, False, False]
    assert cols["forgetting_std"].tolist() == pytest.approx([1.0, 0.0, 0.0, 0.0, 2.5])


def test_aum_is_the_mean_logit_margin_over_epochs():
    targets = torch.tensor([0, 2])
    epochs = [torch.tensor([[3.0, 1.0, 2.0], [0.0, 4.0, 1.0]]),
              torch.tensor([[1.0, 3.0, 2.0], [0.0, 1.0, 3.0]])]
    cols = AUM().reduce([[record(epochs, targets)]], None)
    # Example 0: margins 1 and -2; example 1 (label 2): -3 and 2.
    assert cols["aum"].tolist() == pytest.approx([-0.5, -0.5])
    assert cols["aum_std"].tolist() == [0.0, 0.0]


def test_cartography_confidence_variability_correctness():
    targets = torch.tensor([0])
    z = [torch.tensor([[math.log(p), math.log(1 - p)]]) for p in (0.2, 0.6, 0.9)]
    cols = Cartography().reduce([[record(z, targets, batch_size=1)]], None)
    probs = np.array([0.2, 0.6, 0.9])
    assert cols["cartography_confidence"][0] == pytest.approx(probs.mean(), abs=1e-6)
    assert cols["cartography_variability"][0] == pytest.approx(probs.std(), abs=1e-6)
    assert cols["cartography_correctness"][0] == pytest.approx(2 / 3, abs=1e-6)


def test_loss_averages_over_all_or_chosen_epochs_and_over_seeds():
    targets = torch.tensor([0])
    z = [torch.tensor([[math.log(p), math.log(1 - p)]]) for p in (0.5, 0.25, 0.125)]
    runs = [[record(z, targets, batch_size=1)], [record(z[::-1], targets, batch_size=1)]]
    nll = -np.log([0.5, 0.25, 0.125])
    mean = Loss(epochs=3).reduce(runs, None)
    assert mean["loss"][0] == pytest.approx(nll.mean(), abs=1e-6)
    assert mean["loss_std"][0] == pytest.approx(0.0, abs=1e-6)
    chosen = Loss(epochs=3, at="1;2").reduce(runs, None)
    # Seed 0 sees epochs 1, 2 = nll[0], nll[1]; seed 1 sees nll[2], nll[1].
    seed_means = [(nll[0] + nll[1]) / 2, (nll[2] + nll[1]) / 2]
    assert chosen["loss"][0] == pytest.approx(np.mean(seed_means), abs=1e-6)
    assert chosen["loss_std"][0] == pytest.approx(np.std(seed_means), abs=1e-6)
    assert chosen["loss_epoch1"][0] == pytest.approx((nll[0] + nll[2]) / 2, abs=1e-6)


def test_el2n_value():
    z = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])
    got = statistics.el2n(z, torch.tensor([0, 1]))
    # softmax [.5, .5] vs [1, 0]; softmax [.75, .25] vs [0, 1].
    assert got.tolist() == pytest.approx([math.sqrt(0.5), math.sqrt(2 * 0.75 ** 2)])


@pytest.mark.parametrize("model", ["mlp", "cnn1d", "resnet"])
@pytest.mark.parametrize("params", ["all", "last"])
def test_grand_vmap_matches_per_example_backward(model, params):
    shape = (1, 8, 8) if model == "resnet" else (40,)
    torch.manual_seed(0)
    net = make_model(model, shape, 4).eval()
    x, y = torch.randn(12, *shape), torch.randint(0, 4, (12,))
    got = grad_norms(net, x, y, params=params, chunk_size=5)
    prefix, _ = output_layer(net, x[:1])
    chosen = [p for n, p in net.named_parameters()
              if params == "all" or n.rpartition(".")[0] == prefix]
    expected = []
    for i in range(len(x)):
        grads = torch.autograd.grad(F.cross_entropy(net(x[i:i + 1]), y[i:i + 1]), chosen)
        expected.append(torch.sqrt(sum(g.pow(2).sum() for g in grads)))
    assert torch.allclose(got, torch.stack(expected), rtol=1e-4, atol=1e-6)


def test_output_layer_is_found_by_execution_order():
    net = make_model("mlp", (40,), 3)
    assert output_layer(net, torch.randn(1, 40))[0] == "out"


@pytest.fixture(scope="module")
def digits():
    """200 examples of scikit-learn's digits."""
    return Source("builtin:digits").read_all().slice(0, 200)


FAST = dict(epochs=2, seeds=2, batch_size=50)


@pytest.mark.parametrize("scorer", [
    Loss(**FAST), Forgetting(**FAST), AUM(**FAST), Cartography(**FAST),
    EL2N(epoch=1, **FAST), EL2N(epoch=0, **FAST), GraNd(params="last", **FAST),
    Prototypicality(space="input", **FAST), Prototypicality(**FAST),
    CVLoss(folds=2, **FAST)], ids=lambda s: f"{s.name}")
def test_scorers_return_one_prefixed_row_per_example(scorer, digits):
    out = scorer.score_dataset(digits)
    assert out.num_rows == 200
    assert all(c.startswith(scorer.name) for c in out.column_names)
    main = out.column(0).to_numpy()
    assert np.isfinite(main.astype(float)).all()


def test_same_seeds_give_identical_scores(digits):
    a = AUM(**FAST).score_dataset(digits)
    b = AUM(**FAST).score_dataset(digits)
    c = AUM(epochs=2, seeds=[5, 6], batch_size=50).score_dataset(digits)
    assert a.equals(b)
    assert not a.equals(c)


def test_recording_does_not_change_training(digits):
    data = TensorData.from_table(digits)
    config = TrainConfig(model="mlp", epochs=1, batch_size=50)
    plain = train(config, data, seed=3)
    recorded = train(config, data, seed=3, callbacks=[PresentationRecorder()])
    for p, q in zip(plain.model.parameters(), recorded.model.parameters()):
        assert torch.equal(p, q)


def test_a_partial_last_epoch_is_recorded_with_nan_for_examples_not_presented(digits):
    data = TensorData.from_table(digits)
    recorder = PresentationRecorder()
    train(TrainConfig(model="mlp", steps=6, batch_size=50), data, seed=0, callbacks=[recorder])
    losses = recorder.losses
    assert losses.shape == (2, 200)
    assert not torch.isnan(losses[0]).any()
    assert int(torch.isnan(losses[1]).sum()) == 100
    assert torch.equal(torch.isnan(losses), torch.isnan(recorder.margins))


def test_el2n_at_epoch_scores_the_model_at_the_end_of_that_epoch(digits):
    data = TensorData.from_table(digits)
    scorer = EL2N(epochs=2, epoch=1, seeds=[4], batch_size=50)
    got = scorer.score_tensors(data).column("el2n").to_numpy()
    run = train(scorer.train_config(), data, seed=4)  # trains exactly one epoch
    run.model.eval()
    with torch.no_grad():
        expected = statistics.el2n(run.model(data.x), data.y).numpy()
    assert np.allclose(got, expected, atol=1e-6)


def test_cv_loss_scores_each_example_with_a_model_not_trained_on_it(digits):
    scorer = CVLoss(folds=4, **FAST)
    folds = scorer.splits(digits.column("label").to_numpy())
    held = np.concatenate([h for _, h in folds])
    assert sorted(held.tolist()) == list(range(200))
    assert all(not set(t) & set(h) for t, h in folds)
    probs = np.stack(scorer.score_dataset(digits).column("cv_loss_probs").to_numpy(
        zero_copy_only=False))
    assert probs.shape == (200, 10) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_prototypicality_ranks_an_outlier_as_least_prototypical():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(0, 0.1, (20, 2)) + [5, 0],
                             rng.normal(0, 0.1, (20, 2)) + [0, 5], [[4.0, 4.0]]])
    d = Prototypicality(k=2, metric="euclidean").distances(points, np.zeros(41, int), 1, 0)
    assert d.argmax() == 40


def test_score_adds_ids_and_params_report_every_argument():
    table = pa.table({"id": [f"e{i}" for i in range(60)], "a": np.arange(60.0) % 7,
                      "b": np.arange(60.0) % 5, "label": np.arange(60) % 3})
    scorer = GraNd(params="all", epoch=1, epochs=1, seeds=1, batch_size=20,
                   input_columns=["a", "b"])
    out = scorer.score(table)
    assert out.column_names == ["id", "grand", "grand_std"]
    assert out.column("id").to_pylist() == table.column("id").to_pylist()
    assert scorer.params()["params"] == "all" and scorer.params()["seeds"] == 1
    assert scorer.columns_needed() == ["a", "b", "label"]


def test_cli_parameters_and_bad_values():
    name, params = parse_spec("el2n:model=cnn1d,epochs=10,seeds=5")
    scorer = make_scorer(name, params)
    assert (scorer.model, scorer.epochs, scorer.seeds, scorer.epoch) == ("cnn1d", 10, 5, 10)
    assert make_scorer("loss", {"shape": "1x8x8", "at": "1;2", "epochs": 2}).shape == [1, 8, 8]
    with pytest.raises(CurateError, match="params must be"):
        make_scorer("grand", {"params": "middle"})
    with pytest.raises(CurateError, match="epoch=3"):
        make_scorer("el2n", {"epochs": 2, "epoch": 3})


def test_cli_score_writes_a_parquet_table(tmp_path):
    result = CliRunner().invoke(cli, ["score", "builtin:digits:test_size=0.9", "--scorer",
                                      "el2n:model=logreg,epochs=1,seeds=2,batch_size=64",
                                      "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    table = read_sharded(tmp_path / "el2n")
    assert table.column_names[:3] == ["id", "el2n", "el2n_std"]
    assert table.num_rows == 179
