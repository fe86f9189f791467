"""How much of a trained network one pruning round can remove: predicted against observed.

:func:`prunability` runs, per seed (Paul et al., ICLR 2023, "Unmasking the lottery ticket
hypothesis", with the heuristic prediction of :mod:`curate.train.sharpness`):

1. ``W_k``: ``rewind_step`` (k) steps of training from the seed's initialisation (the
   initialisation itself when k = 0), on the first k steps of the config's T-step
   learning-rate schedule.
2. The dense network: trained from ``W_k`` for ``T - k`` steps, continuing the schedule
   (``train(..., schedule_window=(k, T))``), checkpointed every ``eval_every`` steps.
3. Its Hessian on a fixed batch (``hessian_examples`` training examples, the first of a
   permutation seeded with 0, the same for every seed) over the prunable weights
   (:func:`curate.train.pruning.prunable_parameters`; biases held fixed): the top
   ``top_k`` eigenvalues by Lanczos and Hutchinson's trace.
4. ``eps``, the tolerated loss increase, from the dense run's own trajectory: the
   smallest excess of the fixed-batch loss over the final one among the checkpoints
   (``W_k`` included) whose test accuracy is below the matching threshold, i.e. the loss
   increase at which accuracy stops matching (independent of pruning).
5. The predicted largest prunable fraction by the lambda_max rule and the Gordon rule
   (:func:`curate.train.sharpness.predicted_prunable_fraction`, on a 0.01..0.99 grid).
6. The observed one: one-shot global magnitude pruning of the dense network at each of
   ``fractions``, evaluated as pruned (no retraining) and, with ``retrain``, retrained
   with its mask from ``W_k`` for ``T - k`` steps continuing the schedule, with the
   seed's data order.

Matching: a network matches when its test accuracy is ``>= threshold =
min(ci95_lo, mean - tolerance)`` of the dense networks' test accuracies over the seeds
(``mean - tolerance`` with one seed). The observed fraction is the largest tried fraction
up to which every tried fraction matches (0.0 when the first does not).

    runs = prunability(TrainConfig(model="mlp", model_params={"hidden": 100},
                                   optimizer="adam", lr=1e-2, schedule="cosine",
                                   batch_size=100, steps=1500),
                       train, test, rewind_step=100, seeds=(0, 1, 2))
    runs.seeds    # per seed: predicted_lambda_max, predicted_gordon, observed, ...

It returns the measurements as plain rows (:class:`PrunabilityRuns`); the tables,
plots and report are :mod:`curate.experiment.prunability`'s (the registered experiment
``sharpness``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import torch

from curate.core.errors import CurateError
from curate.train.data import TensorData
from curate.train.lottery import rewind_state
from curate.train.models import make_model
from curate.train.pruning import apply_masks, magnitude_masks, prunable_parameters
from curate.train.seeds import map_processes, summarize
from curate.train.sharpness import (
    hessian_trace,
    largest_prefix,
    predicted_prunable_fraction,
    pruning_displacement,
    top_eigenvalues,
)
from curate.train.trainer import TrainConfig, evaluate, train

DEFAULT_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
#: Fractions on which the predictions are searched (R(p) is computed on each).
PREDICTION_GRID = tuple(i / 100 for i in range(1, 100))
RULES = ("lambda_max", "gordon")
THRESHOLD_RULE = "min(dense ci95 lo, dense mean - tolerance) over seeds"


@dataclass
class PrunabilityRuns:
    """What :func:`prunability` measured, as plain rows (lists of dicts).

    - ``seeds``, one per seed: ``seed, dense_test_acc, dense_train_acc,
      dense_batch_loss`` (the dense network; batch = the Hessian batch), ``eps,
      eps_step`` (the tolerated loss increase and the checkpoint step, counted from the
      initialisation, that set it; None when no checkpoint falls below the threshold
      with a higher loss), ``lambda_max, trace, trace_stderr`` (Hessian over the
      prunable weights), ``n_params`` (prunable weights), ``top_k, hvps, converged``
      (Lanczos), ``predicted_lambda_max, predicted_gordon`` (None without eps),
      ``observed`` (with retraining; None without), ``observed_no_retrain``, and the
      ``lanczos_seconds, trace_seconds, sweep_seconds`` spent.
    - ``fractions``, per (seed, fraction): ``seed, fraction, kept`` (prunable weights
      left), ``acc_no_retrain, acc_retrained`` (test accuracy; the latter None without
      retraining).
    - ``spectrum``: ``seed, rank`` (1 = largest), ``eigenvalue``.
    - ``displacement``: ``seed, fraction, radius``: ``R(p)`` on :data:`PREDICTION_GRID`.
    - ``trajectory``: the dense run's checkpoints, ``seed, step`` (from the
      initialisation), ``test_acc, batch_loss, excess`` (over the final batch loss).

    Also ``dense`` (test accuracy over seeds: ``mean, std, ci95, n``), the matching
    ``threshold``, the ``settings`` and the wall time in ``seconds``.
    """

    seeds: list
    fractions: list
    spectrum: list
    displacement: list
    trajectory: list
    dense: dict
    threshold: float
    settings: dict
    seconds: float


def prunability(config: TrainConfig, train_data: TensorData, test_data: TensorData, *,
                rewind_step: int, fractions=DEFAULT_FRACTIONS, seeds=(0, 1, 2),
                hessian_examples: int = 1000, top_k: int = 150, trace_samples: int = 100,
                lanczos_iters: int = 400, lanczos_tol: float = 1e-4,
                tolerance: float = 0.01, eval_every: int | None = None, retrain: bool = True,
                workers: int = 1) -> PrunabilityRuns:
    """Predicted and observed largest one-shot prunable fraction, per seed (module notes).

    Args:
        config: how the networks train; its budget is T (``checkpoint_steps`` and
            ``eval_every`` are ignored).
        rewind_step: k, in [0, T).
        fractions: increasing, in (0, 1]: the one-shot pruning fractions tried.
        seeds: distinct integers; each drives its network's init and data order.
        hessian_examples: size of the fixed Hessian batch (at most the training set).
        top_k: eigenvalues by Lanczos (at most ``lanczos_iters``, the Krylov cap);
            ``lanczos_tol``: relative residual at which they count as converged.
        trace_samples: Hutchinson samples (>= 2), one HVP each.
        tolerance: in [0, 1); sets the matching threshold (module notes).
        eval_every: dense-run checkpoint spacing for eps, in steps (default: (T - k) / 30
            rounded down, at least 1).
        retrain: also retrain every pruned network from ``W_k`` (the observed fraction);
            without it only the no-retraining accuracy is measured (much cheaper).
        workers: > 1 runs seeds in that many spawned processes with one torch thread
            each (a custom model factory must then be importable, not a lambda).
    """
    started = time.perf_counter()
    seeds, grid, total, eval_every, n_batch = _check(
        config, train_data, test_data, rewind_step, fractions, seeds, hessian_examples, top_k,
        trace_samples, lanczos_iters, lanczos_tol, tolerance, eval_every, workers)
    settings = {"model": config.model if isinstance(config.model, str) else
                getattr(config.model, "__name__", repr(config.model)),
                "model_params": dict(config.model_params), "optimizer": config.optimizer,
                "lr": config.lr, "batch_size": config.batch_size, "schedule": config.schedule,
                "total_steps": total, "rewind_step": rewind_step, "eval_every": eval_every,
                "seeds": seeds, "fractions": grid, "hessian_examples": n_batch,
                "top_k": top_k, "trace_samples": trace_samples,
                "lanczos_iters": lanczos_iters, "lanczos_tol": lanczos_tol,
                "tolerance": tolerance, "retrain": retrain, "threshold_rule": THRESHOLD_RULE,
                "pruning": "one-shot global magnitude, Linear/Conv weights only"}
    batch = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(0))[:n_batch]
    jobs = [(seed, config, train_data, test_data, batch, settings) for seed in seeds]
    outputs = list(map_processes(_measure_seed, jobs, workers))

    dense = summarize([out["row"]["dense_test_acc"] for out in outputs])
    threshold = dense["mean"] - tolerance if dense["ci95"] is None \
        else min(dense["ci95"][0], dense["mean"] - tolerance)
    rows = [_conclude(out, threshold, grid, retrain) for out in outputs]
    return PrunabilityRuns(
        seeds=rows, fractions=[r for out in outputs for r in out["fractions"]],
        spectrum=[r for out in outputs for r in out["spectrum"]],
        displacement=[r for out in outputs for r in out["displacement"]],
        trajectory=[r for out in outputs for r in out["trajectory"]],
        dense=dense, threshold=threshold, settings=settings,
        seconds=time.perf_counter() - started)


def _check(config, train_data, test_data, rewind_step, fractions, seeds, hessian_examples,
           top_k, trace_samples, lanczos_iters, lanczos_tol, tolerance, eval_every, workers):
    """Validate prunability's arguments; return (seeds, fractions, T, eval_every, batch)."""
    def is_int(v):
        return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

    def is_number(v):
        return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)

    if not isinstance(config, TrainConfig):
        raise CurateError(f"config must be a TrainConfig, got {type(config).__name__}")
    if test_data is None:
        raise CurateError("prunability needs test_data: matching is measured on it")
    total = config.total_steps(len(train_data))
    if not is_int(rewind_step) or not 0 <= rewind_step < total:
        raise CurateError(f"rewind_step must be an integer in [0, {total}) (the config "
                          f"trains {total} steps), got {rewind_step!r}")
    grid = list(fractions) if not isinstance(fractions, str) else [fractions]
    if not grid or not all(is_number(p) and 0 < p <= 1 for p in grid) \
            or any(b <= a for a, b in zip(grid, grid[1:])):
        raise CurateError(f"fractions must be increasing numbers in (0, 1], got {fractions!r}")
    seeds = list(seeds)
    if not seeds or not all(is_int(s) for s in seeds) or len(set(seeds)) != len(seeds):
        raise CurateError(f"seeds must be distinct integers, at least one, got {seeds!r}")
    for name, value, low in (("hessian_examples", hessian_examples, 1), ("top_k", top_k, 1),
                             ("trace_samples", trace_samples, 2),
                             ("lanczos_iters", lanczos_iters, 1), ("workers", workers, 1)):
        if not is_int(value) or value < low:
            raise CurateError(f"{name} must be an integer >= {low}, got {value!r}")
    if top_k > lanczos_iters:
        raise CurateError(f"top_k={top_k} exceeds lanczos_iters={lanczos_iters} (Lanczos "
                          f"finds at most one eigenvalue per iteration)")
    if not is_number(lanczos_tol) or not lanczos_tol > 0:
        raise CurateError(f"lanczos_tol must be positive, got {lanczos_tol!r}")
    if not is_number(tolerance) or not 0 <= tolerance < 1:
        raise CurateError(f"tolerance must be an accuracy drop in [0, 1), got {tolerance!r}")
    remaining = total - rewind_step
    if eval_every is None:
        eval_every = max(1, remaining // 30)
    if not is_int(eval_every) or not 1 <= eval_every <= remaining:
        raise CurateError(f"eval_every must be an integer in [1, {remaining}] (the dense run "
                          f"trains {remaining} steps), got {eval_every!r}")
    return ([int(s) for s in seeds], [float(p) for p in grid], total, int(eval_every),
            min(int(hessian_examples), len(train_data)))


def _measure_seed(job) -> dict:
    """Everything of one seed that does not depend on the other seeds (the threshold)."""
    seed, config, train_data, test_data, batch, s = job
    k, total = s["rewind_step"], s["total_steps"]
    window = (k, total)   # runs from W_k continue the T-step learning-rate schedule
    rewind = rewind_state(seed, config, train_data, k)
    dense_config = replace(config, steps=total - k, epochs=None, eval_every=s["eval_every"],
                           checkpoint_steps=tuple(range(0, total - k + 1, s["eval_every"])))
    dense = train(dense_config, train_data, test_data, seed=seed, initial_state=rewind,
                  schedule_window=window)
    model = dense.model
    xb, yb = train_data.x[batch], train_data.y[batch]
    names = prunable_parameters(model)
    n_params = sum(model.get_parameter(n).numel() for n in names)

    started = time.perf_counter()
    top = top_eigenvalues(model, xb, yb, k=s["top_k"], params=names, iters=s["lanczos_iters"],
                          tol=s["lanczos_tol"], seed=seed)
    lanczos_seconds = time.perf_counter() - started
    started = time.perf_counter()
    trace, stderr = hessian_trace(model, xb, yb, samples=s["trace_samples"], params=names,
                                  seed=seed)
    trace_seconds = time.perf_counter() - started
    radii = pruning_displacement(model, PREDICTION_GRID)

    final_loss = evaluate(model, train_data, batch)[0]
    probe = make_model(config.model, train_data.input_shape, train_data.num_classes,
                       **config.model_params)
    trajectory = []
    for step, state in sorted(dense.checkpoints.items()):
        probe.load_state_dict(state)
        loss = evaluate(probe, train_data, batch)[0]
        trajectory.append({"seed": seed, "step": k + step,
                           "test_acc": evaluate(probe, test_data)[1],
                           "batch_loss": loss, "excess": loss - final_loss})

    started = time.perf_counter()
    fractions = _one_shot_sweep(config, train_data, test_data, model, rewind, s, seed, window)
    row = {"seed": seed, "dense_test_acc": dense.final["test_acc"],
           "dense_train_acc": dense.final["train_acc"], "dense_batch_loss": final_loss,
           "lambda_max": float(top.eigenvalues[0]), "trace": trace, "trace_stderr": stderr,
           "n_params": n_params, "top_k": s["top_k"], "hvps": top.hvps,
           "converged": top.converged, "lanczos_seconds": lanczos_seconds,
           "trace_seconds": trace_seconds, "sweep_seconds": time.perf_counter() - started}
    return {"row": row, "fractions": fractions, "trajectory": trajectory,
            "spectrum": [{"seed": seed, "rank": i + 1, "eigenvalue": float(v)}
                         for i, v in enumerate(top.eigenvalues)],
            "displacement": [{"seed": seed, "fraction": p, "radius": float(r)}
                             for p, r in zip(PREDICTION_GRID, radii)]}


def _one_shot_sweep(config, train_data, test_data, model, rewind, s, seed, window) -> list:
    """Per fraction: prune the dense ``model`` by magnitude; test accuracy as pruned and,
    with ``retrain``, retrained from ``rewind`` with the mask for the remaining steps."""
    state = model.state_dict()
    retrain_config = replace(config, steps=window[1] - window[0], epochs=None, eval_every=None,
                             checkpoint_steps=())
    evaluator = make_model(config.model, train_data.input_shape, train_data.num_classes,
                           **config.model_params)
    rows = []
    for p in s["fractions"]:
        masks = magnitude_masks(state, p)
        evaluator.load_state_dict(apply_masks(state, masks))
        retrained = None
        if s["retrain"]:
            retrained = train(retrain_config, train_data, test_data, seed=seed,
                              initial_state=rewind, masks=masks,
                              schedule_window=window).final["test_acc"]
        rows.append({"seed": seed, "fraction": p,
                     "kept": int(sum(int(m.sum()) for m in masks.values())),
                     "acc_no_retrain": evaluate(evaluator, test_data)[1],
                     "acc_retrained": retrained})
    return rows


def _conclude(out: dict, threshold: float, grid: list, retrain: bool) -> dict:
    """The seed's row with eps, the predictions and the observed fractions filled in."""
    row = dict(out["row"])
    excesses = [(t["excess"], t["step"]) for t in out["trajectory"]
                if t["test_acc"] < threshold and t["excess"] > 0]
    row["eps"], row["eps_step"] = min(excesses) if excesses else (None, None)
    row["predicted_lambda_max"] = row["predicted_gordon"] = None
    if row["eps"] is not None:
        radii = [d["radius"] for d in out["displacement"]]
        predicted = predicted_prunable_fraction(
            [e["eigenvalue"] for e in out["spectrum"]], (PREDICTION_GRID, radii), row["eps"],
            row["n_params"], trace=row["trace"])
        row["predicted_lambda_max"], row["predicted_gordon"] = (predicted[r] for r in RULES)
    tried = torch.tensor(grid, dtype=torch.float64)

    def observed(column):
        return largest_prefix(tried, torch.tensor([f[column] >= threshold
                                                    for f in out["fractions"]]))

    row["observed_no_retrain"] = observed("acc_no_retrain")
    row["observed"] = observed("acc_retrained") if retrain else None
    return row
