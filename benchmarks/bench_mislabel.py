"""Flagging flipped labels with training-dynamics scores, against confident learning.

10% of the labels of MNIST-1D and of scikit-learn's digits are flipped by the
built-ins' ``noise`` parameter (``label_flipped`` records which). Every score
ranks the examples; AUROC measures how well it puts the flipped ones first:

* ``loss`` (mean training loss), ``aum`` (lower = suspicious), ``forgetting``,
  ``cartography_confidence`` (lower = suspicious) and ``el2n`` (at epoch
  ``--el2n-epoch``): one set of training runs per seed, with the recorders of all
  five scorers on it (each scorer's ``reduce`` reads its own recorder, exactly
  what the scorer computes alone);
* ``cv_loss``: out-of-sample loss from 5-fold cross-validation, and cleanlab
  2.x on the same out-of-sample probabilities: ``get_label_quality_scores``
  (self-confidence) for AUROC, ``find_label_issues`` for precision / recall.

Reported per score: AUROC of the seed-averaged score with a 95% bootstrap CI over
examples, the mean and 95% t-interval of single-seed AUROCs, and precision among
the top-k (k = number of flipped labels). cleanlab is a benchmark-only dependency.

    python benchmarks/bench_mislabel.py [--seeds 5] [--epochs 30]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from curate.io import Source
from curate.train import TensorData, summarize, train_seeds
from scorers.dynamics import AUM, EL2N, Cartography, CVLoss, Forgetting, Loss

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

DATASETS = {
    "mnist1d": ("builtin:mnist1d:noise=0.1", "cnn1d"),
    "digits": ("builtin:digits:noise=0.1", "mlp"),
}
#: column -> +1 if a higher value is more suspicious, -1 if a lower one is.
SUSPICION = {"loss": 1, "el2n": 1, "aum": -1, "forgetting": 1, "cartography_confidence": -1,
             "cv_loss": 1}


def bootstrap_auroc(flipped, score, n_boot=1000, seed=0):
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(score), len(score))
        if flipped[idx].any() and not flipped[idx].all():
            values.append(roc_auc_score(flipped[idx], score[idx]))
    return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]


def evaluate(flipped, score) -> dict:
    k = int(flipped.sum())
    top = np.argsort(-score, kind="stable")[:k]
    return {"auroc": float(roc_auc_score(flipped, score)),
            "auroc_ci95_bootstrap": bootstrap_auroc(flipped, score),
            "precision_at_k": float(flipped[top].mean())}


def dynamics_scores(data, common, seeds, el2n_epoch):
    """Seed-averaged and per-seed scores from one set of runs with every recorder."""
    el2n = EL2N(epoch=el2n_epoch, **common)
    scorers = [Loss(**common), AUM(**common), Forgetting(**common), Cartography(**common), el2n]
    # One PresentationRecorder serves the four training-pass scorers.
    result = train_seeds(scorers[0].train_config(), data, seeds=seeds,
                         callbacks_factory=lambda s: (scorers[0].callbacks(s, data)
                                                      + el2n.callbacks(s, data)))
    runs = [run.callbacks for run in result.runs]
    averaged, per_seed = {}, {}
    for scorer in scorers:
        column = "cartography_confidence" if scorer.name == "cartography" else scorer.name
        averaged[column] = np.asarray(scorer.reduce(runs, data)[column], dtype=float)
        per_seed[column] = [np.asarray(scorer.reduce([r], data)[column], dtype=float)
                            for r in runs]
    return averaged, per_seed, result.summary


def run_dataset(name, args):
    import cleanlab
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    spec, model = DATASETS[name]
    table = Source(spec).read_all()
    flipped = table.column("label_flipped").to_numpy(zero_copy_only=False).astype(bool)
    data = TensorData.from_table(table)
    seeds = list(range(args.seeds))
    common = dict(model=model, epochs=args.epochs, seeds=seeds, lr=args.lr, batch_size=128)

    start = time.perf_counter()
    averaged, per_seed, summary = dynamics_scores(data, common, seeds, args.el2n_epoch)
    dynamics_s = time.perf_counter() - start
    start = time.perf_counter()
    cv = CVLoss(folds=5, **common).score_tensors(data)
    cv_s = time.perf_counter() - start
    averaged["cv_loss"] = cv.column("cv_loss").to_numpy()
    probs = np.stack(cv.column("cv_loss_probs").to_numpy(zero_copy_only=False))

    scores = {}
    for column, values in averaged.items():
        row = evaluate(flipped, SUSPICION[column] * values)
        if column in per_seed:
            row["auroc_per_seed"] = [float(roc_auc_score(flipped, SUSPICION[column] * v))
                                     for v in per_seed[column]]
            row["auroc_per_seed_summary"] = summarize(row["auroc_per_seed"])
        scores[column] = row
        print(f"{name:8s} {column:24s} AUROC {row['auroc']:.4f} "
              f"[{row['auroc_ci95_bootstrap'][0]:.4f}, {row['auroc_ci95_bootstrap'][1]:.4f}]"
              f"  P@k {row['precision_at_k']:.3f}")

    labels = data.y.numpy()
    quality = get_label_quality_scores(labels, probs)
    scores["cleanlab_label_quality"] = evaluate(flipped, -quality)
    issues = find_label_issues(labels, probs)
    tp = int((issues & flipped).sum())
    scores["cleanlab_find_label_issues"] = {
        "flagged": int(issues.sum()), "true_positives": tp,
        "precision": tp / max(int(issues.sum()), 1), "recall": tp / int(flipped.sum())}
    print(f"{name:8s} cleanlab quality AUROC {scores['cleanlab_label_quality']['auroc']:.4f}; "
          f"find_label_issues P {scores['cleanlab_find_label_issues']['precision']:.3f} "
          f"R {scores['cleanlab_find_label_issues']['recall']:.3f}")
    return {"data": spec, "n": len(data), "flipped": int(flipped.sum()), "model": model,
            "train": {**common, "optimizer": "sgd", "momentum": 0.9,
                      "el2n_epoch": args.el2n_epoch, "cv_folds": 5},
            "train_summary": summary, "dynamics_seconds": dynamics_s, "cv_seconds": cv_s,
            "cleanlab": cleanlab.__version__, "scores": scores}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--el2n-epoch", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--datasets", default="mnist1d,digits")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = {name: run_dataset(name, args) for name in args.datasets.split(",")}
    path = write_result("mislabel", {
        "what": "AUROC for flagging 10% flipped labels; higher is better; target >= 0.95",
        "torch": torch.__version__, "target_auroc": 0.95, "datasets": results})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
