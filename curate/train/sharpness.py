"""Hessian sharpness of a trained network, and how far it predicts one can prune it.

Every quantity is for the mean cross-entropy of ``model`` on one fixed batch ``(x, y)``
(a fixed batch, not minibatches: minibatch Hessian estimates are noisy), with the model
in eval mode, as a function of the flattened parameters named in ``params`` (default:
all trainable parameters, in ``named_parameters`` order; ``D`` = their total size).
With ``masks`` (``{name: 0/1 tensor}``, as :func:`curate.train.train` takes) the Hessian
is restricted to the unpruned weights, ``H_masked = M H M`` with ``M = diag(mask)``.

    op = hvp_fn(model, x, y)                         # v [D] -> H v [D]
    top = top_eigenvalues(model, x, y, k=5)          # Lanczos, 5 largest
    trace, stderr = hessian_trace(model, x, y, samples=100)

Cost is counted in Hessian-vector products (HVPs). One HVP is forward-over-reverse
(``jvp`` of ``grad``): about 2-3x one gradient on the batch, and memory of about one
backward pass. Lanczos needs about 25-45 HVPs for k = 5..10 on MNIST-1D models (about
2k for k = 150); power iteration needs ``k x (iterations to converge)``, slow when
eigenvalues are close (about 60-170 per eigenvalue there). Hutchinson needs one HVP per
sample.

Pruning prediction (a heuristic reconstruction consistent with Paul et al., ICLR 2023,
"Unmasking the lottery ticket hypothesis", and Larsen et al., ICLR 2022; not the
paper's formula): near the minimum ``L(w + d) ~ L* + 1/2 d' H d``, so the eps-sublevel
set is an ellipsoid with radii ``r_i = sqrt(2 eps / lambda_i)``. Pruning a fraction p of
the remaining weights by magnitude moves ``w`` onto an axial subspace at distance
``R(p)`` (:func:`pruning_displacement`); :func:`predicted_prunable_fraction` asks
whether that subspace still meets the sublevel set. :func:`curate.train.prunability.prunability`
measures the answer by pruning one-shot and retraining, next to the prediction.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, jvp, vmap

from curate.core.errors import CurateError
from curate.train.pruning import magnitude_masks

METHODS = ("lanczos", "power")
FULL_HESSIAN_MAX_PARAMS = 5000
# A Lanczos residual below this (relative to the largest Ritz value) means the Krylov
# space is invariant: the operator has no more directions to find.
_BREAKDOWN = 1e-10


# -- the objective: loss of the flattened parameters -----------------------------------
@dataclass
class _Objective:
    loss: Callable[[torch.Tensor], torch.Tensor]   # flat parameters [D] -> scalar loss
    point: torch.Tensor                             # the model's parameters, flat [D]
    mask: torch.Tensor | None                       # [D] 0/1, or None (nothing masked)
    model: nn.Module


@contextlib.contextmanager
def _eval_mode(model: nn.Module):
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _objective(model, x, y, params=None, masks=None) -> _Objective:
    if not isinstance(model, nn.Module):
        raise CurateError(f"expected an nn.Module, got {type(model).__name__}")
    if not torch.is_tensor(x) or not torch.is_tensor(y):
        raise CurateError("x and y must be tensors (a fixed batch: inputs [B, ...], labels [B])")
    if y.dim() != 1 or len(y) == 0 or len(x) != len(y):
        raise CurateError(f"x and y must be one non-empty batch of equal length, got x "
                          f"{list(x.shape)} and y {list(y.shape)}")
    if y.dtype != torch.long:
        raise CurateError(f"y must hold int64 class labels, got {y.dtype}")
    named = {n: p for n, p in model.named_parameters() if p.requires_grad}
    names = list(named) if params is None else list(params)
    if not names:
        raise CurateError("no parameters to differentiate: params is empty")
    unknown = [n for n in names if n not in named]
    if unknown:
        raise CurateError(f"unknown parameter {unknown[0]!r}; the model has "
                          f"{', '.join(named)}")
    shapes = [named[n].shape for n in names]
    sizes = [named[n].numel() for n in names]
    point = torch.cat([named[n].detach().reshape(-1) for n in names])
    mask = _flat_mask(masks, names, named, point.dtype)

    # The other parameters are held fixed (detached copies: no autograd graph to them).
    fixed = {n: p.detach().clone() for n, p in model.named_parameters() if n not in names}

    def loss(flat: torch.Tensor) -> torch.Tensor:
        values = {n: t.view(s) for n, t, s in zip(names, flat.split(sizes), shapes)}
        with _eval_mode(model):
            logits = functional_call(model, {**fixed, **values}, (x,))
        return F.cross_entropy(logits, y)

    return _Objective(loss=loss, point=point, mask=mask, model=model)


def _flat_mask(masks, names, named, dtype) -> torch.Tensor | None:
    if not masks:
        return None
    stray = [n for n in masks if n not in names]
    if stray:
        raise CurateError(f"mask for {stray[0]!r}, which is not among the parameters of the "
                          f"Hessian ({', '.join(names)})")
    parts = []
    for name in names:
        if name not in masks:
            parts.append(torch.ones(named[name].numel(), dtype=dtype))
            continue
        mask = torch.as_tensor(masks[name])
        if mask.shape != named[name].shape:
            raise CurateError(f"mask for {name!r} has shape {list(mask.shape)}, the parameter "
                              f"{list(named[name].shape)}")
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise CurateError(f"mask for {name!r} must hold only 0 and 1")
        parts.append(mask.reshape(-1).to(dtype))
    return torch.cat(parts)


def _operator(obj: _Objective) -> Callable[[torch.Tensor], torch.Tensor]:
    """``v -> H v`` (or ``M H M v``) at the objective's point, in the model's dtype."""
    gradient = grad(obj.loss)
    point, mask = obj.point, obj.mask

    def hvp(v: torch.Tensor) -> torch.Tensor:
        v = v.to(point.dtype)
        if mask is not None:
            v = v * mask
        out = jvp(gradient, (point,), (v,))[1]
        return out if mask is None else out * mask

    return hvp


def hvp_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params=None,
           masks=None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The Hessian-vector product ``v [D] -> H v [D]`` of the mean cross-entropy on ``(x, y)``.

    Args:
        model: the network; its current parameters are the point (copied now, so later
            training does not move it). Evaluated in eval mode, its mode is restored.
        x, y: the fixed batch, ``[B, ...]`` inputs and ``[B]`` int64 labels.
        params: parameter names to differentiate (default: all trainable, model order);
            ``D`` is their total size and the flat layout follows this order.
        masks: ``{name: 0/1 tensor}``; the product is ``M H M v`` (zero on pruned weights).
    Returns:
        a function of one flat vector ``[D]``; one call costs one HVP (forward-over-
        reverse, ``torch.func.jvp`` of ``torch.func.grad``).
    """
    return _operator(_objective(model, x, y, params, masks))


