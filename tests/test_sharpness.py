"""Hessian sharpness: HVPs, top eigenvalues, trace, and the pruning predictions."""

import math

import pytest
import torch
from torch import nn

from curate.core.errors import CurateError
from curate.train import make_model
from curate.train.pruning import magnitude_masks
from curate.train.sharpness import (
    full_hessian,
    hessian_trace,
    hvp_fn,
    predicted_prunable_fraction,
    pruning_displacement,
    top_eigenvalues,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def small():
    """A float64 MLP (hidden 6, 117 parameters), trained a little, on a fixed batch."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(60, 8, generator=gen, dtype=torch.float64)
    y = (x[:, 0] + x[:, 1] > 0).long() + (x[:, 2] > 0.5).long()
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = make_model("mlp", (8,), 3, hidden=6).double()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for _ in range(50):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    return model, x, y


class Saddle(nn.Module):
    """logits = [a b + a^2, 0]: at a = b = 0 with label 0, H = [[-1, -1/2], [-1/2, 0]]
    (eigenvalues (-1 -+ sqrt 2) / 2 = -1.207, 0.207): the largest |lambda| is negative."""

    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros((), dtype=torch.float64))
        self.b = nn.Parameter(torch.zeros((), dtype=torch.float64))

    def forward(self, x):
        z = self.a * self.b + self.a ** 2
        return torch.stack([z.expand(len(x)), torch.zeros(len(x), dtype=x.dtype)], 1)


def test_hvp_matches_full_hessian(small):
    model, x, y = small
    hessian = full_hessian(model, x, y)
    assert hessian.shape == (117, 117)
    assert torch.allclose(hessian, hessian.T)
    v = torch.randn(117, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert torch.allclose(hvp_fn(model, x, y)(v), hessian @ v, atol=1e-12)
    exact = torch.func.hessian(lambda w: nn.functional.cross_entropy(
        torch.func.functional_call(model, {"out.weight": w.view(3, 6)}, (x,)), y))(
        model.out.weight.detach().reshape(-1))
    sub = full_hessian(model, x, y, params=["out.weight"])
    assert torch.allclose(sub, exact, atol=1e-12)


def test_hvp_leaves_model_mode_and_point(small):
    model, x, y = small
    model.train()
    op = hvp_fn(model, x, y)
    v = torch.ones(117, dtype=torch.float64)
    before = op(v)
    with torch.no_grad():
        model.out.weight.add_(1.0)
    try:
        assert torch.equal(op(v), before)   # the point was copied when op was built
    finally:
        with torch.no_grad():
            model.out.weight.sub_(1.0)
    assert model.training


@pytest.mark.parametrize("method", ["lanczos", "power"])
def test_top_eigenvalues_match_eigvalsh(small, method):
    model, x, y = small
    exact = torch.linalg.eigvalsh(full_hessian(model, x, y)).flip(0)[:4]
    found = top_eigenvalues(model, x, y, k=4, method=method, iters=400, tol=1e-10,
                            vectors=True)
    assert found.converged
    assert torch.allclose(found.eigenvalues, exact, rtol=1e-6)
    hessian = full_hessian(model, x, y)
    residual = hessian @ found.eigenvectors - found.eigenvectors * found.eigenvalues
    assert residual.norm(dim=0).max() < 1e-3 * exact[0]
    if method == "lanczos":
        assert found.hvps < 117


def test_power_iteration_avoids_the_negative_eigenvalue_pitfall():
    model = Saddle()
    x, y = torch.zeros(4, 1, dtype=torch.float64), torch.zeros(4, dtype=torch.long)
    exact = torch.linalg.eigvalsh(full_hessian(model, x, y))
    assert exact[0] < 0 and abs(exact[0]) > abs(exact[1])
    for method in ("power", "lanczos"):
        top = top_eigenvalues(model, x, y, k=1, method=method, tol=1e-12, iters=500)
        assert top.eigenvalues[0] == pytest.approx((math.sqrt(2) - 1) / 2, rel=1e-6)
        assert top.eigenvalues[0] == pytest.approx(float(exact[1]), rel=1e-6)


def test_masked_hessian_is_zero_off_the_mask(small):
    model, x, y = small
    masks = magnitude_masks(model, 0.5)
    flat = torch.cat([masks[n].reshape(-1) if n in masks else torch.ones(p.numel())
                      for n, p in model.named_parameters()]).double()
    v = torch.randn(117, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    out = hvp_fn(model, x, y, masks=masks)(v)
    assert torch.all(out[flat == 0] == 0)
    hessian = full_hessian(model, x, y)
    masked = flat[:, None] * hessian * flat[None, :]
    assert torch.allclose(out, masked @ v, atol=1e-12)
    assert torch.allclose(full_hessian(model, x, y, masks=masks), masked, atol=1e-12)
    top = top_eigenvalues(model, x, y, k=2, masks=masks, tol=1e-10)
    assert torch.allclose(top.eigenvalues, torch.linalg.eigvalsh(masked).flip(0)[:2],
                          rtol=1e-6)
    trace, _ = hessian_trace(model, x, y, samples=4, masks=masks)
    assert math.isfinite(trace)


def test_hutchinson_trace_within_its_standard_error(small):
    model, x, y = small
    exact = float(full_hessian(model, x, y).trace())
    trace, stderr = hessian_trace(model, x, y, samples=300, seed=0)
    assert 0 < stderr < 0.2 * abs(exact)
    assert abs(trace - exact) <= 2 * stderr
    # One coordinate: z' H z = H for z = +-1, so the estimate is exact with stderr 0.
    saddle = Saddle()
    x1, y1 = torch.zeros(4, 1, dtype=torch.float64), torch.zeros(4, dtype=torch.long)
    assert hessian_trace(saddle, x1, y1, samples=3, params=["a"]) == (pytest.approx(-1.0), 0.0)


def test_deterministic_for_a_seed(small):
    model, x, y = small
    a = top_eigenvalues(model, x, y, k=3, seed=5)
    b = top_eigenvalues(model, x, y, k=3, seed=5)
    assert torch.equal(a.eigenvalues, b.eigenvalues) and a.hvps == b.hvps
    p1 = top_eigenvalues(model, x, y, k=2, method="power", seed=5, iters=50)
    p2 = top_eigenvalues(model, x, y, k=2, method="power", seed=5, iters=50)
    assert torch.equal(p1.eigenvalues, p2.eigenvalues)
    assert hessian_trace(model, x, y, samples=10, seed=1) == hessian_trace(model, x, y,
                                                                          samples=10, seed=1)
    assert hessian_trace(model, x, y, samples=10, seed=1) != hessian_trace(model, x, y,
                                                                          samples=10, seed=2)


def test_pruning_displacement_and_predictions_by_hand():
    # A diagonal quadratic: weights |w| = 1, 2, 3, 4, Hessian diag(2, 1, 1, 1).
    state = {"layer.weight": torch.tensor([[1.0, -2.0], [3.0, 4.0]]),
             "layer.bias": torch.tensor([100.0, 100.0])}
    fractions = [0.25, 0.5, 0.75, 1.0]
    radii = pruning_displacement(state, fractions)
    assert torch.allclose(radii ** 2, torch.tensor([1.0, 5.0, 14.0, 30.0], dtype=torch.float64))
    # Already pruning the 1: the next 50% of the remaining 3 (round half up: 2) are 2 and 3.
    mask = {"layer.weight": torch.tensor([[0.0, 1.0], [1.0, 1.0]])}
    assert pruning_displacement(state, [0.5], masks=mask)[0] ** 2 == pytest.approx(13.0)

    eigenvalues, eps = [2.0, 1.0, 1.0, 1.0], 5.5
    out = predicted_prunable_fraction(eigenvalues, (fractions, radii), eps, 4)
    # lambda_max rule: 1/2 * 2 * R^2 <= 5.5 holds for R^2 = 1, 5, not 14.
    assert out["lambda_max"] == 0.5
    # Gordon: p * 4 <= sum 2 eps / (2 eps + lambda R^2) = 11/(11 + 2R^2) + 3 * 11/(11 + R^2).
    for p, r2 in zip(fractions, [1.0, 5.0, 14.0, 30.0]):
        width = 11 / (11 + 2 * r2) + 3 * 11 / (11 + r2)
        assert (4 * p <= width) == (p <= 0.5)
    assert out["gordon"] == 0.5
    # The tail replaced by its mean from the trace: exact when the tail is flat.
    with_trace = predicted_prunable_fraction([2.0], (fractions, radii), eps, 4, trace=5.0)
    assert with_trace == out
    # Without the trace the tail counts as flat (1 each): 4p <= 11/(11 + 2R^2) + 3.
    assert predicted_prunable_fraction([2.0], (fractions, radii), eps, 4)["gordon"] == 0.75


def test_sharper_predicts_smaller_fractions():
    def radius(p):
        return 3.0 * p ** 1.5

    previous = {"lambda_max": 1.0, "gordon": 1.0}
    strictly = {"lambda_max": False, "gordon": False}
    for scale in (0.5, 1, 2, 4, 8, 16):
        out = predicted_prunable_fraction([scale * v for v in (10.0, 5.0, 2.0)], radius, 0.1,
                                          1000, trace=scale * 40.0)
        for rule in out:
            assert out[rule] <= previous[rule]
            strictly[rule] |= out[rule] < previous[rule]
        previous = out
    assert all(strictly.values())
    assert out["lambda_max"] <= out["gordon"]


def test_bad_inputs_raise_curate_error(small):
    model, x, y = small
    with pytest.raises(CurateError, match="method"):
        top_eigenvalues(model, x, y, method="arnoldi")
    with pytest.raises(CurateError, match="k=200"):
        top_eigenvalues(model, x, y, k=200)
    with pytest.raises(CurateError, match="equal length"):
        hvp_fn(model, x, y[:10])
    with pytest.raises(CurateError, match="int64"):
        hvp_fn(model, x, y.float())
    with pytest.raises(CurateError, match="unknown parameter"):
        hvp_fn(model, x, y, params=["nope.weight"])
    with pytest.raises(CurateError, match="shape"):
        hvp_fn(model, x, y, masks={"out.weight": torch.ones(2, 2)})
    with pytest.raises(CurateError, match="max_params"):
        full_hessian(model, x, y, max_params=100)
    with pytest.raises(CurateError, match="samples"):
        hessian_trace(model, x, y, samples=1)
    with pytest.raises(CurateError, match="eps"):
        predicted_prunable_fraction([1.0], lambda p: p, 0.0, 10)
    with pytest.raises(CurateError, match="as many radii"):
        predicted_prunable_fraction([1.0], ([0.1, 0.2], [1.0]), 0.1, 10)
    with pytest.raises(CurateError, match="n_params"):
        predicted_prunable_fraction([1.0, 2.0], lambda p: p, 0.1, 1)
