"""Input standardization: fitted on the training rows only, carried by the model, on by
default in the training-dynamics scorers, with an opt-out that changes params and keys."""

import dataclasses

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from curate.core.errors import CurateError
from curate.train import TensorData, TrainConfig, evaluate, make_model, train
from curate.train.trainer import standardize_inputs
from scorers.dynamics import AUM, EL2N, CVLoss, Loss, Prototypicality

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = dict(model="mlp", model_params={"hidden": 16}, epochs=8, seeds=1, batch_size=32)


def blobs(scale=1.0, offset=0.0, n=240, flipped=24, seed=0):
    """Three Gaussian blobs in 2-D (times ``scale``, plus ``offset``) and a constant
    feature; the first ``flipped`` labels are moved to the next class."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    x = np.array([[0, 0], [3, 0], [0, 3]])[y] + rng.normal(0, 0.7, (n, 2))
    x = np.concatenate([x * scale + offset, np.full((n, 1), 5.0)], axis=1)
    noisy = y.copy()
    noisy[:flipped] = (y[:flipped] + 1) % 3
    data = TensorData(torch.tensor(x, dtype=torch.float32), torch.tensor(noisy),
                      list(range(n)), 3)
    return data, np.arange(n) < flipped


def test_standardization_statistics_and_a_constant_feature():
    x = torch.tensor([[1.0, 7.0, 0.0], [3.0, 7.0, 10.0], [5.0, 7.0, 20.0], [100.0, 9.0, -5.0]])
    data = TensorData(x, torch.tensor([0, 1, 0, 1]), list("abcd"), 2)
    mean, scale = data.standardization([0, 1, 2, 2])   # a repeated row counts once
    assert torch.allclose(mean, torch.tensor([3.0, 7.0, 10.0]))
    expected = [np.sqrt(8 / 3), 1.0, np.sqrt(200 / 3)]
    assert torch.allclose(scale, torch.tensor(expected, dtype=torch.float32))
    out = data.standardized(mean, scale).x
    assert torch.isfinite(out).all()
    assert torch.equal(out[:3, 1], torch.zeros(3))    # constant on those rows: centred only
    assert out[3, 1] == 2.0                            # a test row off the constant: finite
    assert torch.allclose(out[:3, [0, 2]].mean(0), torch.zeros(2), atol=1e-6)
    with pytest.raises(CurateError, match="zero rows"):
        data.standardization([])


def test_statistics_in_chunks_match_one_pass(monkeypatch):
    import curate.train.data as data_module

    x = torch.from_numpy(np.random.default_rng(3).normal(7.0, 3.0, (50, 4))).float()
    data = TensorData(x, torch.zeros(50, dtype=torch.long), list(range(50)), 1)
    positions = torch.arange(3, 47, 2)
    whole = data.standardization(positions)
    monkeypatch.setattr(data_module, "STATS_CHUNK", 4)
    chunked = data.standardization(positions)
    rows = x[positions].double()
    assert torch.allclose(chunked[0], whole[0]) and torch.allclose(chunked[1], whole[1])
    assert torch.allclose(whole[0], rows.mean(0).float())
    assert torch.allclose(whole[1], rows.std(0, unbiased=False).float())


def test_train_fits_on_the_training_positions_only_and_the_model_takes_raw_inputs():
    data, _ = blobs(scale=1e4, offset=3e4)
    train_pos = torch.arange(0, 240, 2)
    test_pos = torch.arange(1, 240, 2)
    # Shift the held-out rows: all-row statistics would differ from the training rows'.
    data.x[test_pos] += 5e4
    config = TrainConfig(model="mlp", model_params={"hidden": 16}, epochs=3, batch_size=32,
                         standardize=True)
    run = train(config, data, data.subset(test_pos), seed=0, positions=train_pos)
    mean, scale = data.standardization(train_pos)
    assert torch.equal(run.standardization["mean"], mean)
    assert torch.equal(run.standardization["scale"], scale)
    assert not torch.allclose(mean, data.standardization()[0])
    assert set(run.model.state_dict()) >= {"input_mean", "input_scale"}
    # The model standardizes raw inputs itself, test rows with the training statistics.
    bare = make_model("mlp", (3,), 3, hidden=16)
    bare.load_state_dict({k: v for k, v in run.model.state_dict().items()
                          if k not in ("input_mean", "input_scale")})
    raw = data.x[test_pos]
    with torch.no_grad():
        assert torch.allclose(run.model(raw), bare((raw - mean) / scale))
    assert run.final["test_loss"] == pytest.approx(evaluate(run.model, data.subset(test_pos))[0])


def test_the_harness_default_is_unchanged_and_the_scorers_default_is_on():
    assert TrainConfig(epochs=1).standardize is False
    plain = train(TrainConfig(model="logreg", epochs=1), blobs()[0], seed=0)
    assert plain.standardization is None and "input_mean" not in plain.model.state_dict()
    for scorer in (Loss(), AUM(), EL2N(), CVLoss(), Prototypicality()):
        assert scorer.standardize is True and scorer.params()["standardize"] is True
        assert scorer.train_config().standardize is True
    assert EL2N(epoch=0).train_config().standardize is True       # the step-0 config too


def test_opt_out_changes_params_and_every_cache_key():
    from curate.experiment.cells import cell_key

    on, off = EL2N(epochs=2), EL2N(epochs=2, standardize=False)
    assert off.params()["standardize"] is False and off.train_config().standardize is False
    assert {k: v for k, v in on.params().items() if k != "standardize"} == {
        k: v for k, v in off.params().items() if k != "standardize"}
    prints = {"data": "d", "test": "t", "curate": "v"}
    keys = {cell_key({"arm": "a"}, TrainConfig(epochs=1, standardize=s), "k", prints)
            for s in (True, False)}
    assert len(keys) == 2
    assert "standardize" in dataclasses.asdict(TrainConfig(epochs=1))
    assert EL2N(standardize="false").standardize is False           # CLI / YAML spelling
    with pytest.raises(CurateError, match="standardize must be true or false"):
        EL2N(standardize="maybe")
    with pytest.raises(CurateError, match="standardize must be true or false"):
        TrainConfig(epochs=1, standardize=2)


def test_large_scale_features_give_sane_scores_only_with_standardization():
    data, flipped = blobs(scale=1e4, offset=1e4)
    el2n = EL2N(**TINY).score_tensors(data).column("el2n").to_numpy()
    aum = AUM(**TINY).score_tensors(data).column("aum").to_numpy()
    assert np.isfinite(el2n).all() and np.isfinite(aum).all()
    assert len(np.unique(el2n.round(4))) > 100 and np.abs(aum).max() < 20
    assert roc_auc_score(flipped, el2n) > 0.95 and roc_auc_score(flipped, -aum) > 0.95

    raw_el2n = EL2N(standardize=False, **TINY).score_tensors(data).column("el2n").to_numpy()
    raw_aum = AUM(standardize=False, **TINY).score_tensors(data).column("aum").to_numpy()
    finite = np.isfinite(raw_el2n).all() and np.isfinite(raw_aum).all()
    # Degenerate: diverged to inf/NaN, or saturated (a handful of EL2N values, huge margins).
    assert not finite or (len(np.unique(raw_el2n.round(4))) <= 6 and np.abs(raw_aum).max() > 1e3)


def test_standardized_scores_do_not_depend_on_the_feature_scale():
    small = EL2N(**TINY).score_tensors(blobs(scale=1.0)[0]).column("el2n").to_numpy()
    large = EL2N(**TINY).score_tensors(blobs(scale=1e4, offset=-3e3)[0]).column("el2n")
    assert np.allclose(small, large.to_numpy(), atol=1e-3)


def test_standardized_scores_are_bit_for_bit_deterministic_per_seed():
    data, _ = blobs(scale=50.0)
    a = AUM(**TINY).score_tensors(data)
    b = AUM(**TINY).score_tensors(data)
    c = AUM(**{**TINY, "seeds": [7]}).score_tensors(data)
    assert a.equals(b) and not a.equals(c)
    config = TrainConfig(model="mlp", epochs=2, batch_size=32, standardize=True)
    first, second = train(config, data, seed=3), train(config, data, seed=3)
    for (name, p), q in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(p, q), name


def test_cv_loss_fits_each_fold_on_its_training_rows(monkeypatch):
    data, _ = blobs(n=60, flipped=6)
    fitted = []
    original = TensorData.standardization

    def spy(self, positions=None):
        fitted.append(None if positions is None else sorted(set(torch.as_tensor(
            positions).tolist())))
        return original(self, positions)

    monkeypatch.setattr(TensorData, "standardization", spy)
    scorer = CVLoss(folds=3, **{**TINY, "epochs": 1})
    out = scorer.score_tensors(data)
    assert np.isfinite(out.column("cv_loss").to_numpy()).all()
    folds = scorer.splits(data.y.numpy())
    assert fitted == [sorted(train_pos.tolist()) for train_pos, _ in folds]


def test_initial_states_keep_or_refuse_their_standardization():
    data, _ = blobs(scale=100.0)
    on = TrainConfig(model="mlp", model_params={"hidden": 8}, steps=3, batch_size=32,
                     standardize=True)
    off = dataclasses.replace(on, standardize=False)
    head = train(on, data, seed=0, positions=torch.arange(120))
    # A standardized state brings its statistics (the weights were trained for them).
    resumed = train(on, data, seed=0, initial_state=head.model.state_dict())
    assert torch.equal(resumed.standardization["mean"], head.standardization["mean"])
    # Weights only (an initialisation): the run fits its own rows.
    weights = {k: v for k, v in head.model.state_dict().items() if not k.startswith("input_")}
    fresh = train(on, data, seed=0, initial_state=weights)
    assert torch.equal(fresh.standardization["mean"], data.standardization()[0])
    with pytest.raises(CurateError, match="standardize=False"):
        train(off, data, seed=0, initial_state=head.model.state_dict())
    # A bare model prepared with standardize_inputs takes a standardized state.
    bare = standardize_inputs(make_model("mlp", (3,), 3, hidden=8), torch.zeros(3),
                              torch.ones(3))
    bare.load_state_dict(head.model.state_dict())
    with torch.no_grad():
        assert torch.equal(bare(data.x), head.model(data.x))


def test_input_space_prototypicality_clusters_standardized_inputs():
    data, _ = blobs(scale=1.0)
    # A pure-noise feature a thousand times larger dominates raw distances.
    noise = torch.from_numpy(np.random.default_rng(1).normal(0, 1e3, (len(data), 1))).float()
    wide = TensorData(torch.cat([data.x, noise], dim=1), data.y, data.ids, 3)
    kw = dict(space="input", metric="euclidean", seeds=1)
    on = Prototypicality(**kw).score_tensors(wide)
    off = Prototypicality(standardize=False, **kw).score_tensors(wide)
    by_hand = Prototypicality(standardize=False, **kw).score_tensors(
        wide.standardized(*wide.standardization()))
    assert on.equals(by_hand) and not on.equals(off)
    assert off.column("prototypicality").to_numpy().max() > 100     # raw: noise-scale distances
