"""Lottery tickets: iterative magnitude pruning with rewinding (IMP), controls and barriers.

:func:`imp` follows open_lth's lottery runner (Frankle et al. 2019, 2020), per seed:

1. Rewind point ``W_k``: the initialisation (``rewind_step=0``) or the weights after
   ``rewind_step`` steps of training from it (on ``pretrain`` positions when given: the
   "data diet" hook of Paul et al. 2022).
2. Level 0 trains the dense network from ``W_k`` for the remaining ``T - k`` steps
   (``T`` = the config's budget), so every level sees the same ``k + (T - k)`` steps.
3. Level L >= 1 prunes ``fraction`` of the weights the previous level kept, ranked by
   |w| of the previous level's trained network (:func:`magnitude_masks`), rewinds to
   ``W_k``, applies the mask and trains ``T - k`` steps. Density after L levels is
   ``(1 - fraction) ** L``.
4. Controls at each level >= 1 (leaves: IMP continues from the ticket): ``reinit``,
   the same mask on a fresh initialisation (a derived init seed); ``random_mask``, a
   random mask with the ticket's per-layer counts (:func:`random_masks`) on ``W_k``.

All runs of a seed use that seed's data order. Each ``T - k`` run starts a fresh
optimizer at ``W_k`` (as open_lth does) and continues the learning-rate schedule of a
``T``-step run from step k (``train(..., schedule_window=(k, T))``).

Barriers (:mod:`curate.train.connectivity`, on the test data): ``successive``, between
the trained networks of levels L and L+1 (Paul et al. 2023). No mask is applied on the
path: both endpoints are zero off level L's mask (masks only shrink and pruned weights
stay zero), so this equals Paul et al.'s masking with level L's mask. ``instability``:
between the level's network and a copy trained from the same ``W_k`` and mask with
another data order (Frankle et al. 2020), at the dense level (``instability="dense"``)
or at every level (``"all"``).

:func:`imp` returns the measurements as plain rows (:class:`ImpRuns`); the summaries,
plots and report are :mod:`curate.experiment.lottery`'s.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field, replace

import numpy as np

from curate.core.errors import CurateError
from curate.train.connectivity import error_barrier
from curate.train.data import TensorData
from curate.train.models import make_model
from curate.train.pruning import (
    SCOPES,
    magnitude_masks,
    prunable_parameters,
    random_masks,
    sparsity,
)
from curate.train.seeds import map_processes
from curate.train.trainer import TrainConfig, seeded, train

KINDS = ("dense", "ticket", "random_mask", "reinit")
CONTROLS = ("random_mask", "reinit")
INSTABILITY = ("none", "dense", "all")

# Streams of derived seeds (numpy SeedSequence entropy: stream, run seed, level), so a
# control's init or mask never shares a seed with a run seed.
_REINIT, _RANDOM_MASK, _ORDER = 1, 2, 3


def _derived_seed(stream: int, seed: int, level: int) -> int:
    return int(np.random.SeedSequence([stream, seed, level]).generate_state(1)[0])


@dataclass
class ImpRuns:
    """What :func:`imp` measured, as plain rows (lists of dicts).

    - ``runs``, one per (seed, level, kind): ``seed, level, kind`` (dense | ticket |
      random_mask | reinit), ``kept, total`` (prunable weights), ``density, sparsity``,
      ``test_acc, test_loss, train_acc, train_loss``, ``steps`` (k + T - k),
      ``steps_to_target`` (first history step, counted from the initialisation, with
      test_acc >= target_acc; None when never or without a target), ``seconds``.
    - ``barriers``, one per (seed, kind, level): ``seed, kind`` (successive |
      instability), ``level, other_level`` (L and L+1, or L and L), ``sparsity`` (of
      ``other_level``), ``barrier, barrier_linear, max_error, endpoint_error_mean,
      error_a, error_b`` (see :func:`curate.train.connectivity.barrier`).
    - ``curves``: ``seed, level, kind, step, test_acc, test_loss`` (step counted from the
      initialisation, so the first row of a level run is at k + eval_every).

    Also ``masks[(seed, level)]`` (the ticket masks, level >= 1), ``rewind_states[seed]``
    (``W_k``), ``states[(seed, level)]`` (the trained ticket; level 0: dense), the
    ``settings`` and the wall time in ``seconds``.
    """

    runs: list
    barriers: list
    curves: list
    settings: dict
    seconds: float
    masks: dict = field(default_factory=dict, repr=False)
    rewind_states: dict = field(default_factory=dict, repr=False)
    states: dict = field(default_factory=dict, repr=False)


def imp(config: TrainConfig, train_data: TensorData, test_data: TensorData, *, levels: int,
        fraction: float = 0.2, rewind_step: int = 0, seeds=(0, 1, 2),
        controls=("random_mask", "reinit"), output_fraction: float | None = None,
        scope: str = "global", target_acc: float | None = None, eval_every: int | None = None,
        barrier_points: int = 11, pretrain=None, instability: str = "dense",
        workers: int = 1) -> ImpRuns:
    """Iterative magnitude pruning with rewinding, over ``seeds`` (see the module notes).

    Args:
        config: how every run trains (its budget is T; ``checkpoint_steps`` is ignored).
        levels: pruning rounds after the dense level 0.
        fraction: share of the remaining weights pruned per level, in (0, 1).
        rewind_step: k, the step whose weights each level rewinds to (0 = the init).
        controls: any of ``"random_mask"``, ``"reinit"``.
        output_fraction, scope: passed to :func:`magnitude_masks` (e.g. 0.1 prunes the
            output layer at half of 0.2, as Frankle & Carbin do).
        target_acc: test accuracy for ``steps_to_target``.
        eval_every: history rows every so many steps (default: the config's).
        barrier_points: alphas per barrier path (endpoints included).
        pretrain: positions into ``train_data`` on which the 0..k phase trains
            (needs ``rewind_step > 0``); None = the full data.
        instability: ``"none"``, ``"dense"`` (level 0 only) or ``"all"`` (every level;
            one extra run per level and seed).
        workers: > 1 runs seeds in that many spawned processes with one torch thread
            each (the config's model must then be importable, not a lambda).
    """
    started = time.perf_counter()
    seeds = _check(config, train_data, test_data, levels, fraction, rewind_step, seeds,
                   controls, output_fraction, scope, target_acc, eval_every, barrier_points,
                   pretrain, instability, workers)
    total = config.total_steps(len(train_data))
    settings = {"model": config.model if isinstance(config.model, str) else
                getattr(config.model, "__name__", repr(config.model)),
                "model_params": dict(config.model_params), "optimizer": config.optimizer,
                "lr": config.lr, "batch_size": config.batch_size, "schedule": config.schedule,
                "weight_decay": config.weight_decay, "total_steps": total, "levels": levels,
                "fraction": fraction, "rewind_step": rewind_step, "seeds": list(seeds),
                "controls": list(controls), "output_fraction": output_fraction,
                "scope": scope, "target_acc": target_acc,
                "eval_every": eval_every or config.eval_every,
                "barrier_points": barrier_points, "instability": instability,
                "pretrain_examples": None if pretrain is None else len(pretrain)}
    level_config = replace(config, steps=total - rewind_step, epochs=None, checkpoint_steps=(),
                           eval_every=eval_every or config.eval_every)
    jobs = [(seed, config, level_config, train_data, test_data, settings,
             None if pretrain is None else np.asarray(pretrain, dtype=np.int64))
            for seed in seeds]
    outputs = list(map_processes(_imp_seed, jobs, workers))

    return ImpRuns(
        runs=[r for out in outputs for r in out["runs"]],
        barriers=[r for out in outputs for r in out["barriers"]],
        curves=[r for out in outputs for r in out["curves"]],
        settings=settings, seconds=time.perf_counter() - started,
        masks={(out["seed"], lv): m for out in outputs for lv, m in out["masks"].items()},
        rewind_states={out["seed"]: out["rewind"] for out in outputs},
        states={(out["seed"], lv): s for out in outputs for lv, s in out["states"].items()})


def _check(config, train_data, test_data, levels, fraction, rewind_step, seeds, controls,
           output_fraction, scope, target_acc, eval_every, barrier_points, pretrain,
           instability, workers) -> list[int]:
    """Validate imp's arguments; return the seeds as a list."""
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    if not isinstance(config, TrainConfig):
        raise CurateError(f"config must be a TrainConfig, got {type(config).__name__}")
    if test_data is None:
        raise CurateError("imp needs test_data: accuracy and barriers are measured on it")
    if not is_int(levels) or levels < 0:
        raise CurateError(f"levels must be a non-negative integer, got {levels!r}")
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) \
            or not 0 < fraction < 1:
        raise CurateError(f"fraction must be in (0, 1) (the share of the remaining weights "
                          f"pruned per level), got {fraction!r}")
    total = config.total_steps(len(train_data))
    if not is_int(rewind_step) or not 0 <= rewind_step < total:
        raise CurateError(f"rewind_step must be an integer in [0, {total}) (the config "
                          f"trains {total} steps), got {rewind_step!r}")
    seeds = list(seeds)
    if not seeds or not all(is_int(s) for s in seeds) or len(set(seeds)) != len(seeds):
        raise CurateError(f"seeds must be distinct integers, at least one, got {seeds!r}")
    unknown = [c for c in controls if c not in CONTROLS]
    if isinstance(controls, str) or unknown:
        raise CurateError(f"controls must be a list of {', '.join(CONTROLS)}, got "
                          f"{controls!r}")
    if output_fraction is not None and (isinstance(output_fraction, bool) or not isinstance(
            output_fraction, (int, float)) or not 0 <= output_fraction < 1):
        raise CurateError(f"output_fraction must be in [0, 1) or None, got "
                          f"{output_fraction!r}")
    if scope not in SCOPES:
        raise CurateError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    if target_acc is not None and not (isinstance(target_acc, (int, float))
                                       and 0 < target_acc <= 1):
        raise CurateError(f"target_acc must be an accuracy in (0, 1], got {target_acc!r}")
    if eval_every is not None and (not is_int(eval_every) or eval_every < 1):
        raise CurateError(f"eval_every must be a positive integer, got {eval_every!r}")
    if not is_int(barrier_points) or barrier_points < 2:
        raise CurateError(f"barrier_points must be an integer >= 2, got {barrier_points!r}")
    if pretrain is not None:
        if rewind_step == 0:
            raise CurateError("pretrain positions need rewind_step > 0: they replace the "
                              "data of the 0..rewind_step phase")
        pos = np.asarray(pretrain)
        if pos.ndim != 1 or len(pos) == 0 or not np.issubdtype(pos.dtype, np.integer) \
                or pos.min() < 0 or pos.max() >= len(train_data):
            raise CurateError(f"pretrain must be a non-empty list of positions in "
                              f"[0, {len(train_data)})")
    if instability not in INSTABILITY:
        raise CurateError(f"instability must be one of {', '.join(INSTABILITY)}, got "
                          f"{instability!r}")
    if not is_int(workers) or workers < 1:
        raise CurateError(f"workers must be a positive integer, got {workers!r}")
    return seeds


def rewind_state(seed, config, train_data, rewind_step, pretrain=None) -> dict:
    """``W_k`` for ``seed``: its initialisation, or k steps of training from it (on the
    ``pretrain`` positions when given), on the first k steps of the config's schedule."""
    if rewind_step == 0:
        return _init_state(config, train_data, seed)
    pre = replace(config, steps=rewind_step, epochs=None, checkpoint_steps=(), eval_every=None)
    run = train(pre, train_data, None, seed=seed, positions=pretrain,
                schedule_window=(0, config.total_steps(len(train_data))))
    return copy.deepcopy(run.model.state_dict())


def _init_state(config, data, seed) -> dict:
    """The initialisation ``train(config, data, seed=seed)`` starts from."""
    with seeded(seed):
        model = make_model(config.model, data.input_shape, data.num_classes,
                           **config.model_params)
    return copy.deepcopy(model.state_dict())


def _imp_seed(job) -> dict:
    """All levels, controls and barriers of one seed."""
    seed, config, level_config, train_data, test_data, settings, pretrain = job
    k = settings["rewind_step"]
    rewind = rewind_state(seed, config, train_data, k, pretrain)
    layers = prunable_parameters(make_model(config.model, train_data.input_shape,
                                            train_data.num_classes, **config.model_params))
    total_weights = sum(rewind[name].numel() for name in layers)
    out = {"seed": seed, "rewind": rewind, "runs": [], "barriers": [], "curves": [],
           "masks": {}, "states": {}}
    window = (k, settings["total_steps"])  # every level continues the T-step LR schedule

    def run_and_record(level, kind, masks, initial_state, order_seed=seed):
        run = train(level_config, train_data, test_data, seed=order_seed,
                    initial_state=initial_state, masks=masks, schedule_window=window)
        kept = sparsity(masks)["overall"]["kept"] if masks else total_weights
        reached = None
        if settings["target_acc"] is not None:
            reached = next((k + h["step"] for h in run.history
                            if h["test_acc"] >= settings["target_acc"]), None)
        out["runs"].append({
            "seed": seed, "level": level, "kind": kind, "kept": kept, "total": total_weights,
            "density": kept / total_weights, "sparsity": 1 - kept / total_weights,
            "test_acc": run.final["test_acc"], "test_loss": run.final["test_loss"],
            "train_acc": run.final["train_acc"], "train_loss": run.final["train_loss"],
            "steps": k + run.final["steps"], "steps_to_target": reached,
            "seconds": run.final["seconds"]})
        out["curves"] += [{"seed": seed, "level": level, "kind": kind, "step": k + h["step"],
                           "test_acc": h["test_acc"], "test_loss": h["test_loss"]}
                          for h in run.history]
        return copy.deepcopy(run.model.state_dict())

    def record_barrier(kind, level, other_level, state_a, state_b, density):
        b = error_barrier(config, state_a, state_b, test_data, points=settings["barrier_points"])
        out["barriers"].append({
            "seed": seed, "kind": kind, "level": level, "other_level": other_level,
            "sparsity": 1 - density, "barrier": b["barrier"],
            "barrier_linear": b["barrier_linear"], "max_error": b["max_error"],
            "endpoint_error_mean": b["endpoint_error_mean"], "error_a": b["path"][0]["error"],
            "error_b": b["path"][-1]["error"]})

    masks, previous = None, None
    for level in range(settings["levels"] + 1):
        if level > 0:
            masks = magnitude_masks(previous, settings["fraction"], masks=masks, layers=layers,
                                    scope=settings["scope"],
                                    output_fraction=settings["output_fraction"])
            out["masks"][level] = masks
        density = sparsity(masks)["overall"]["kept"] / total_weights if masks else 1.0
        state = run_and_record(level, "ticket" if level else "dense", masks, rewind)
        out["states"][level] = state
        if level > 0 and "reinit" in settings["controls"]:
            fresh = _init_state(config, train_data, _derived_seed(_REINIT, seed, level))
            run_and_record(level, "reinit", masks, fresh)
        if level > 0 and "random_mask" in settings["controls"]:
            shuffled = random_masks(masks, _derived_seed(_RANDOM_MASK, seed, level))
            run_and_record(level, "random_mask", shuffled, rewind)
        if settings["instability"] == "all" or (settings["instability"] == "dense"
                                                and level == 0):
            twin = train(level_config, train_data, None, seed=_derived_seed(_ORDER, seed, level),
                         initial_state=rewind, masks=masks, schedule_window=window)
            record_barrier("instability", level, level, state, twin.model.state_dict(),
                           density)
        if previous is not None:
            record_barrier("successive", level - 1, level, previous, state, density)
        previous = state
    return out
