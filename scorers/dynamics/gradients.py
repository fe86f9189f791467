"""Per-example quantities of a model over a whole dataset, in batched passes.

* :func:`grad_norms` — GraNd's ``||grad_w loss(f_w(x), y)||_2`` for every example,
  with ``torch.func`` (``functional_call`` + ``vmap(grad)``): one vectorised
  backward per chunk instead of one backward per example.
* :func:`output_layer` finds the layer that produces the logits, for "last layer"
  gradients and for penultimate-layer embeddings (:func:`embeddings`).
* :func:`logits` runs the model over the data in chunks.

All run the model as it is (call ``model.eval()`` first for batch-norm statistics
and dropout, as the scorers do) and never change its parameters.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap


def output_layer(model: torch.nn.Module, example: torch.Tensor) -> tuple[str, torch.nn.Module]:
    """The (name, module) of the last module with parameters to run in a forward pass.

    Found by execution order on one example (``example``: ``[1, ...]``), so it is the
    layer producing the logits whatever order the modules were declared in.
    """
    order: list[str] = []
    names = {m: n for n, m in model.named_modules()}
    hooks = [m.register_forward_hook(lambda mod, *_: order.append(names[mod]))
             for m in model.modules() if any(True for _ in m.parameters(recurse=False))]
    try:
        with torch.no_grad():
            model(example)
    finally:
        for h in hooks:
            h.remove()
    if not order:
        raise ValueError("the model has no layer with parameters")
    return order[-1], model.get_submodule(order[-1])


def _chunks(n: int, size: int):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


@torch.no_grad()
def logits(model: torch.nn.Module, x: torch.Tensor, chunk_size: int = 1024) -> torch.Tensor:
    """``[N, ...] -> [N, C]`` logits, in chunks."""
    return torch.cat([model(x[s]) for s in _chunks(len(x), chunk_size)])


@torch.no_grad()
def embeddings(model: torch.nn.Module, x: torch.Tensor, chunk_size: int = 1024) -> torch.Tensor:
    """``[N, ...] -> [N, D]`` inputs of the output layer (the penultimate representation)."""
    _, layer = output_layer(model, x[:1])
    captured: list[torch.Tensor] = []
    hook = layer.register_forward_hook(lambda mod, args, out: captured.append(args[0].flatten(1)))
    try:
        for s in _chunks(len(x), chunk_size):
            model(x[s])
    finally:
        hook.remove()
    return torch.cat(captured)


def grad_norms(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, *,
               params: str = "all", chunk_size: int = 128) -> torch.Tensor:
    """Per-example gradient norms of the cross-entropy, ``[N, ...], [N] -> [N]``.

    Args:
        params: ``"all"`` (every trainable parameter) or ``"last"`` (the output
            layer's, see :func:`output_layer`).
        chunk_size: examples per vectorised call (bounds memory: the per-example
            gradients of a chunk are held at once).
    """
    if params not in ("all", "last"):
        raise ValueError(f"params must be 'all' or 'last', not {params!r}")
    named = {n: p.detach() for n, p in model.named_parameters() if p.requires_grad}
    if params == "last":
        prefix, _ = output_layer(model, x[:1])
        chosen = {n: p for n, p in named.items() if n.rpartition(".")[0] == prefix}
    else:
        chosen = named
    fixed = {n: p.detach() for n, p in model.named_parameters() if n not in chosen}
    fixed.update(dict(model.named_buffers()))

    def loss(weights, xi, yi):
        out = functional_call(model, {**fixed, **weights}, (xi[None],))
        return F.cross_entropy(out, yi[None])

    per_example = vmap(grad(loss), in_dims=(None, 0, 0))
    norms = []
    for s in _chunks(len(x), chunk_size):
        grads = per_example(chosen, x[s], y[s])
        squared = sum(g.flatten(1).pow(2).sum(dim=1) for g in grads.values())
        norms.append(squared.sqrt())
    return torch.cat(norms)
