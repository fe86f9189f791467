"""Pruning masks: which weights a sparse network keeps, chosen by magnitude or at random.

A mask set is ``{parameter name: float 0/1 tensor of the parameter's shape}`` (1 =
kept), the form :func:`curate.train.train` takes as ``masks=``. Only the weights of
``nn.Linear`` and ``nn.Conv*`` layers are pruned (not biases, not norm layers), as in
Frankle & Carbin (ICLR 2019) and open_lth.

    masks = magnitude_masks(run.model, 0.2)                    # level 1: 80% kept
    masks = magnitude_masks(run2.model, 0.2, masks=masks)      # level 2: 64% kept
    sparsity(masks)["overall"]    # {"kept", "total", "sparsity"}
"""

from __future__ import annotations

import torch
from torch import nn

from curate.core.errors import CurateError
from curate.core.filter import round_half_up

SCOPES = ("global", "layer")


def prunable_parameters(model) -> list[str]:
    """Names of the weights of ``nn.Linear`` / ``nn.Conv*`` layers, in model order.

    ``model`` is an ``nn.Module`` or a ``state_dict``; a state_dict carries no layer
    types, so there the prunable weights are the floating ``*.weight`` entries with at
    least 2 dimensions (Linear and Conv weights; norm-layer weights are 1-D).
    """
    if isinstance(model, nn.Module):
        return [f"{name}.weight" if name else "weight" for name, module in model.named_modules()
                if isinstance(module, (nn.Linear, nn.modules.conv._ConvNd))
                and module.weight is not None]
    return [name for name, value in model.items()
            if (name == "weight" or name.endswith(".weight")) and torch.is_tensor(value)
            and value.is_floating_point() and value.dim() >= 2]


def _weights(model_or_state) -> dict[str, torch.Tensor]:
    if isinstance(model_or_state, nn.Module):
        return {k: v.detach() for k, v in model_or_state.state_dict().items()}
    if not isinstance(model_or_state, dict):
        raise CurateError(f"expected an nn.Module or a state_dict, got "
                          f"{type(model_or_state).__name__}")
    return model_or_state


def _check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise CurateError(f"{name} must be a number in [0, 1] (the share of the remaining "
                          f"weights to prune), got {value!r}")
    return float(value)


def magnitude_masks(model_or_state, fraction: float, *, masks=None, layers=None,
                    scope: str = "global", output_fraction: float | None = None,
                    output_layer: str | None = None) -> dict[str, torch.Tensor]:
    """Prune ``fraction`` of the remaining (unmasked) weights with the smallest |w|.

    Args:
        model_or_state: an ``nn.Module`` or its ``state_dict`` (the weights to rank,
            e.g. the previous level's trained network).
        fraction: share of the currently kept weights to remove, in [0, 1]. The count is
            exact: ``round_half_up(fraction * kept)`` per pool.
        masks: the current masks (default: everything kept); the new masks only ever
            drop weights from them. Every key must be one of the chosen layers.
        layers: parameter names to prune (default :func:`prunable_parameters`).
        scope: ``"global"``, one magnitude threshold over all chosen layers (open_lth's
            ``sparse_global``), or ``"layer"``, each layer pruned by ``fraction`` alone.
        output_fraction: when given, the output layer is pruned at this rate on its own
            (Frankle & Carbin prune the output layer at half the rate) and left out of
            the global pool; None treats it like any other layer.
        output_layer: the output layer's name (default: the last chosen layer).
    Returns:
        ``{name: float32 0/1 tensor}`` for every chosen layer, in ``layers`` order.

    Ties in |w| are broken by position (layers in order, then flattened index: the
    earlier weight is pruned first), so the result is deterministic.
    """
    fraction = _check_fraction("fraction", fraction)
    if scope not in SCOPES:
        raise CurateError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    state = _weights(model_or_state)
    layers = list(prunable_parameters(model_or_state) if layers is None else layers)
    if not layers:
        raise CurateError("no layers to prune: the model has no Linear/Conv weights "
                          "(or layers=[] was given)")
    missing = [name for name in layers if name not in state]
    if missing:
        raise CurateError(f"cannot prune {missing[0]!r}: not a parameter of the model "
                          f"(prunable: {', '.join(prunable_parameters(model_or_state))})")
    masks = dict(masks or {})
    stray = [name for name in masks if name not in layers]
    if stray:
        raise CurateError(f"masks has {stray[0]!r}, which is not among the layers being "
                          f"pruned ({', '.join(layers)})")
    current = {}
    for name in layers:
        weight = state[name]
        mask = masks.get(name)
        mask = torch.ones(weight.shape) if mask is None else torch.as_tensor(mask).float()
        if mask.shape != weight.shape:
            raise CurateError(f"mask for {name!r} has shape {list(mask.shape)}, the weight "
                              f"{list(weight.shape)}")
        current[name] = mask

    pools: list[tuple[list[str], float]] = []
    rest = list(layers)
    if output_fraction is not None:
        output_fraction = _check_fraction("output_fraction", output_fraction)
        output_layer = layers[-1] if output_layer is None else output_layer
        if output_layer not in layers:
            raise CurateError(f"output_layer {output_layer!r} is not among the layers being "
                              f"pruned ({', '.join(layers)})")
        rest.remove(output_layer)
        pools.append(([output_layer], output_fraction))
    if scope == "layer":
        pools[:0] = [([name], fraction) for name in rest]
    elif rest:
        pools.insert(0, (rest, fraction))

    new = {name: mask.clone() for name, mask in current.items()}
    for names, rate in pools:
        _prune_pool(names, rate, state, current, new)
    return {name: new[name] for name in layers}


