"""Hessian sharpness on MNIST-1D: estimator accuracy, and predicted vs observed pruning.

    python benchmarks/bench_sharpness.py            # about 3-6 minutes on 2 busy cores

(a) Accuracy. Small models (logreg, 410 parameters; MLPs with hidden 16 and 32), trained
    briefly, on a fixed batch of 1,000 training examples: the top-5 eigenvalues by
    Lanczos and by power iteration (float32 HVPs) against the full float64 Hessian's
    ``eigvalsh`` (the baseline), relative errors and times; Hutchinson's trace against
    the exact trace.
(b) Pruning, by :func:`curate.train.prunability.prunability`. The MNIST-1D MLP (hidden
    100, 15,000 prunable weights), Adam 1e-2 with one cosine schedule over T steps, batch
    100, rewind point W_k (the first k steps of that schedule; every run from W_k continues
    it). Per seed: the dense network trained from W_k for T - k steps, its spectrum on the
    fixed batch (top 150 by Lanczos over the prunable weights, Hutchinson trace), the
    predicted largest prunable fraction by the lambda_max rule and the Gordon rule (from
    the top 150, and from only the top 10 to show what the tail model costs), and the
    observed one: one-shot magnitude pruning at p = 0.1..0.95 of the dense network, each
    mask retrained from W_k for T - k steps (and, cheaper, evaluated without retraining).

Matching threshold: a pruned network matches when its test accuracy is within the dense
seeds' 95% interval or within 1 point of their mean: ``min(ci95_lo, mean - 0.01)``.

eps (the tolerated loss increase): the dense run is checkpointed every ``eval_every``
steps (and at W_k); eps is the smallest excess of the fixed-batch loss over the final
loss among the checkpoints whose test accuracy is below the matching threshold, i.e.
the loss increase at which accuracy stops matching along the dense run's own trajectory
(independent of pruning). Predictions at eps/2 and 2 eps are reported as a sensitivity check.

Writes ``benchmarks/results/sharpness.json`` and part (b)'s tables, plots and report in
``benchmarks/results/sharpness_pruning/``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import RESULTS, write_result  # noqa: E402

from curate.experiment.outputs import write_result as write_experiment  # noqa: E402
from curate.experiment.prunability import PrunabilityResult  # noqa: E402
from curate.train import (  # noqa: E402
    TensorData,
    TrainConfig,
    make_model,
    train,
)
from curate.train.prunability import prunability  # noqa: E402
from curate.train.sharpness import (  # noqa: E402
    full_hessian,
    hessian_trace,
    predicted_prunable_fraction,
    top_eigenvalues,
)

ACCURACY_MODELS = [("logreg", {}), ("mlp", {"hidden": 16}), ("mlp", {"hidden": 32})]
POWER_SETTINGS = {"power_pyhessian_defaults": {"iters": 100, "tol": 1e-3},
                  "power_tight": {"iters": 500, "tol": 1e-6}}


def timed(fn, *args, **kwargs):
    started = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - started


def rel_errors(found: torch.Tensor, exact: torch.Tensor) -> list[float]:
    return [abs(float(f) - float(e)) / abs(float(e)) for f, e in zip(found, exact)]


def accuracy_part(train_data, xb, yb, k: int, trace_samples: int) -> list[dict]:
    rows = []
    for name, params in ACCURACY_MODELS:
        config = TrainConfig(model=name, model_params=params, optimizer="adam", lr=1e-2,
                             schedule="cosine", batch_size=100, steps=500)
        model = train(config, train_data, seed=0).model
        size = sum(p.numel() for p in model.parameters())
        exact_model = make_model(name, train_data.input_shape, train_data.num_classes,
                                 **params).double()
        exact_model.load_state_dict(model.state_dict())
        hessian, full_s = timed(full_hessian, exact_model, xb.double(), yb)
        spectrum, eigh_s = timed(torch.linalg.eigvalsh, hessian)
        exact = spectrum.flip(0)[:k]
        row = {"model": name, "model_params": params, "parameters": size, "batch": len(yb),
               "exact_top": exact.tolist(), "exact_trace": float(hessian.trace()),
               "full": {"hessian_seconds": round(full_s, 3), "eigvalsh_seconds":
                        round(eigh_s, 3), "hvps": size}}
        runs = {"lanczos": {"method": "lanczos"}, **{
            label: {"method": "power", **setting} for label, setting in POWER_SETTINGS.items()}}
        for label, kwargs in runs.items():
            top, seconds = timed(top_eigenvalues, model, xb, yb, k=k, **kwargs)
            errors = rel_errors(top.eigenvalues, exact)
            row[label] = {"top": top.eigenvalues.tolist(), "rel_errors": errors,
                          "max_rel_error": max(errors), "hvps": top.hvps,
                          "converged": top.converged, "seconds": round(seconds, 3),
                          "speedup_vs_full": round((full_s + eigh_s) / seconds, 2)}
        (estimate, stderr), seconds = timed(hessian_trace, model, xb, yb, samples=trace_samples)
        row["trace"] = {"estimate": estimate, "stderr": stderr, "samples": trace_samples,
                        "rel_error": abs(estimate - row["exact_trace"]) / abs(row["exact_trace"]),
                        "z": (estimate - row["exact_trace"]) / stderr,
                        "seconds": round(seconds, 3)}
        rows.append(row)
        print(f"{name} {params} D={size}: lanczos max rel err "
              f"{row['lanczos']['max_rel_error']:.2e} ({row['lanczos']['hvps']} HVPs), power "
              f"{row['power_tight']['max_rel_error']:.2e} ({row['power_tight']['hvps']} HVPs), "
              f"trace {estimate:.3f} +- {stderr:.3f} vs {row['exact_trace']:.3f}", flush=True)
    return rows


def pruning_part(train_data, test_data, args) -> dict:
    config = TrainConfig(model="mlp", model_params={"hidden": args.hidden}, optimizer="adam",
                         lr=1e-2, schedule="cosine", batch_size=100, steps=args.steps)
    result = PrunabilityResult.from_runs(prunability(
        config, train_data, test_data, rewind_step=args.rewind_step, fractions=args.fractions,
        seeds=range(args.seeds), hessian_examples=args.batch, top_k=args.k,
        trace_samples=args.trace_samples, lanczos_iters=args.lanczos_iters,
        lanczos_tol=args.lanczos_tol, tolerance=0.01, eval_every=args.eval_every,
        workers=args.workers))
    write_experiment(result, RESULTS / "sharpness_pruning")
    print(f"dense test acc {result.dense['mean']:.4f} ci95 {result.dense['ci95']}, "
          f"matching threshold {result.threshold:.4f}", flush=True)
    per_seed = [seed_figures(row, result, args) for row in result.seeds.to_pylist()]
    return {"config": {**{key: result.settings[key] for key in (
                "model", "optimizer", "lr", "schedule", "batch_size", "rewind_step",
                "eval_every", "seeds", "lanczos_iters", "lanczos_tol", "fractions",
                "pruning")},
                       "hidden": args.hidden, "steps": args.steps, "k": args.k,
                       "k_small": args.k_small,
                       "lr_schedule": "one cosine schedule over all T steps: W_k takes steps "
                                      "0..k, every run from W_k continues it at step k"},
            "dense": result.dense, "threshold": result.threshold,
            "threshold_rule": "min(dense ci95 lo, dense mean - 0.01)",
            "eps_rule": "smallest fixed-batch loss excess over the final loss among dense "
                        "checkpoints (every eval_every steps) below the matching threshold",
            "per_seed": per_seed, "seconds": round(result.seconds, 1)}


def seed_figures(row: dict, result, args) -> dict:
    """One seed's figures, with the predictions recomputed from the top k_small eigenvalues
    (what the tail model costs) and at eps / 2 and 2 eps (sensitivity)."""
    seed = row["seed"]
    top = [r["eigenvalue"] for r in result.spectrum.to_pylist() if r["seed"] == seed]
    radii = [(r["fraction"], r["radius"]) for r in result.displacement.to_pylist()
             if r["seed"] == seed]
    grid, radius = zip(*radii)
    predicted = {f"top{k}": {f"eps_x{factor}": predicted_prunable_fraction(
        top[:k], (grid, radius), row["eps"] * factor, row["n_params"], trace=row["trace"])
        for factor in (0.5, 1, 2)} for k in (args.k_small, args.k)}
    main = {rule: row[f"predicted_{rule}"] for rule in ("lambda_max", "gordon")}
    small = predicted[f"top{args.k_small}"]["eps_x1"]
    rows = [{"fraction": r["fraction"], "acc_no_retrain": r["acc_no_retrain"],
             "acc_retrained": r["acc_retrained"]}
            for r in result.fractions.to_pylist() if r["seed"] == seed]
    print(f"seed {seed}: lambda_max {row['lambda_max']:.3f}, trace {row['trace']:.1f} +- "
          f"{row['trace_stderr']:.1f}, eps {row['eps']:.4f} (step {row['eps_step']}); "
          f"predicted lambda_max rule {main['lambda_max']:.2f}, Gordon {main['gordon']:.2f} "
          f"(top-{args.k_small} only: {small['gordon']:.2f}); observed {row['observed']:.2f} "
          f"(no retraining {row['observed_no_retrain']:.2f})", flush=True)
    return {"seed": seed, "dense_test_acc": row["dense_test_acc"],
            "dense_train_acc": row["dense_train_acc"],
            "spectrum": {"top": top, "hvps": row["hvps"], "converged": row["converged"],
                         "seconds": round(row["lanczos_seconds"], 2), "trace": row["trace"],
                         "trace_stderr": row["trace_stderr"],
                         "trace_samples": args.trace_samples,
                         "trace_seconds": round(row["trace_seconds"], 2),
                         "n_params": row["n_params"]},
            "displacement": {f"{p:g}": r for p, r in radii if round(p * 100) % 5 == 0},
            "eps": row["eps"], "eps_checkpoint_step": row["eps_step"],
            "predicted": predicted, "observed": row["observed"],
            "observed_no_retrain": row["observed_no_retrain"], "observed_rows": rows,
            "observed_seconds": round(row["sweep_seconds"], 1),
            "gap_points": {rule: round(100 * (main[rule] - row["observed"]), 1)
                           for rule in main},
            "within_10_points": {rule: abs(main[rule] - row["observed"]) <= 0.10
                                 for rule in main},
            f"gordon_gap_points_top{args.k_small}":
                round(100 * (small["gordon"] - row["observed"]), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--rewind-step", type=int, default=100)
    parser.add_argument("--eval-every", type=int, default=50)
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--k", type=int, default=150, help="top eigenvalues in part (b)")
    parser.add_argument("--k-small", type=int, default=10,
                        help="also predict from only the top k_small of them")
    parser.add_argument("--lanczos-iters", type=int, default=400)
    parser.add_argument("--lanczos-tol", type=float, default=1e-4)
    parser.add_argument("--trace-samples", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--fractions", type=float, nargs="+",
                        default=[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95])
    parser.add_argument("--workers", type=int, default=1, help="processes for the seeds")
    parser.add_argument("--skip-accuracy", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)   # tiny models: one thread is fastest on a shared machine
    started = time.perf_counter()
    train_data = TensorData.from_source("builtin:mnist1d")
    test_data = TensorData.from_source("builtin:mnist1d:split=test")
    positions = torch.randperm(len(train_data), generator=torch.Generator().manual_seed(0))
    xb, yb = train_data.x[positions[:args.batch]], train_data.y[positions[:args.batch]]
    accuracy = [] if args.skip_accuracy else accuracy_part(train_data, xb, yb, 5, 100)
    pruning = pruning_part(train_data, test_data, args)
    write_result("sharpness", {
        "data": "builtin:mnist1d (4,000 train / 1,000 test); Hessian batch: "
                f"{args.batch} training examples (seeded permutation)",
        "accuracy": accuracy, "pruning": pruning,
        "wall_seconds": round(time.perf_counter() - started, 1)})


if __name__ == "__main__":
    main()
