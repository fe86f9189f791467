"""The repetition experiment: the effective-data fit, nested unique pools, text and
classifier curves, and its errors."""

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from curate.cli import cli
from curate.core.errors import CurateError
from curate.core.registry import EXPERIMENTS
from curate.experiment.repetition_fit import (
    R_MAX,
    Calibration,
    bootstrap_indices,
    fit_curve,
    lawful_points,
    percentile_interval,
    value_ratio,
    within_tolerance,
)
from curate.io import Source
from tests.test_cli import assert_one_line_error, curate

pytestmark = pytest.mark.usefixtures("one_torch_thread")

LM = {"model_params": {"n_layer": 1, "n_head": 2, "n_embd": 32}, "context": 32,
      "batch_size": 4, "tokens": 4 * 32 * 8, "precision": "fp32", "eval_tokens": 1024}
MNIST = "builtin:mnist1d:n_train=1200,n_test=300"
MNIST_TEST = "builtin:mnist1d:split=test,n_train=1200,n_test=300"
CLASSIFIER = {"model": "mlp", "optimizer": "adam", "lr": 0.003, "batch_size": 50, "steps": 24}
POOLS = [{"name": "prose", "where": "slice = 'austen'"},
         {"name": "code", "where": "slice = 'python-src'"},
         {"name": "half", "mix": {"prose": 0.5, "code": 0.5}, "epochs": [1, 4]}]


# -- the fit ----------------------------------------------------------------------------
def synthetic(r_star, noise=0.002, seeds=3, epochs=(1, 2, 4, 8, 16, 32, 64)):
    """Losses of a made-up power law L(D) = 2 + 50 D^-0.3 where repeated data is worth
    exactly what the law with ``r_star`` says."""
    rng = np.random.default_rng(0)
    epochs = np.array(epochs)
    unique = 2 ** 20 // epochs

    def loss(d):
        return 2 + 50 * d ** -0.3 + rng.normal(0, noise, seeds)

    repeated = np.array([loss(u * value_ratio(e, r_star)) for e, u in zip(epochs, unique)])
    calibration = np.array([loss(u) for u in unique[1:]])
    return epochs, unique, repeated, unique[1:], calibration


@pytest.mark.parametrize("r_star", [2.0, 15.4, 100.0])
def test_fit_recovers_the_decay_constant_of_the_law(r_star):
    curve = fit_curve(*synthetic(r_star), 0.01, bootstrap_indices(3, 100))
    assert curve.fit.r_star == pytest.approx(r_star, rel=0.15)
    low, high = percentile_interval(curve.boot_r_star)
    assert low <= curve.fit.r_star <= high
    # what each repeated run was worth, read off the calibration, follows the law
    ratio = curve.effective / curve.unique
    assert ratio[0] == pytest.approx(1.0)
    assert ratio == pytest.approx(value_ratio(curve.epochs, r_star), rel=0.15)


def test_free_repetition_fits_the_bound_and_costly_repetition_leaves_tolerance_early():
    free = fit_curve(*synthetic(1e6, noise=0), 0.01, bootstrap_indices(3, 10))
    assert free.fit.r_star == pytest.approx(R_MAX) and free.fit.at_bound
    assert free.within == 64
    costly = fit_curve(*synthetic(1.0, noise=0), 0.01, bootstrap_indices(3, 10))
    assert costly.fit.r_star < 2 and costly.within < 8


def test_points_where_more_passes_made_things_worse_are_left_out_of_the_fit():
    epochs, unique, repeated, cal_unique, calibration = synthetic(15.4, noise=0)
    memorised = repeated.copy()
    memorised[-1] = calibration[-1] + 0.5   # 64 epochs: worse than one pass over its data
    curve = fit_curve(epochs, unique, memorised, cal_unique, calibration, 0.01,
                      bootstrap_indices(3, 10))
    assert curve.fit.through == 32
    assert curve.fit.r_star == pytest.approx(15.4, rel=0.05)
    assert lawful_points(np.array([1.0, 1.9, 3.5, 3.4, 6.0])) == 3


def test_no_calibration_means_no_fit_but_still_a_tolerance():
    epochs, unique, repeated, _, _ = synthetic(15.4)
    curve = fit_curve(epochs, unique, repeated, [], np.zeros((0, 3)), 0.01,
                      bootstrap_indices(3, 10))
    assert curve.fit is None and len(curve.boot_r_star) == 0
    assert curve.within >= 2


def test_calibration_is_monotone_and_inverts_its_loss():
    cal = Calibration([1000, 100, 10], [2.0, 2.5, 2.4])   # noise made 10 look better than 100
    assert list(cal.loss) == sorted(cal.loss, reverse=True)
    assert cal.effective(cal.loss_at(500)) == pytest.approx(500, rel=1e-6)
    assert cal.effective(0.5) == pytest.approx(1000)   # clamped to the calibrated range


def test_within_tolerance_stops_at_the_first_point_outside():
    assert within_tolerance([1, 2, 4, 8], [1.0, 1.005, 1.02, 1.0], 0.01) == 2
    assert within_tolerance([4, 1, 2], [1.0, 1.0, 1.0], 0.01) == 4


