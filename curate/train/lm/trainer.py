"""Train a language model on a token pool: :func:`train_lm`.

The loop reads batches of ``[batch_size, context + 1]`` ids straight from the pool's
memory map, in a seeded shuffled order of its sequences (a new permutation each epoch,
so a budget larger than the pool repeats it: ``epochs`` in the result says how many
times). It trains with AdamW (weight decay on matrices only), a linear warm-up and a
cosine decay to ``min_lr_factor * lr``, gradient clipping, and bf16 autocast on request
(or by default where it is fast, see :func:`bf16_supported`).

Budget: ``tokens`` training tokens, i.e. ``ceil(tokens / (batch_size * context))``
steps. Every ``eval_every`` steps (and at the end) it measures, on every held-out pool,
the mean loss per token (nats) and bits per byte: the summed loss over the predicted
tokens / ln 2 / their UTF-8 bytes (special tokens count 0 bytes), which compares models
with different tokenizers.

Determinism: on CPU a run is bit-for-bit reproducible for a given seed, pool, config and
thread count (the global RNG is seeded inside ``fork_rng`` and deterministic algorithms
are on, as in :func:`curate.train.train`).
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from curate.core.errors import CurateError
from curate.train.lm.pool import TokenPool
from curate.train.models import make_model
from curate.train.optim import lr_schedule
from curate.train.trainer import seeded

PRECISIONS = ("auto", "fp32", "bf16")
EVAL_BATCH = 32


@dataclass
class LMConfig:
    """How to train a language model; defaults give the 0.46M-parameter ``xs`` GPT.

    ``tokens`` is the training budget. ``eval_every`` (steps) adds history rows; the final
    step always gets one. ``eval_tokens`` caps the tokens evaluated per held-out pool
    (evenly spaced sequences; None: all). ``precision``: ``"bf16"`` autocast, ``"fp32"``,
    or ``"auto"`` (bf16 where it is fast: a GPU that supports it, a CPU with AMX).
    ``device``: ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (a GPU when there is one).
    """

    model: str = "gpt"
    model_params: dict = field(default_factory=dict)
    context: int = 256
    batch_size: int = 16
    tokens: int = 1_000_000
    lr: float = 2e-3
    min_lr_factor: float = 0.1
    warmup_steps: int | None = None
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float | None = 1.0
    eval_every: int | None = None
    eval_tokens: int | None = None
    precision: str = "auto"
    compile: bool = False
    device: str = "cpu"

    def __post_init__(self):
        for name in ("context", "batch_size", "tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise CurateError(f"{name} must be a positive integer, got "
                                  f"{getattr(self, name)!r}")
        if self.precision not in PRECISIONS:
            raise CurateError(f"precision must be one of {', '.join(PRECISIONS)}, got "
                              f"{self.precision!r}")
        self.betas = tuple(self.betas)
        with torch.device("meta"):  # checks the model and its parameters, allocating nothing
            build_lm(self, 257)

    @property
    def steps(self) -> int:
        return math.ceil(self.tokens / (self.batch_size * self.context))

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class LMRun:
    """One training run: ``history`` rows (step, tokens, lr, train_loss, seconds and
    ``<slice>_loss`` / ``<slice>_bpb`` per held-out pool), ``final`` (the last row plus
    ``epochs``, ``parameters``, ``tokens_per_second`` measured after the first step, and
    ``precision`` used), and the trained weights in ``state`` (on the CPU)."""

    seed: int
    history: list[dict]
    final: dict
    state: dict


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CurateError(f"device {device!r} asked for, but torch sees no GPU")
    return dev


def bf16_supported(device: torch.device) -> bool:
    """Whether ``precision="auto"`` uses bf16 autocast: on a GPU that supports it, or on a
    CPU with AMX. A CPU with only AVX512-BF16 runs bf16 too (``precision="bf16"``), but
    measured on one such Xeon a small GPT trained at half its fp32 speed
    (``benchmarks/bench_lm_loop.py``), so ``auto`` keeps fp32 there."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:
        flags = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return False
    return "amx_bf16" in flags


def build_lm(config: LMConfig, vocab_size: int) -> torch.nn.Module:
    return make_model(config.model, (config.context,), vocab_size, **config.model_params)


