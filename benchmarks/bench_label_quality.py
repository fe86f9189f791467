"""Finding flipped labels in raw-scale tabular data: dynamics scores against cleanlab.

Three datasets that ship with scikit-learn, with their features on their raw
scales (nothing is downloaded): ``wine`` (178 x 13, attributes from 0.1 to 1,680),
``breast_cancer`` (569 x 30, up to 4,254) and ``digits`` (1,797 x 64, pixel values
0-16, *not* divided by 16 as ``builtin:digits`` is). For each of several flip seeds,
10% of the labels (exactly ``round(0.1 n)`` examples, chosen uniformly) are moved
to a uniformly drawn other class; each score then ranks the examples and AUROC
(``roc_auc_score``) measures how well it puts the flipped ones first:

* every training-dynamics score (``loss``, ``el2n``, ``grand``, ``forgetting``,
  ``aum``, ``cartography_confidence``, ``prototypicality``, ``cv_loss``), each in
  its own direction (AUM and confidence: lower = suspicious), with the inputs
  standardized (the scorers' default) and without (``standardize=False``). The
  training-pass scores, EL2N, GraNd and prototypicality come from one set of runs
  per setting with all their recorders (each scorer's ``reduce`` reads its own
  callbacks: what the scorer computes alone); ``cv_loss`` is 5-fold;
* cleanlab 2.x's ``get_label_quality_scores`` (self-confidence) on 5-fold
  ``cross_val_predict(..., method="predict_proba")`` probabilities of
  ``make_pipeline(StandardScaler(), LogisticRegression)`` and of
  ``make_pipeline(StandardScaler(), MLPClassifier)``; the better of the two (by
  mean AUROC over flip seeds) is the baseline.

Each figure is the mean over flip seeds with a 95% Student-t interval. The target:
the best dynamics score's mean AUROC (standardized) is at least cleanlab's. The
best score is picked after the fact among eight, which favours the dynamics side
a little; ``loss``, fixed in advance, is reported too. The dynamics scorers train
with their defaults (``mlp``, 20 epochs, SGD lr 0.1 momentum 0.9, batch 128) but 3
model seeds instead of 5, EL2N and GraNd at epoch 10. Jobs (dataset x flip seed)
run in ``--workers`` spawned processes with one torch and one BLAS thread each.

    python benchmarks/bench_label_quality.py [--flip-seeds 5] [--workers 2] [--test]
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")      # before numpy / torch load their BLAS

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from curate.train import TensorData, summarize, train_seeds  # noqa: E402
from curate.train.seeds import map_processes  # noqa: E402
from scorers.dynamics import (  # noqa: E402
    AUM,
    EL2N,
    Cartography,
    CVLoss,
    Forgetting,
    GraNd,
    Loss,
    Prototypicality,
    gradients,
)

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

DATASETS = ("wine", "breast_cancer", "digits")
#: column -> +1 if a higher value is more suspicious, -1 if a lower one is.
SUSPICION = {"loss": 1, "el2n": 1, "grand": 1, "forgetting": 1, "aum": -1,
             "cartography_confidence": -1, "prototypicality": 1, "cv_loss": 1}
NOISE = 0.1
CV_FOLDS = 5


def load(name: str) -> tuple[np.ndarray, np.ndarray]:
    from sklearn import datasets

    x, y = getattr(datasets, f"load_{name}")(return_X_y=True)
    return x.astype(np.float64), y.astype(np.int64)


def flip_labels(y: np.ndarray, num_classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy labels, flipped mask)``: ``round(NOISE * n)`` labels moved to another class."""
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(y), round(NOISE * len(y)), replace=False)
    noisy = y.copy()
    noisy[chosen] = (y[chosen] + rng.integers(1, num_classes, len(chosen))) % num_classes
    flipped = np.zeros(len(y), dtype=bool)
    flipped[chosen] = True
    return noisy, flipped


def auroc(flipped: np.ndarray, column: str, values) -> float | None:
    """AUROC of a score in its own direction; None when it has non-finite values."""
    values = np.asarray(values, dtype=float)
    if not np.isfinite(values).all():
        return None
    return float(roc_auc_score(flipped, SUSPICION[column] * values))