def full_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor, params=None, masks=None,
                 max_params: int = FULL_HESSIAN_MAX_PARAMS) -> torch.Tensor:
    """The dense Hessian ``[D, D]`` (masked: ``M H M``), column by column from HVPs.

    For small models only (tests, accuracy checks): it costs D HVPs (vectorised with
    ``vmap`` in chunks) and ``D^2`` floats; ``D > max_params`` is refused.
    """
    obj = _objective(model, x, y, params, masks)
    size = obj.point.numel()
    if size > max_params:
        raise CurateError(f"full_hessian needs {size} x {size} entries; D = {size} exceeds "
                          f"max_params={max_params} (use top_eigenvalues / hessian_trace)")
    eye = torch.eye(size, dtype=obj.point.dtype)
    hessian = vmap(_operator(obj), chunk_size=256)(eye)
    return (hessian + hessian.T) / 2   # symmetric up to rounding; make it exactly so


# -- eigenvalues ------------------------------------------------------------------------
@dataclass
class Eigen:
    """Top of a Hessian spectrum.

    ``eigenvalues``: ``[k]`` float64, algebraically largest first. ``eigenvectors``:
    ``[D, k]`` float64 unit columns (None unless asked for). ``hvps``: Hessian-vector
    products spent. ``converged``: every requested eigenvalue met ``tol``.
    """

    eigenvalues: torch.Tensor
    eigenvectors: torch.Tensor | None
    hvps: int
    converged: bool


