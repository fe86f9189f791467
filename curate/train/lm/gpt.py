"""A small GPT for the harness: pre-LN transformer blocks, causal scaled-dot-product
attention, learned positions and tied input/output embeddings (GPT-2's layout).

Registered in the zoo as ``gpt``: ``make_model("gpt", (context,), vocab_size,
n_layer=2, n_head=4, n_embd=128)`` maps ids ``[B, T]`` (T <= context) to logits
``[B, T, vocab_size]``. ``size`` picks a preset instead (parameter counts with a
256-byte vocabulary and context 256):

======  =========================  ==========
size    layers x heads x width     parameters
======  =========================  ==========
xs      2 x 4 x 128                0.46M
s       4 x 4 x 256                3.3M
m       6 x 6 x 384                10.8M
======  =========================  ==========
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from curate.core.errors import CurateError
from curate.core.registry import register_model

SIZES = {"xs": (2, 4, 128), "s": (4, 4, 256), "m": (6, 6, 384)}


class CausalSelfAttention(nn.Module):
    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.n_head = n_head
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.proj = nn.Linear(n_embd, n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2)
                   for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(b, t, c))


class Block(nn.Module):
    """``x + attn(ln(x))`` then ``x + mlp(ln(x))``; the MLP is 4x wide with GELU."""

    def __init__(self, n_embd: int, n_head: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head)
        self.ln2 = nn.LayerNorm(n_embd)
        self.fc = nn.Linear(n_embd, 4 * n_embd, bias=False)
        self.proj = nn.Linear(4 * n_embd, n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.proj(F.gelu(self.fc(self.ln2(x))))


@register_model(name="gpt")
class GPT(nn.Module):
    """Decoder-only transformer over ``vocab_size`` ids with a ``context``-token window.

    Weights are initialised as GPT-2's: normal(0, 0.02), the residual output
    projections scaled by ``1 / sqrt(2 * n_layer)``.
    """

    def __init__(self, input_shape: tuple, num_classes: int, n_layer: int | None = None,
                 n_head: int | None = None, n_embd: int | None = None,
                 size: str | None = None):
        super().__init__()
        n_layer, n_head, n_embd = _shape(size, n_layer, n_head, n_embd)
        if len(input_shape) != 1:
            raise CurateError(f"gpt takes input_shape (context,), got {list(input_shape)}")
        self.context = int(input_shape[0])
        self.vocab_size = int(num_classes)
        self.wte = nn.Embedding(self.vocab_size, n_embd)
        self.wpe = nn.Embedding(self.context, n_embd)
        self.blocks = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, self.vocab_size, bias=False)
        self.head.weight = self.wte.weight  # tied
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        if t > self.context:
            raise CurateError(f"gpt: {t} tokens exceed the context of {self.context}")
        x = self.wte(idx) + self.wpe(torch.arange(t, device=idx.device))
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


def _shape(size, n_layer, n_head, n_embd) -> tuple[int, int, int]:
    if size is not None:
        if size not in SIZES:
            raise CurateError(f"unknown gpt size {size!r}; known: {', '.join(SIZES)}")
        if any(v is not None for v in (n_layer, n_head, n_embd)):
            raise CurateError("gpt: give size or n_layer/n_head/n_embd, not both")
        return SIZES[size]
    n_layer, n_head, n_embd = (v if v is not None else d
                               for v, d in zip((n_layer, n_head, n_embd), SIZES["xs"]))
    if n_embd % n_head:
        raise CurateError(f"gpt: n_embd {n_embd} is not a multiple of n_head {n_head}")
    return int(n_layer), int(n_head), int(n_embd)