def train_lm(config: LMConfig, train: TokenPool, heldout: dict[str, TokenPool] | None = None,
             *, seed: int = 0, progress: bool = False) -> LMRun:
    """Train from scratch on ``train`` for ``config.tokens`` tokens; evaluate on ``heldout``
    (name -> pool, packed with the same tokenizer)."""
    heldout = heldout or {}
    meta = train.meta
    for name, pool in heldout.items():
        if pool.meta["tokenizer"] != meta["tokenizer"]:
            raise CurateError(f"held-out pool {name!r} was packed with another tokenizer")
    n_seq = train.n_sequences(config.context)
    if n_seq < 1:
        raise CurateError(f"training pool has {train.n_tokens} tokens: fewer than one "
                          f"sequence of context {config.context} + 1")
    device = resolve_device(config.device)
    bf16 = config.precision == "bf16" or (config.precision == "auto" and bf16_supported(device))
    with seeded(seed):
        model = build_lm(config, int(meta["vocab_size"])).to(device)
        step_fn = _train_step(model, config, device, bf16)
        optimizer = _adamw(model, config)
        lr_at = _schedule(config)
        order = _Order(n_seq, config.batch_size, seed)
        evals = {name: _Evaluator(pool, config, device, bf16) for name, pool in heldout.items()}
        history, losses, train_seconds, first_step = [], [], 0.0, 0.0
        start = time.perf_counter()
        bar = _progress(config.steps, progress)
        for step in range(config.steps):
            t0 = time.perf_counter()
            for group in optimizer.param_groups:
                group["lr"] = lr_at(step)
            batch = torch.from_numpy(train.sequences(order.batch(step), config.context))
            losses.append(step_fn(batch.to(device), optimizer))
            elapsed = time.perf_counter() - t0
            if step == 0:
                first_step = elapsed
            else:
                train_seconds += elapsed
            if bar is not None:
                bar.update(1)
            done = step + 1
            if done == config.steps or (config.eval_every and done % config.eval_every == 0):
                row = {"step": done, "tokens": done * config.batch_size * config.context,
                       "lr": lr_at(step), "train_loss": float(np.mean(losses)),
                       "seconds": time.perf_counter() - start}
                for name, ev in evals.items():
                    loss, bpb = ev(model)
                    row[f"{name}_loss"], row[f"{name}_bpb"] = loss, bpb
                history.append(row)
                losses = []
        if bar is not None:
            bar.close()
    trained = config.steps * config.batch_size * config.context
    final = {**history[-1], "epochs": trained / (n_seq * config.context),
             "parameters": sum(p.numel() for p in model.parameters()),
             "first_step_seconds": first_step,
             "tokens_per_second": ((trained - config.batch_size * config.context)
                                   / train_seconds if train_seconds else None),
             "precision": "bf16" if bf16 else "fp32"}
    state = {k: v.detach().cpu().clone() for k, v in _unwrapped(model).state_dict().items()}
    return LMRun(seed=seed, history=history, final=final, state=state)


def evaluate_lm(model, pool: TokenPool, config: LMConfig) -> tuple[float, float]:
    """``(loss per token in nats, bits per byte)`` of ``model`` on ``pool``."""
    device = next(model.parameters()).device
    bf16 = config.precision == "bf16" or (config.precision == "auto" and bf16_supported(device))
    return _Evaluator(pool, config, device, bf16)(model)


class _Evaluator:
    """Loss and bits per byte on one held-out pool (fixed sequences, no gradients)."""

    def __init__(self, pool: TokenPool, config: LMConfig, device, bf16: bool):
        n = pool.n_sequences(config.context)
        if n < 1:
            raise CurateError(f"held-out pool {pool.meta['name']!r} is shorter than one "
                              f"sequence of {config.context} + 1 tokens")
        if config.eval_tokens is not None:
            keep = max(1, min(n, config.eval_tokens // config.context))
            self.index = np.linspace(0, n - 1, keep).round().astype(np.int64)
        else:
            self.index = np.arange(n)
        self.pool, self.context, self.device, self.bf16 = pool, config.context, device, bf16
        self.token_bytes = torch.from_numpy(pool.token_bytes)

    @torch.no_grad()
    def __call__(self, model) -> tuple[float, float]:
        was_training = model.training
        model.eval()
        total, count, nbytes = 0.0, 0, 0
        for start in range(0, len(self.index), EVAL_BATCH):
            seq = torch.from_numpy(self.pool.sequences(self.index[start:start + EVAL_BATCH],
                                                       self.context))
            x, y = seq[:, :-1].to(self.device), seq[:, 1:]
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                logits = model(x)
            loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten().to(self.device),
                                   reduction="sum")
            total += float(loss)
            count += y.numel()
            nbytes += int(self.token_bytes[y].sum())
        model.train(was_training)
        return total / count, total / math.log(2) / max(nbytes, 1)


class _Order:
    """The sequence indices of each step: epoch after epoch of seeded permutations."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.batch_size = n, batch_size
        self.rng = np.random.default_rng(seed)
        self.order = np.zeros(0, dtype=np.int64)
        self.offset = 0  # index in the whole run of order[0]

    def batch(self, step: int) -> np.ndarray:
        start = step * self.batch_size
        while self.offset + len(self.order) < start + self.batch_size:
            used = start - self.offset
            self.order = np.concatenate([self.order[used:], self.rng.permutation(self.n)])
            self.offset = start
        return self.order[start - self.offset:start - self.offset + self.batch_size]


def _train_step(model, config: LMConfig, device, bf16: bool):
    def loss_of(x, y):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = model(x)
        return F.cross_entropy(logits.float().flatten(0, 1), y.flatten())

    forward = torch.compile(loss_of) if config.compile else loss_of

    def step(batch, optimizer) -> float:
        loss = forward(batch[:, :-1], batch[:, 1:])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        return float(loss.detach())

    return step


def _adamw(model, config: LMConfig) -> torch.optim.AdamW:
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2],
               "weight_decay": config.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas)


def _schedule(config: LMConfig):
    warmup = (config.warmup_steps if config.warmup_steps is not None
              else max(1, config.steps // 50))
    spec = SimpleNamespace(lr=config.lr, schedule="cosine",
                           schedule_params={"warmup_steps": warmup,
                                            "min_factor": config.min_lr_factor})
    return lr_schedule(spec, config.steps, config.steps)


def _unwrapped(model):
    return getattr(model, "_orig_mod", model)


def _progress(total: int, enabled: bool):
    """A progress bar, or None: even a disabled tqdm bar makes a multiprocessing lock,
    which a spawned worker would leave to the resource tracker as a leaked semaphore."""
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="train", unit="step")
