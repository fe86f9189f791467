"""Train one classifier on in-memory tensors: :func:`train`.

The loop indexes the input tensors with a shuffled permutation per epoch, drawn
from a ``torch.Generator`` seeded with the run's seed (no DataLoader, no
per-example Python). Every step computes per-example cross-entropy losses
(``reduction="none"``), which callbacks receive, and backpropagates their mean.

Determinism: on CPU a run is bit-for-bit reproducible for a given seed, data,
config and thread count (``torch.use_deterministic_algorithms`` is on during the
run). The global torch RNG is seeded inside ``torch.random.fork_rng``, so the
caller's RNG state is left as it was.

Budgets are explicit: exactly one of ``steps`` or ``epochs``. An epoch is one
pass over the training positions in batches of ``batch_size`` (the last batch may
be smaller), i.e. ``ceil(n / batch_size)`` steps.

Input standardization (``TrainConfig(standardize=True)``), as a scikit-learn
``make_pipeline(StandardScaler(), model)`` does it: the per-feature mean and
standard deviation of the *training* rows (``positions``, each row once) are fitted
before training and become part of the model (:func:`standardize_inputs`: two
buffers, ``input_mean`` and ``input_scale``, in its ``state_dict``, and a forward
pre-hook computing ``(x - input_mean) / input_scale``). The returned model, its
checkpoints and the evaluation on test data therefore all take raw inputs, and test
rows are transformed with the training rows' statistics. A constant feature is
centred, not divided by 0. Features on raw scales (counts, pixel values 0-255,
attributes in the thousands) otherwise saturate the softmax from the first steps
and the training-dynamics scores degenerate.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from curate.core.errors import CurateError
from curate.core.validate import boolean
from curate.train.data import TensorData
from curate.train.models import make_model
from curate.train.optim import OPTIMIZERS, check_schedule, lr_schedule, make_optimizer

EVAL_BATCH_SIZE = 2048
#: The buffers a standardized model holds (see :func:`standardize_inputs`).
STANDARDIZE_KEYS = ("input_mean", "input_scale")


@dataclass
class TrainConfig:
    """How to train: model, optimizer, schedule, batch size and budget.

    ``model`` is a zoo name (see :mod:`curate.train.models`) or a factory
    ``(input_shape, num_classes, **model_params) -> nn.Module``. Exactly one of
    ``steps`` / ``epochs`` is set. ``eval_every`` (steps) adds history rows; the
    final step always gets one. ``checkpoint_steps`` are step counts (0 = the
    initialisation) at which the state_dict is copied. ``standardize`` (default
    False here; the training-dynamics scorers turn it on) standardizes every input
    feature with the mean and std of the training rows (see the module notes).
    """

    model: str | Callable = "mlp"
    model_params: dict = field(default_factory=dict)
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    schedule_params: dict = field(default_factory=dict)
    batch_size: int = 128
    steps: int | None = None
    epochs: int | None = None
    eval_every: int | None = None
    checkpoint_steps: tuple[int, ...] = ()
    standardize: bool = False

    def __post_init__(self):
        self.checkpoint_steps = tuple(int(s) for s in self.checkpoint_steps)
        self.standardize = boolean("TrainConfig", "standardize", self.standardize)
        if (self.steps is None) == (self.epochs is None):
            raise CurateError("set exactly one budget: steps=... or epochs=... (they answer "
                              "different questions, so neither is a default)")
        for name in ("steps", "epochs", "batch_size", "eval_every"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise CurateError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise CurateError(f"lr must be positive, got {self.lr!r}")
        if self.nesterov and not (self.optimizer == "sgd" and self.momentum > 0):
            raise CurateError("nesterov needs optimizer='sgd' with momentum > 0")
        if self.optimizer not in OPTIMIZERS:
            raise CurateError(f"unknown optimizer {self.optimizer!r}; known: "
                              f"{', '.join(OPTIMIZERS)}")
        check_schedule(self.schedule, self.schedule_params)

    def total_steps(self, n_examples: int) -> int:
        """Optimizer steps this budget means for ``n_examples`` training examples."""
        return self.steps if self.steps is not None else self.epochs * self.steps_per_epoch(
            n_examples)

    def steps_per_epoch(self, n_examples: int) -> int:
        return math.ceil(n_examples / self.batch_size)

    def budget(self) -> dict:
        """The budget as stated: ``{"steps": ..., "epochs": ...}`` (one of them None)."""
        return {"steps": self.steps, "epochs": self.epochs}


@dataclass
class RunResult:
    """One training run.

    ``history``: rows ``{step, epoch, train_loss, test_loss, test_acc, seconds}`` at
    every ``eval_every`` steps and at the end; ``train_loss`` is the mean minibatch
    loss since the previous row, ``epoch`` is fractional (steps / steps per epoch),
    ``seconds`` the training time so far, evaluation excluded.
    ``final``: ``test_acc``, ``test_loss``, ``train_acc``, ``train_loss`` (the final
    model evaluated on the training positions), ``steps``, ``epochs``, ``examples``
    (examples seen), ``seconds``. Test metrics are None without test data.
    ``checkpoints``: step -> state_dict copy. ``budget``: as stated in the config.
    ``standardization``: ``{"mean", "scale"}`` (float32 tensors of the input shape)
    the model standardizes its inputs with, or None without ``standardize``.
    """

    seed: int
    model: torch.nn.Module
    history: list[dict]
    final: dict
    checkpoints: dict[int, dict]
    callbacks: list
    budget: dict = field(default_factory=dict)
    standardization: dict | None = None


def _standardize_hook(module: torch.nn.Module, args: tuple) -> tuple:
    return ((args[0] - module.input_mean) / module.input_scale, *args[1:])


def standardize_inputs(model: torch.nn.Module, mean: torch.Tensor,
                       scale: torch.Tensor) -> torch.nn.Module:
    """Make ``model`` standardize its input: ``forward(x)`` sees ``(x - mean) / scale``.

    ``mean`` and ``scale`` (``[*input_shape]``, broadcast over the batch) become the
    buffers ``input_mean`` and ``input_scale``, so they are saved in the
    ``state_dict``, copied with the model and loaded with ``load_state_dict`` (a model
    prepared this way with any placeholder values takes a standardized model's
    state). Returns ``model``, changed in place.
    """
    clash = [k for k in STANDARDIZE_KEYS if hasattr(model, k)]
    if clash:
        raise CurateError(f"the model already has an attribute {clash[0]!r}; input "
                          "standardization needs that name (use standardize=False)")
    model.register_buffer("input_mean", torch.as_tensor(mean, dtype=torch.float32).clone())
    model.register_buffer("input_scale", torch.as_tensor(scale, dtype=torch.float32).clone())
    model.register_forward_pre_hook(_standardize_hook)
    return model


def _load_initial_state(model: torch.nn.Module, state: dict, standardize: bool) -> None:
    """Load ``state``; its standardization, if it has one, replaces the fitted one."""
    carries = [k for k in STANDARDIZE_KEYS if k in state]
    if carries and not standardize:
        raise CurateError("initial_state comes from a standardized model (it holds "
                          "input_mean and input_scale) but the config has standardize=False")
    if standardize and not carries:
        # Weights only (e.g. an initialisation): keep the statistics fitted on this run's rows.
        state = {**state, **{k: getattr(model, k) for k in STANDARDIZE_KEYS}}
    model.load_state_dict(state)


@torch.no_grad()
def evaluate(model: torch.nn.Module, data: TensorData, positions=None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` (put in eval mode, then restored)."""
    x, y = (data.x, data.y) if positions is None else (data.x[positions], data.y[positions])
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(y), EVAL_BATCH_SIZE):
        logits = model(x[start:start + EVAL_BATCH_SIZE])
        target = y[start:start + EVAL_BATCH_SIZE]
        loss_sum += F.cross_entropy(logits, target, reduction="sum").item()
        correct += (logits.argmax(1) == target).sum().item()
    model.train(was_training)
    return loss_sum / len(y), correct / len(y)