def _prune_pool(names, rate, state, current, new) -> None:
    """Zero ``round_half_up(rate * kept)`` of the smallest kept weights of ``names`` in ``new``."""
    # Already-pruned weights rank last (+inf) so they are never counted again.
    scores = torch.cat([torch.where(current[n].flatten() > 0,
                                    state[n].detach().abs().flatten().double(),
                                    torch.tensor(float("inf"), dtype=torch.float64))
                        for n in names])
    kept = int(sum(int((current[n] > 0).sum()) for n in names))
    count = round_half_up(rate * kept)
    if count == 0:
        return
    order = torch.sort(scores, stable=True).indices[:count]
    flat = torch.cat([new[n].flatten() for n in names])
    flat[order] = 0.0
    start = 0
    for n in names:
        size = new[n].numel()
        new[n] = flat[start:start + size].reshape(new[n].shape).clone()
        start += size


def random_masks(masks: dict, seed: int) -> dict[str, torch.Tensor]:
    """Masks with the same number of kept weights per layer as ``masks``, placed at random.

    The "random pruning" control. Positions are drawn by a ``torch.Generator`` seeded
    with ``seed``, layer by layer in ``masks`` order, so the result is deterministic.
    """
    generator = torch.Generator().manual_seed(int(seed))
    out = {}
    for name, mask in masks.items():
        mask = torch.as_tensor(mask)
        kept = int((mask > 0).sum())
        flat = torch.zeros(mask.numel())
        flat[torch.randperm(mask.numel(), generator=generator)[:kept]] = 1.0
        out[name] = flat.reshape(mask.shape)
    return out


def sparsity(masks: dict) -> dict:
    """How much of ``masks`` is pruned.

    Returns ``{"overall": {"kept", "total", "sparsity"}, "layers": [{"layer", "kept",
    "total", "sparsity"}, ...]}`` with ``layers`` in ``masks`` order (a list of rows,
    ready for ``pa.Table.from_pylist``); ``sparsity`` = 1 - kept / total.
    """
    rows = []
    for name, mask in masks.items():
        mask = torch.as_tensor(mask)
        kept, total = int((mask > 0).sum()), mask.numel()
        rows.append({"layer": name, "kept": kept, "total": total,
                     "sparsity": 1 - kept / total if total else 0.0})
    kept, total = sum(r["kept"] for r in rows), sum(r["total"] for r in rows)
    return {"overall": {"kept": kept, "total": total,
                        "sparsity": 1 - kept / total if total else 0.0},
            "layers": rows}


def apply_masks(state: dict, masks: dict) -> dict:
    """A copy of ``state`` (a state_dict) with the masked weights set to zero."""
    missing = [name for name in masks if name not in state]
    if missing:
        raise CurateError(f"mask for {missing[0]!r}, which the state_dict does not have")
    out = {}
    for name, value in state.items():
        value = value.detach().clone() if torch.is_tensor(value) else value
        if name in masks:
            mask = torch.as_tensor(masks[name])
            if mask.shape != value.shape:
                raise CurateError(f"mask for {name!r} has shape {list(mask.shape)}, the "
                                  f"weight {list(value.shape)}")
            value = value * mask.to(value.dtype)
        out[name] = value
    return out