def dynamics_scores(data: TensorData, common: dict, el2n_epoch: int) -> tuple[dict, dict]:
    """Every dynamics score (seed-averaged) for one setting, and signs of degeneracy."""
    el2n, grand = EL2N(epoch=el2n_epoch, **common), GraNd(epoch=el2n_epoch, **common)
    passes = [Loss(**common), AUM(**common), Forgetting(**common), Cartography(**common)]
    proto = Prototypicality(**common)
    result = train_seeds(passes[0].train_config(), data, seeds=common["seeds"],
                         callbacks_factory=lambda s: (passes[0].callbacks(s, data)
                                                      + el2n.callbacks(s, data)
                                                      + grand.callbacks(s, data)))
    runs = [run.callbacks for run in result.runs]
    scores = {}
    for scorer in passes:
        column = "cartography_confidence" if scorer.name == "cartography" else scorer.name
        scores[column] = scorer.reduce([[r[0]] for r in runs], data)[column]
    scores["el2n"] = el2n.reduce([[r[1]] for r in runs], data)["el2n"]
    scores["grand"] = grand.reduce([[r[2]] for r in runs], data)["grand"]
    per_seed = []
    for run, seed in zip(result.runs, common["seeds"]):
        run.model.eval()
        features = gradients.embeddings(run.model, data.x).double().numpy()
        per_seed.append(proto.distances(features, data.y.numpy(), data.num_classes, seed)
                        if np.isfinite(features).all() else np.full(len(data), np.nan))
    with np.errstate(invalid="ignore"):
        scores["prototypicality"] = np.mean(per_seed, axis=0)
    scores["cv_loss"] = CVLoss(folds=CV_FOLDS, **common).score_tensors(data).column(
        "cv_loss").to_numpy()
    el2n_values = np.asarray(scores["el2n"], dtype=float)
    aum_values = np.asarray(scores["aum"], dtype=float)
    signs = {"train_acc": result.summary["train_acc"]["mean"],
             "el2n_distinct_values": int(len(np.unique(el2n_values.round(4)))),
             "aum_max_abs": float(np.nanmax(np.abs(aum_values))) if np.isfinite(
                 aum_values).any() else None,
             "non_finite_scores": sorted(c for c, v in scores.items()
                                         if not np.isfinite(np.asarray(v, float)).all())}
    return scores, signs


def cleanlab_aurocs(x: np.ndarray, noisy: np.ndarray, flipped: np.ndarray, seed: int,
                    args) -> dict:
    from cleanlab.rank import get_label_quality_scores
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    models = {
        "logreg": make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)),
        "mlp": make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=(100,), max_iter=args.sk_mlp_iter, random_state=seed)),
    }
    folds = StratifiedKFold(CV_FOLDS, shuffle=True, random_state=seed)
    out = {}
    for name, model in models.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            probs = cross_val_predict(model, x, noisy, cv=folds, method="predict_proba")
        out[name] = float(roc_auc_score(flipped, -get_label_quality_scores(noisy, probs)))
    return out


