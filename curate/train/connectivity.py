"""Linear mode connectivity: the error along the straight line between two networks.

Two trained networks ``a`` and ``b`` of the same architecture are *linearly connected*
when the error stays near their endpoints' error everywhere on
``(1 - alpha) * a + alpha * b``. Frankle et al. (ICML 2020) measure it with the error
barrier: the largest error on the path minus the mean of the two endpoints' errors;
below about 2 points they call the pair stable (connected).

Every floating entry of the state_dict is interpolated, BatchNorm's running mean and
variance included (they are not re-estimated on the interpolated weights); integer
buffers (BatchNorm's ``num_batches_tracked``) are taken from ``state_a``.

    path = error_along_path(config, run_a.model.state_dict(), run_b.model.state_dict(), test)
    error_barrier(config, state_a, state_b, test)["barrier"]
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from curate.core.errors import CurateError
from curate.train.data import TensorData
from curate.train.models import make_model
from curate.train.pruning import apply_masks
from curate.train.trainer import TrainConfig, evaluate


def interpolate(state_a: dict, state_b: dict, alpha: float) -> dict:
    """``(1 - alpha) * state_a + alpha * state_b``, entry by entry (see the module notes)."""
    if state_a.keys() != state_b.keys():
        only = sorted(set(state_a) ^ set(state_b))
        raise CurateError(f"the two state_dicts differ in their entries (e.g. {only[0]!r}); "
                          "interpolation needs the same architecture")
    out = {}
    for name, a in state_a.items():
        b = state_b[name]
        if a.shape != b.shape:
            raise CurateError(f"{name!r} has shape {list(a.shape)} in state_a and "
                              f"{list(b.shape)} in state_b")
        out[name] = (torch.lerp(a.detach(), b.detach().to(a.dtype), float(alpha))
                     if a.is_floating_point() else a.detach().clone())
    return out


def _model(model_factory_or_config, data: TensorData) -> nn.Module:
    """A model to load states into: from a TrainConfig, a zoo name/factory or a module."""
    spec = model_factory_or_config
    if isinstance(spec, nn.Module):
        return copy.deepcopy(spec)
    if isinstance(spec, TrainConfig):
        return make_model(spec.model, data.input_shape, data.num_classes, **spec.model_params)
    if isinstance(spec, str) or callable(spec):
        return make_model(spec, data.input_shape, data.num_classes)
    raise CurateError(f"expected a TrainConfig, a model name or factory, or an nn.Module, got "
                      f"{type(spec).__name__}")


def error_along_path(model_factory_or_config, state_a: dict, state_b: dict, data: TensorData,
                     points: int = 11, masks=None) -> list[dict]:
    """Error and loss at ``points`` evenly spaced alphas from 0 (``state_a``) to 1 (``state_b``).

    Args:
        model_factory_or_config: a :class:`TrainConfig`, a zoo name or factory
            ``(input_shape, num_classes)``, or an ``nn.Module`` of the architecture.
        data: where the error is measured (callers use the test data).
        points: number of alphas, at least 2 (the endpoints).
        masks: optional masks applied to every interpolated network (as Paul et al.
            2023 mask the midpoint of two successive IMP solutions).
    Returns:
        ``[{"alpha", "error", "loss"}]``: error = 1 - accuracy, loss = mean cross-entropy.
    """
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise CurateError(f"points must be an integer >= 2 (the path's endpoints included), "
                          f"got {points!r}")
    model = _model(model_factory_or_config, data)
    path = []
    for i in range(points):
        alpha = i / (points - 1)
        state = interpolate(state_a, state_b, alpha)
        if masks:
            state = apply_masks(state, masks)
        model.load_state_dict(state)
        loss, accuracy = evaluate(model, data)
        path.append({"alpha": alpha, "error": 1.0 - accuracy, "loss": loss})
    return path


def barrier(path: list[dict]) -> dict:
    """The barrier of a path from :func:`error_along_path`.

    Returns ``{"barrier", "barrier_linear", "max_error", "endpoint_error_mean", "path"}``:
    ``barrier`` = max error - mean of the two endpoints' errors (Frankle et al. 2020;
    a path along which the error moves linearly from e0 to e1 has barrier |e0 - e1| / 2);
    ``barrier_linear`` = the largest excess over the straight line between the endpoints'
    errors, ``max(error(alpha) - ((1 - alpha) e0 + alpha e1))``, which is 0 for such a path.
    """
    e0, e1 = path[0]["error"], path[-1]["error"]
    max_error = max(p["error"] for p in path)
    linear = max(p["error"] - ((1 - p["alpha"]) * e0 + p["alpha"] * e1) for p in path)
    return {"barrier": max_error - (e0 + e1) / 2, "barrier_linear": linear,
            "max_error": max_error, "endpoint_error_mean": (e0 + e1) / 2, "path": path}


def error_barrier(model_factory_or_config, state_a: dict, state_b: dict, data: TensorData,
                  points: int = 11, masks=None) -> dict:
    """:func:`barrier` of :func:`error_along_path` (same arguments)."""
    return barrier(error_along_path(model_factory_or_config, state_a, state_b, data,
                                    points=points, masks=masks))