def top_eigenvalues(model: nn.Module, x: torch.Tensor, y: torch.Tensor, k: int = 1, *,
                    method: str = "lanczos", iters: int = 100, tol: float = 1e-6,
                    seed: int = 0, params=None, masks=None, vectors: bool = False) -> Eigen:
    """The ``k`` algebraically largest Hessian eigenvalues (see the module notes).

    Args:
        k: how many eigenvalues.
        method: ``"lanczos"`` (default): Lanczos with full re-orthogonalisation (twice,
            classical Gram-Schmidt, in float64) from one seeded random start; ``iters`` is
            the Krylov dimension cap, i.e. at most ``iters`` HVPs in all. It stops when
            the top ``k`` Ritz residuals ``|beta_m s_mi|`` are below ``tol * |theta_1|``.
            Memory: ``iters x D`` float64 for the basis.
            ``"power"``: power iteration with deflation, one eigenvalue at a time, at most
            ``iters`` HVPs each; an eigenvalue has converged when its Rayleigh quotient
            changes by less than ``tol`` (relative). Plain power iteration finds the
            largest ``|lambda|``, which can be a negative eigenvalue (the pitfall
            PyHessian users hit); when the dominant eigenvalue ``mu`` of the (deflated)
            operator is negative, it is the smallest one, so the iteration is rerun on
            ``H - mu I``, whose spectrum is >= 0 with the algebraically largest eigenvalue
            on top (up to ``2 x iters`` HVPs for that eigenvalue).
        iters, tol: see ``method``.
        seed: seeds the random start vectors (``torch.Generator``), so results repeat.
        params, masks: see :func:`hvp_fn`; with masks the search stays in the unpruned
            coordinates (pruned coordinates never show up as zero eigenvalues).
        vectors: also return the eigenvectors.
    """
    if method not in METHODS:
        raise CurateError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    _check_positive_int("iters", iters)
    _check_positive_int("k", k)
    if not tol > 0:
        raise CurateError(f"tol must be positive, got {tol!r}")
    obj = _objective(model, x, y, params, masks)
    free = obj.point.numel() if obj.mask is None else int(obj.mask.sum())
    if k > free:
        raise CurateError(f"k={k} exceeds the {free} free (unmasked) parameters")
    op = _operator(obj)
    generator = torch.Generator().manual_seed(int(seed))
    start = _start_vector(obj, generator)
    if method == "lanczos":
        return _lanczos(op, start, k, iters, tol, vectors)
    return _power(op, obj, generator, k, iters, tol, vectors)