@contextlib.contextmanager
def seeded(seed: int):
    """Seed torch's global RNG and turn on deterministic algorithms; undo both after.

    Deterministic mode would also fill every new tensor with NaN (a debugging aid for
    reads of uninitialised memory, which the loop does not do); that costs a fill
    per allocation, so it is switched off for the run.
    """
    import torch.utils.deterministic as det

    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(),
                det.fill_uninitialized_memory)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=True)
        det.fill_uninitialized_memory = False
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
            det.fill_uninitialized_memory = previous[2]


def _positions(positions, n: int) -> torch.Tensor:
    if positions is None:
        return torch.arange(n)
    pos = torch.as_tensor(positions, dtype=torch.long).reshape(-1)
    if len(pos) == 0:
        raise CurateError("positions is empty: nothing to train on")
    if pos.min() < 0 or pos.max() >= n:
        raise CurateError(f"positions must be in [0, {n}), got {pos.min()}..{pos.max()}")
    return pos


def _masked_parameters(model: torch.nn.Module, masks) -> list:
    """``[(parameter, mask)]`` for ``masks`` (name -> tensor), checked against the model."""
    if not masks:
        return []
    params = dict(model.named_parameters())
    out = []
    for name, mask in masks.items():
        if name not in params:
            raise CurateError(f"mask for unknown parameter {name!r}; the model has "
                              f"{', '.join(params)}")
        mask = torch.as_tensor(mask, dtype=params[name].dtype)
        if mask.shape != params[name].shape:
            raise CurateError(f"mask for {name!r} has shape {list(mask.shape)}, the "
                              f"parameter {list(params[name].shape)}")
        out.append((params[name], mask))
    return out