# -- text -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Prose and Python documents of the shipped sample, split into train and held-out."""
    folder = tmp_path_factory.mktemp("corpus")
    table = Source("builtin:quickstart").read_all().rename_columns(["id", "text", "slice"])
    table = table.filter(pc.is_in(table.column("slice"), pa.array(["austen", "python-src"])))
    heldout = pc.equal(pc.bit_wise_and(pc.cast(pc.utf8_length(table.column("text")),
                                               pa.int64()), 7), 0)
    pq.write_table(table.filter(pc.invert(heldout)), folder / "train.parquet")
    pq.write_table(table.filter(heldout), folder / "heldout.parquet")
    return folder


def text_run(corpus, out, train=LM, **own):
    return EXPERIMENTS.get("repetition")(
        str(corpus / "train.parquet"), str(corpus / "heldout.parquet"), train_config=train,
        seeds=2, out_dir=out, bootstrap=50, **own)


@pytest.fixture(scope="module")
def text_result(corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("text")
    return out, text_run(corpus, out, epochs=[1, 2, 4], pools=POOLS,
                         compare=[["prose", "code"]])


def test_text_curves_hold_the_budget_and_repeat_nested_pools(text_result):
    out, result = text_result
    rows = result.results.to_pylist()
    # per seed: prose and code 3 points + 2 calibrations, half 2 points + 1 calibration
    assert result.trained == 2 * (5 + 5 + 3) and result.reused == 0
    assert {r["slice"] for r in rows} == {"austen", "python-src"}
    repeated = [r for r in rows if r["run"] == "repeated"]
    assert {r["tokens"] for r in repeated} == {LM["tokens"]}
    for r in repeated:
        assert r["measured_epochs"] == pytest.approx(r["epochs"], rel=0.02)
    for r in rows:
        if r["run"] == "calibration":
            assert 1 <= r["measured_epochs"] < 1.2 and r["tokens"] < LM["tokens"]
    pools = result.pools.to_pylist()
    assert {(p["pool"], p["epochs"]): p["unique"] for p in pools if p["seed"] == 0} == {
        ("prose", 1): 1025, ("prose", 2): 513, ("prose", 4): 257, ("code", 1): 1025,
        ("code", 2): 513, ("code", 4): 257, ("half", 1): 1025, ("half", 4): 257}
    fits = {(r["pool"], r["slice"]): r for r in result.fits.to_pylist()}
    assert fits[("prose", "austen")]["headline"] and fits[("code", "python-src")]["headline"]
    assert fits[("half", "austen")]["headline"]   # a 50/50 mix: its first part's slice
    assert all(r["r_star"] is not None for r in fits.values())
    measures = [r["measure"] for r in result.comparisons.to_pylist()]
    assert measures == ["r_star", "within", "rise@2", "rise@4"]
    for name in ("results.csv", "summary.csv", "fits.csv", "effective.csv", "pools.csv",
                 "comparisons.csv", "rise.png", "effective.png", "slices.png", "report.md"):
        assert (out / name).is_file(), name
    report = (out / "report.md").read_text()
    assert "R*" in report and "prose@austen" in report and "50% prose, 50% code" in report


def test_unique_pools_are_nested_prefixes_and_mixes_take_exact_shares(text_result):
    from curate.train.lm import TokenPool

    out, result = text_result
    folders = sorted(p for p in (out / "tokens" / "tokens").iterdir() if p.is_dir())
    pools = [TokenPool(f) for f in folders]
    by_name: dict = {}
    for pool in pools:
        by_name.setdefault(pool.meta["name"], []).append(pool)
    # every smaller prefix pool of a seed is the start of its larger one
    full = [p for p in by_name["prose"] if p.n_tokens == 1025]
    small = [p for p in by_name["prose"] if p.n_tokens == 257]
    matches = sum(np.array_equal(s.tokens, f.tokens[:257]) for s in small for f in full)
    assert matches == 2   # one per seed; the two seeds drew different documents
    half = [p for p in by_name["half"] if p.n_tokens == 257]
    assert len(half) == 2
    # 128 tokens from the prose order, then 129 from the code order of the same seed
    codes = {tuple(f.tokens[:129]) for f in by_name["code"] if f.n_tokens == 1025}
    proses = {tuple(f.tokens[:128]) for f in full}
    assert all(tuple(h.tokens[128:]) in codes and tuple(h.tokens[:128]) in proses
               for h in half)


def test_a_rerun_reuses_every_run_and_writes_the_same_tables(corpus, text_result, tmp_path):
    out, first = text_result
    again = text_run(corpus, out, epochs=[1, 2, 4], pools=POOLS, compare=[["prose", "code"]])
    assert again.trained == 0 and again.reused == first.trained
    for name in ("results", "summary", "fits", "effective", "comparisons", "pools"):
        assert getattr(again, name).equals(getattr(first, name)), name


def test_a_fixed_pool_seed_gives_every_seed_the_same_documents(corpus, tmp_path):
    result = text_run(corpus, tmp_path, epochs=[1, 2], pools=POOLS[:1], pool_seed=7,
                      calibrate=False)
    pools = result.pools.to_pylist()
    assert len({(p["documents"], p["bytes"]) for p in pools if p["epochs"] == 2}) == 1
    assert result.trained == 4   # no calibration runs
    assert result.fits.column("r_star").to_pylist() == [None, None]


def test_a_pool_smaller_than_the_budget_is_one_line(corpus, tmp_path):
    small = [{"name": "tiny", "where": "id = (SELECT min(id) FROM scores)"}]
    with pytest.raises(CurateError, match="tiny.*fewer than the .* of one epoch"):
        text_run(corpus, tmp_path / "out", {**LM, "tokens": 10 ** 6}, epochs=[1, 2],
                 pools=small)
    assert not (tmp_path / "out").exists()   # nothing half-made is left behind
    with pytest.raises(CurateError, match="held-out slice 'nope' is not in"):
        text_run(corpus, tmp_path / "out", pools=[{"name": "a", "heldout": "nope"}])
    with pytest.raises(CurateError, match="compare 'all@nope': held-out slice 'nope'"):
        text_run(corpus, tmp_path / "out", compare=[["all", "all@nope"]])
    assert not (tmp_path / "out").exists()


# -- classifier -------------------------------------------------------------------------
def test_classifier_curve_on_mnist1d(tmp_path):
    result = EXPERIMENTS.get("repetition")(MNIST, MNIST_TEST, train_config=CLASSIFIER,
                                           seeds=2, out_dir=tmp_path, epochs=[1, 2, 4, 8],
                                           bootstrap=50)
    rows = result.results.to_pylist()
    assert result.trained == 2 * (4 + 3)
    assert {r["slice"] for r in rows} == {"test"}
    repeated = {(r["epochs"], r["seed"]): r for r in rows if r["run"] == "repeated"}
    assert {r["steps"] for r in repeated.values()} == {24}
    assert [repeated[(e, 0)]["unique"] for e in (1, 2, 4, 8)] == [1200, 600, 300, 150]
    assert all(r["measured_epochs"] == pytest.approx(r["epochs"]) for r in repeated.values())
    calibration = [r for r in rows if r["run"] == "calibration"]
    assert {r["steps"] for r in calibration} == {12, 6, 3}
    (fit,) = result.fits.to_pylist()
    assert fit["headline"] and fit["r_star"] is not None
    assert 1 <= fit["within"] <= 8
    assert "examples" in (tmp_path / "report.md").read_text()


def test_classifier_budget_must_be_steps(tmp_path):
    config = {**CLASSIFIER, "steps": None, "epochs": 3}
    with pytest.raises(CurateError, match="steps budget"):
        EXPERIMENTS.get("repetition")(MNIST, MNIST_TEST, train_config=config, seeds=1,
                                      out_dir=tmp_path)


# -- parameters and the CLI -------------------------------------------------------------
@pytest.mark.parametrize("params, message", [
    ({"epochs": [2, 4]}, "must include 1"),
    ({"epochs": [1, 2.5]}, "positive integers"),
    ({"pools": [{"name": "m", "mix": {"nope": 1.0}}]}, "not a pool without a mix"),
    ({"pools": [{"name": "a"}, {"name": "m", "mix": {"a": 0.7}}]}, "sum to 1"),
    ({"pools": [{"name": "a", "shape": 1}]}, "unknown key 'shape'"),
    ({"pools": ["all"], "compare": [["all", "other"]]}, "compare names pool 'other'"),
    ({"tolerance": 1.5}, "tolerance"),
    ({"pools": [{"name": "s", "selection": "selection"}]}, "there is none"),
])
def test_bad_parameters_fail_before_anything_runs(params, message):
    from curate.experiment import check

    with pytest.raises(CurateError, match=message):
        check("repetition", params)


def test_the_config_kind_follows_the_budget():
    from curate.experiment import train_config_for
    from curate.train import TrainConfig
    from curate.train.lm import LMConfig

    fn = EXPERIMENTS.get("repetition")
    assert isinstance(train_config_for(fn, {"tokens": 1000}), LMConfig)
    assert isinstance(train_config_for(fn, {"steps": 10}), TrainConfig)
    with pytest.raises(CurateError, match="no field 'context'"):
        train_config_for(fn, {"steps": 10, "context": 32})


def test_cli_runs_a_classifier_curve_and_refuses_two_budgets(tmp_path):
    both = curate("experiment", "repetition", MNIST, "--test", MNIST_TEST, "--tokens", "10",
                  "--steps", "10", "-o", tmp_path / "x")
    assert_one_line_error(both, "give --tokens")
    assert not (tmp_path / "x").exists()
    ok = CliRunner().invoke(cli, ["experiment", "repetition", MNIST, "--test", MNIST_TEST,
                             "--steps", "24", "--batch-size", "50", "--optimizer", "adam",
                             "--lr", "0.003", "--epochs", "1,4", "--seeds", "1",
                             "--no-calibration", "-o", str(tmp_path / "cli")])
    assert ok.exit_code == 0, ok.output
    assert "2 runs trained" in ok.output
    assert (tmp_path / "cli" / "report.md").is_file()