def _check_positive_int(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CurateError(f"{name} must be a positive integer, got {value!r}")


def _start_vector(obj: _Objective, generator: torch.Generator) -> torch.Tensor:
    v = torch.randn(obj.point.numel(), generator=generator, dtype=torch.float64)
    if obj.mask is not None:
        v = v * obj.mask.double()
    return v / v.norm()


def _apply(op, v: torch.Tensor) -> torch.Tensor:
    return op(v).double()


def _lanczos(op, start, k, iters, tol, vectors) -> Eigen:
    basis = torch.empty(iters + 1, start.numel(), dtype=torch.float64)
    basis[0] = start
    alphas, betas = [], []
    converged = False
    for j in range(iters):
        w = _apply(op, basis[j])
        alphas.append(float(basis[j] @ w))
        w = w - alphas[-1] * basis[j] - (betas[-1] * basis[j - 1] if j else 0.0)
        for _ in range(2):   # full re-orthogonalisation, twice ("twice is enough")
            w = w - basis[:j + 1].T @ (basis[:j + 1] @ w)
        beta = float(w.norm())
        ritz, s = torch.linalg.eigh(_tridiagonal(alphas, betas))
        ritz, s = ritz.flip(0), s.flip(1)
        scale = max(abs(float(ritz[0])), 1e-30)
        residuals = beta * s[-1, :k].abs()
        if len(alphas) >= k and bool((residuals <= tol * scale).all()):
            converged = True
        if converged or beta <= _BREAKDOWN * scale:
            # A breakdown means span(basis) is invariant: its Ritz values are exact.
            converged = converged or len(alphas) >= k
            break
        betas.append(beta)
        basis[j + 1] = w / beta
    m = len(alphas)
    if m < k:
        raise CurateError(f"Lanczos found only {m} eigenvalues (the operator's range is "
                          f"{m}-dimensional from this start); ask for k <= {m}")
    eigvecs = basis[:m].T @ s[:, :k] if vectors else None
    return Eigen(eigenvalues=ritz[:k].clone(), eigenvectors=eigvecs, hvps=m,
                 converged=converged)


def _tridiagonal(alphas, betas) -> torch.Tensor:
    m = len(alphas)
    t = torch.diag(torch.tensor(alphas, dtype=torch.float64))
    if m > 1:
        off = torch.tensor(betas[:m - 1], dtype=torch.float64)
        t = t + torch.diag(off, 1) + torch.diag(off, -1)
    return t


def _power(op, obj, generator, k, iters, tol, vectors) -> Eigen:
    found_vals: list[float] = []
    found_vecs: list[torch.Tensor] = []
    hvps, converged = 0, True

    def deflated(v: torch.Tensor) -> torch.Tensor:
        out = _apply(op, v)
        for lam, u in zip(found_vals, found_vecs):
            out = out - lam * (u @ v) * u
        return out

    for _ in range(k):
        start = _start_vector(obj, generator)
        mu, v, n, ok = _power_iterate(deflated, start, found_vecs, iters, tol, shift=0.0)
        hvps += n
        if mu < 0:   # dominant |mu| is the most negative eigenvalue: shift past it
            shifted, v, n, ok = _power_iterate(deflated, v, found_vecs, iters, tol, shift=mu)
            hvps += n
            mu = shifted + mu
        converged = converged and ok
        found_vals.append(mu)
        found_vecs.append(v)
    order = sorted(range(k), key=lambda i: -found_vals[i])
    values = torch.tensor([found_vals[i] for i in order], dtype=torch.float64)
    eigvecs = torch.stack([found_vecs[i] for i in order], 1) if vectors else None
    return Eigen(eigenvalues=values, eigenvectors=eigvecs, hvps=hvps, converged=converged)


def _power_iterate(op, v, found, iters, tol, shift):
    """Power iteration on ``op - shift I``, kept orthogonal to ``found``.

    Returns (Rayleigh quotient of ``op - shift I``, unit vector, HVPs, converged).
    """
    previous = None
    for n in range(1, iters + 1):
        for u in found:   # deflation leaves found directions at eigenvalue 0; keep v off them
            v = v - (u @ v) * u
        v = v / v.norm()
        w = op(v) - shift * v
        mu = float(v @ w)
        norm = float(w.norm())
        if norm == 0.0:
            return 0.0, v, n, True
        if previous is not None and abs(mu - previous) <= tol * max(abs(mu), 1e-30):
            return mu, v, n, True
        previous = mu
        v = w / norm
    return mu, v, iters, False


# -- trace ------------------------------------------------------------------------------
def hessian_trace(model: nn.Module, x: torch.Tensor, y: torch.Tensor, samples: int = 100, *,
                  seed: int = 0, params=None, masks=None) -> tuple[float, float]:
    """Hutchinson's estimate of ``tr(H)`` (masked: ``tr(M H M)``) and its standard error.

    ``tr(H) = E[z' H z]`` for Rademacher ``z`` (+-1 entries, zero on masked coordinates),
    drawn from a ``torch.Generator`` seeded with ``seed``. Returns ``(mean of z' H z,
    sample std / sqrt(samples))``; ``samples`` >= 2 HVPs. The variance is
    ``2 sum_{i != j} H_ij^2`` per sample, so diagonal-dominant Hessians converge fast.
    """
    _check_positive_int("samples", samples)
    if samples < 2:
        raise CurateError("samples must be at least 2 (the standard error needs two)")
    obj = _objective(model, x, y, params, masks)
    op = _operator(obj)
    generator = torch.Generator().manual_seed(int(seed))
    values = []
    for _ in range(samples):
        z = torch.randint(0, 2, (obj.point.numel(),), generator=generator).double() * 2 - 1
        if obj.mask is not None:
            z = z * obj.mask.double()
        values.append(float(z @ _apply(op, z)))
    estimates = torch.tensor(values, dtype=torch.float64)
    return float(estimates.mean()), float(estimates.std() / math.sqrt(samples))


# -- predicted prunable fraction --------------------------------------------------------
def pruning_displacement(model_or_state, fractions: Sequence[float], masks=None,
                         **mask_options) -> torch.Tensor:
    """``R(p)``: how far magnitude pruning of a fraction ``p`` of the remaining weights moves w.

    ``R(p) = || w * (m - m_p) ||``, the norm of the weights that
    :func:`curate.train.pruning.magnitude_masks` removes (``m``: ``masks``, default all
    kept; ``m_p``: the masks after pruning ``p`` of the kept weights), so the ranking,
    ties, scope and output-layer rate are exactly those of the pruning itself.

    Args:
        model_or_state: an ``nn.Module`` or ``state_dict`` (the trained weights).
        fractions: each in [0, 1].
        masks: the current masks (weights already pruned).
        **mask_options: ``layers``, ``scope``, ``output_fraction``, ``output_layer``,
            passed to ``magnitude_masks``.
    Returns:
        float64 ``[len(fractions)]``, non-decreasing in ``p``.
    """
    state = model_or_state.state_dict() if isinstance(model_or_state, nn.Module) \
        else model_or_state
    radii = []
    for p in fractions:
        new = magnitude_masks(model_or_state, p, masks=masks, **mask_options)
        squared = 0.0
        for name, kept in new.items():
            old = torch.ones(kept.shape) if not masks or name not in masks \
                else torch.as_tensor(masks[name]).float()
            removed = state[name].detach().double() * (old - kept).double()
            squared += float((removed ** 2).sum())
        radii.append(math.sqrt(squared))
    return torch.tensor(radii, dtype=torch.float64)


DEFAULT_GRID = tuple(i / 1000 for i in range(1, 1000))


def predicted_prunable_fraction(eigenvalues, displacement, eps: float, n_params: int, *,
                                trace: float | None = None,
                                fractions: Sequence[float] = DEFAULT_GRID) -> dict:
    """Largest fraction p of the remaining weights one round can prune, by two rules.

    Quadratic-well model (module notes): the eps-sublevel set is an ellipsoid with radii
    ``r_i = sqrt(2 eps / lambda_i)``; pruning p moves w by ``R(p)``.

    - ``"lambda_max"`` (conservative proxy): the pruned point itself stays in the set
      along the sharpest direction, ``1/2 lambda_max R(p)^2 <= eps``. It ignores that
      retraining can move within the subspace, so it is a lower bound in spirit.
    - ``"gordon"``: by Gordon's escape theorem a random subspace of codimension ``p D``
      at distance ``R`` from the centre meets the ellipsoid roughly when
      ``p D <= sum_i r_i^2 / (R^2 + r_i^2) = sum_i 2 eps / (2 eps + lambda_i R^2)``
      (the squared Gaussian width of the ellipsoid seen from the pruned point; a
      direction with ``lambda_i <= 0`` counts 1). Only the top k eigenvalues are known;
      the other ``D - k`` are replaced by their mean
      ``(trace - sum_top_k) / (D - k)`` (clipped at 0). The summand is convex in
      ``lambda``, so by Jensen this under-counts the sum: the prediction errs on the
      small side when the tail is spread out, and it is exact for a flat tail. Without
      ``trace`` the tail counts as perfectly flat (1 each), an upper bound. The axial
      subspace magnitude pruning picks is not random; the theory matches random pruning
      and magnitude pruning does a little better (Paul et al.).

    Args:
        eigenvalues: the top k Hessian eigenvalues (any order), of the Hessian over the
            remaining prunable weights (masked Hessian).
        displacement: ``R`` as a function ``p -> R(p)`` (evaluated on ``fractions``) or
            a table ``(fractions, radii)`` (e.g. from :func:`pruning_displacement`),
            which replaces ``fractions``.
        eps: tolerated loss increase (> 0). How to pick it is the caller's call; the
            benchmark uses the smallest excess of the batch loss over the final loss among
            the dense run's checkpoints whose test accuracy does not match, i.e. the loss
            increase at which accuracy stops matching (``benchmarks/bench_sharpness.py``).
        n_params: D, the number of remaining (unpruned) prunable weights.
        trace: ``tr(H)`` over those weights (e.g. :func:`hessian_trace` with masks).
        fractions: the grid searched (increasing), default 0.001..0.999.
    Returns:
        ``{"lambda_max": p, "gordon": p}``: the largest grid fraction below which every
        grid fraction satisfies the rule (0.0 when none does).
    """
    lams = torch.as_tensor(eigenvalues, dtype=torch.float64).reshape(-1)
    if lams.numel() == 0:
        raise CurateError("eigenvalues is empty: pass at least the top eigenvalue")
    if not eps > 0:
        raise CurateError(f"eps (the tolerated loss increase) must be positive, got {eps!r}")
    if isinstance(n_params, bool) or not isinstance(n_params, int) or n_params < lams.numel():
        raise CurateError(f"n_params must be an integer >= the {lams.numel()} eigenvalues "
                          f"given, got {n_params!r}")
    if callable(displacement):
        grid = torch.as_tensor(list(fractions), dtype=torch.float64)
        radii = torch.as_tensor([float(displacement(float(p))) for p in grid],
                                dtype=torch.float64)
    else:
        try:
            grid, radii = (torch.as_tensor(t, dtype=torch.float64).reshape(-1)
                           for t in displacement)
        except (TypeError, ValueError):
            raise CurateError("displacement must be a function p -> R(p) or a table "
                              "(fractions, radii)") from None
    if grid.numel() == 0 or grid.numel() != radii.numel():
        raise CurateError(f"displacement table needs as many radii as fractions, got "
                          f"{grid.numel()} and {radii.numel()}")
    if bool((grid[1:] <= grid[:-1]).any()) or not (0 <= float(grid[0]) and grid[-1] <= 1):
        raise CurateError("fractions must increase within [0, 1]")

    lam_max = float(lams.max())
    lambda_ok = 0.5 * max(lam_max, 0.0) * radii ** 2 <= eps

    def width(lam: torch.Tensor) -> torch.Tensor:   # [k] x [P] -> [P]
        lam = lam.clamp(min=0.0)[:, None]
        return (2 * eps / (2 * eps + lam * radii[None, :] ** 2)).sum(0)

    covered = width(lams)
    rest = n_params - lams.numel()
    if rest:
        if trace is None:
            covered = covered + rest
        else:
            mean_rest = max((float(trace) - float(lams.clamp(min=0).sum())) / rest, 0.0)
            covered = covered + rest * width(torch.tensor([mean_rest], dtype=torch.float64))
    gordon_ok = grid * n_params <= covered
    return {"lambda_max": largest_prefix(grid, lambda_ok),
            "gordon": largest_prefix(grid, gordon_ok)}


def largest_prefix(grid: torch.Tensor, ok: torch.Tensor) -> float:
    """The largest grid value up to which ``ok`` holds throughout (0.0 if it fails first)."""
    failing = (~ok).nonzero()
    last = len(grid) - 1 if len(failing) == 0 else int(failing[0]) - 1
    return float(grid[last]) if last >= 0 else 0.0