def train(config: TrainConfig, train_data: TensorData, test_data: TensorData | None = None, *,
          seed: int = 0, callbacks=(), positions=None, batches=None, initial_state=None,
          masks=None, schedule_window: tuple[int, int] | None = None) -> RunResult:
    """Train ``config.model`` on ``train_data`` (or its ``positions``) with ``seed``.

    Args:
        positions: optional positions into ``train_data`` to train on (repeats allowed);
            callbacks still see positions into ``train_data``.
        batches: optional index schedule, ``batches(step) -> positions`` into
            ``train_data`` of that step's batch (e.g. a ``filters.curriculum`` schedule),
            used instead of the shuffled epochs. An epoch still counts
            ``ceil(len(positions) / batch_size)`` steps (for an ``epochs`` budget and
            ``on_epoch_end``), and the final train metrics use ``positions``.
        callbacks: :class:`curate.train.Callback` instances, called in order.
        initial_state: optional ``state_dict`` loaded into the freshly built model
            (e.g. a rewind checkpoint); the seed then only drives the data order. With
            ``config.standardize`` a state from a standardized run brings its own
            ``input_mean`` / ``input_scale`` (the weights were trained for them); a
            state without them (weights only) keeps the statistics fitted here.
        masks: optional ``{parameter name: 0/1 tensor of its shape}``. Masked weights
            are zeroed before training, their gradients are zeroed before every
            optimizer step (so momentum and Adam moments stay zero there) and the
            weights are re-zeroed after it (weight decay cannot revive them).
        schedule_window: ``(start, total)``: the learning rate at step s is that of a
            ``total``-step run at step ``start + s`` (default: ``(0, budget)``). IMP's
            phases use it to share one T-step schedule: the 0..k phase takes ``(0, T)``,
            a run rewound to step k takes ``(k, T)`` for its ``T - k`` steps.
    Returns:
        a :class:`RunResult`; the budget is in ``final`` (steps, epochs) and ``budget``.
    """
    callbacks = list(callbacks)
    pos = _positions(positions, len(train_data))
    n, batch_size = len(pos), config.batch_size
    steps_per_epoch = config.steps_per_epoch(n)
    total_steps = config.total_steps(n)
    if schedule_window is not None and not 0 <= schedule_window[0] < schedule_window[1]:
        raise CurateError(f"schedule_window must be (start, total) with 0 <= start < total, "
                          f"got {schedule_window}")
    bad = [s for s in config.checkpoint_steps if not 0 <= s <= total_steps]
    if bad:
        raise CurateError(f"checkpoint step {bad[0]} is outside the run's 0..{total_steps} steps")
    x, y = train_data.x, train_data.y

    with seeded(seed):
        model = make_model(config.model, train_data.input_shape, train_data.num_classes,
                           **config.model_params)
        if config.standardize:
            standardize_inputs(model, *train_data.standardization(positions))
        if initial_state is not None:
            _load_initial_state(model, initial_state, config.standardize)
        masked = _masked_parameters(model, masks)
        with torch.no_grad():
            for param, mask in masked:
                param.mul_(mask)
        model.train()
        optimizer = make_optimizer(config, model.parameters())
        start, span = schedule_window or (0, total_steps)
        schedule = lr_schedule(config, span, steps_per_epoch)

        def lr_at(step: int) -> float:
            return schedule(start + step)

        order_rng = torch.Generator().manual_seed(seed)
        checkpoints = {0: copy.deepcopy(model.state_dict())} if 0 in config.checkpoint_steps \
            else {}
        history: list[dict] = []
        for cb in callbacks:
            cb.on_train_begin(len(train_data), train_data.num_classes)

        step, epoch, examples, seconds = 0, 0, 0, 0.0
        loss_sum, loss_count = 0.0, 0
        started = time.perf_counter()
        while step < total_steps:
            if batches is None:
                epoch_batches = pos[torch.randperm(n, generator=order_rng)].split(batch_size)
            else:
                # Past the budget yield None: the loop breaks on it, as after a partial epoch.
                epoch_batches = (torch.as_tensor(batches(s), dtype=torch.long)
                                 if s < total_steps else None
                                 for s in range(step, step + steps_per_epoch))
            for indices in epoch_batches:
                if step == total_steps:
                    break
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(step)
                targets = y[indices]
                logits = model(x[indices])
                losses = F.cross_entropy(logits, targets, reduction="none")
                loss = losses.mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                for param, mask in masked:
                    param.grad.mul_(mask)
                optimizer.step()
                with torch.no_grad():
                    for param, mask in masked:
                        param.mul_(mask)
                for cb in callbacks:
                    cb.on_batch(indices, logits.detach(), targets, losses.detach(), step)
                step += 1
                examples += len(indices)
                loss_sum += loss.item()
                loss_count += 1

                if step in config.checkpoint_steps:
                    checkpoints[step] = copy.deepcopy(model.state_dict())
                if step == total_steps or (config.eval_every and step % config.eval_every == 0):
                    seconds += time.perf_counter() - started
                    test_loss, test_acc = (evaluate(model, test_data) if test_data is not None
                                           else (None, None))
                    history.append({"step": step, "epoch": step / steps_per_epoch,
                                    "train_loss": loss_sum / loss_count,
                                    "test_loss": test_loss, "test_acc": test_acc,
                                    "seconds": seconds})
                    loss_sum, loss_count = 0.0, 0
                    started = time.perf_counter()
            else:  # the epoch ran to its end
                for cb in callbacks:
                    cb.on_epoch_end(epoch, model)
                epoch += 1

        for cb in callbacks:
            cb.on_train_end(model)
        train_loss, train_acc = evaluate(model, train_data, pos)
        last = history[-1]
        final = {"test_acc": last["test_acc"], "test_loss": last["test_loss"],
                 "train_acc": train_acc, "train_loss": train_loss, "steps": step,
                 "epochs": step / steps_per_epoch, "examples": examples, "seconds": seconds}
    standardization = ({"mean": model.input_mean.detach().clone(),
                        "scale": model.input_scale.detach().clone()}
                       if config.standardize else None)
    return RunResult(seed=seed, model=model, history=history, final=final,
                     checkpoints=checkpoints, callbacks=callbacks, budget=config.budget(),
                     standardization=standardization)