def run_job(job) -> dict:
    """One dataset and flip seed: every score with and without standardization, cleanlab."""
    from threadpoolctl import threadpool_limits

    name, flip_seed, args = job
    torch.set_num_threads(1)
    # k-means on the collapsed embeddings of a diverged raw-scale run warns; the AUROC says it.
    warnings.filterwarnings("ignore", message="Number of distinct clusters")
    with threadpool_limits(1):
        x, y = load(name)
        num_classes = int(y.max()) + 1
        noisy, flipped = flip_labels(y, num_classes, flip_seed)
        data = TensorData(torch.from_numpy(x.astype(np.float32)), torch.from_numpy(noisy),
                          list(range(len(y))), num_classes)
        row = {"dataset": name, "flip_seed": flip_seed, "dynamics": {}, "signs": {}}
        started = time.perf_counter()
        for standardize in (True, False):
            setting = "standardized" if standardize else "raw"
            common = dict(model=args.model, model_params={"hidden": args.hidden},
                          epochs=args.epochs, seeds=list(range(args.seeds)), lr=args.lr,
                          batch_size=args.batch_size, standardize=standardize)
            scores, signs = dynamics_scores(data, common, args.el2n_epoch)
            row["dynamics"][setting] = {c: auroc(flipped, c, v) for c, v in scores.items()}
            row["signs"][setting] = signs
        row["dynamics_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        row["cleanlab"] = cleanlab_aurocs(x, noisy, flipped, flip_seed, args)
        row["cleanlab_seconds"] = time.perf_counter() - started
    return row


def summary(values) -> dict:
    """Mean and t-interval of the finite values, with how many were not finite."""
    finite = [v for v in values if v is not None]
    out = summarize(finite) if finite else {"mean": None, "std": None, "ci95": None, "n": 0}
    return {**out, "values": list(values), "non_finite": len(values) - len(finite)}


def conclude(name: str, rows: list[dict]) -> dict:
    x, y = load(name)
    dynamics = {setting: {c: summary([r["dynamics"][setting][c] for r in rows])
                          for c in SUSPICION} for setting in ("standardized", "raw")}
    cleanlab = {m: summary([r["cleanlab"][m] for r in rows]) for m in ("logreg", "mlp")}
    chosen = max(cleanlab, key=lambda m: cleanlab[m]["mean"])
    best = {}
    for setting, scores in dynamics.items():
        ranked = [c for c in scores if scores[c]["mean"] is not None]
        top = max(ranked, key=lambda c: scores[c]["mean"]) if ranked else None
        best[setting] = {"score": top, **(scores[top] if top else {"mean": None})}
    base = cleanlab[chosen]["mean"]
    top = best["standardized"]
    paired = summary([r["dynamics"]["standardized"][top["score"]] - r["cleanlab"][chosen]
                      for r in rows if r["dynamics"]["standardized"][top["score"]] is not None])
    return {
        "n": len(y), "features": x.shape[1], "classes": int(y.max()) + 1,
        "feature_range": [float(x.min()), float(x.max())],
        "largest_feature_std": float(x.std(axis=0).max()),
        "flipped": round(NOISE * len(y)), "flip_seeds": [r["flip_seed"] for r in rows],
        "dynamics_auroc": dynamics,
        "cleanlab_auroc": {**cleanlab, "chosen": chosen},
        "best_dynamics": best,
        "ratio_to_cleanlab": {s: (b["mean"] / base if b["mean"] is not None else None)
                              for s, b in best.items()},
        "loss_ratio_to_cleanlab": dynamics["standardized"]["loss"]["mean"] / base,
        "best_minus_cleanlab_paired": paired,
        "target_met": top["mean"] is not None and top["mean"] >= base,
        "signs_of_degeneracy": {s: [r["signs"][s] for r in rows]
                                for s in ("standardized", "raw")},
        "seconds": {"dynamics": sum(r["dynamics_seconds"] for r in rows),
                    "cleanlab": sum(r["cleanlab_seconds"] for r in rows)},
    }


def fmt(s: dict) -> str:
    if s.get("mean") is None:
        return "non-finite"
    ci = s.get("ci95")
    return f"{s['mean']:.4f}" + (f" [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else "")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--flip-seeds", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=3, help="model seeds per score")
    parser.add_argument("--model", default="mlp")
    parser.add_argument("--hidden", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--el2n-epoch", type=int, default=10)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--sk-mlp-iter", type=int, default=500)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--test", action="store_true",
                        help="a quick smoke run (2 flip seeds, 1 model seed, 4 epochs); "
                             "writes nothing")
    args = parser.parse_args()
    if args.test:
        args.flip_seeds, args.seeds, args.epochs, args.el2n_epoch = 2, 1, 4, 2
        args.sk_mlp_iter, args.datasets = 50, "wine,breast_cancer"
    torch.set_num_threads(1)
    names = args.datasets.split(",")
    started = time.perf_counter()
    jobs = [(name, seed, args) for name in names for seed in range(args.flip_seeds)]
    rows = list(map_processes(run_job, jobs, workers=args.workers))
    wall = time.perf_counter() - started
    results = {name: conclude(name, [r for r in rows if r["dataset"] == name])
               for name in names}
    for name, res in results.items():
        chosen = res["cleanlab_auroc"]["chosen"]
        for setting in ("standardized", "raw"):
            best = res["best_dynamics"][setting]
            print(f"{name:14s} {setting:12s} best {best['score']!s:22s} {fmt(best)}")
        print(f"{name:14s} {'':12s} loss {'':22s} "
              f"{fmt(res['dynamics_auroc']['standardized']['loss'])}")
        print(f"{name:14s} cleanlab ({chosen:6s})  {'':22s} "
              f"{fmt(res['cleanlab_auroc'][chosen])}  target met: {res['target_met']}")
    print(f"wall {wall:.0f} s")
    if args.test:
        return
    path = write_result("label_quality", {
        "what": ("AUROC for finding 10% flipped labels in raw-scale tabular data (higher is "
                 "better): training-dynamics scores with and without input standardization "
                 "against cleanlab's label quality from 5-fold cross-validated probabilities "
                 "of a standardized scikit-learn model"),
        "target": "best standardized dynamics score's mean AUROC >= cleanlab's",
        "target_met": all(r["target_met"] for r in results.values()),
        "interval": "95% Student-t over flip seeds",
        "train": {"model": args.model, "model_params": {"hidden": args.hidden},
                  "epochs": args.epochs, "seeds": args.seeds, "lr": args.lr,
                  "optimizer": "sgd", "momentum": 0.9, "batch_size": args.batch_size,
                  "el2n_epoch": args.el2n_epoch, "grand_epoch": args.el2n_epoch,
                  "grand_params": "all", "prototypicality": "embedding, global k-means, cosine",
                  "cv_folds": CV_FOLDS},
        "cleanlab_models": {"logreg": "StandardScaler + LogisticRegression(max_iter=5000)",
                            "mlp": f"StandardScaler + MLPClassifier((100,), "
                                   f"max_iter={args.sk_mlp_iter})",
                            "cv": f"StratifiedKFold({CV_FOLDS}, shuffle, seed = flip seed)"},
        "noise": NOISE, "workers": args.workers, "wall_seconds": wall,
        "torch": torch.__version__, "cleanlab": _version("cleanlab"), "datasets": results})
    print(f"wrote {path}")


def _version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
