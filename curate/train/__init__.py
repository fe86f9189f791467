"""The training harness: models trained on in-memory tensors, repeated over seeds.

    from curate.train import TensorData, TrainConfig, train_seeds
    train = TensorData.from_source("builtin:mnist1d")
    test = TensorData.from_source("builtin:mnist1d:split=test")
    result = train_seeds(TrainConfig(model="cnn1d", optimizer="adam", lr=1e-2,
                                     batch_size=100, steps=6000), train, test)
    result.summary["test_acc"]   # {"mean", "std", "ci95": [lo, hi], "n"}

Pruned networks: :mod:`curate.train.pruning` (masks, magnitude pruning),
:mod:`curate.train.lottery` (IMP with rewinding, controls), :mod:`curate.train.connectivity`
(linear mode connectivity), :mod:`curate.train.sharpness` (Hessian spectrum, predicted
prunable fraction) and :mod:`curate.train.prunability` (predicted against observed).
They return plain rows; their tables, plots and reports are experiments
(:mod:`curate.experiment.lottery`, :mod:`curate.experiment.prunability`).
"""

from curate.train.callbacks import Callback
from curate.train.data import TensorData
from curate.train.lottery import ImpRuns, imp
from curate.train.models import make_model
from curate.train.pruning import apply_masks, magnitude_masks, random_masks, sparsity
from curate.train.seeds import SeedsResult, summarize, train_seeds
from curate.train.trainer import RunResult, TrainConfig, evaluate, train

__all__ = ["Callback", "ImpRuns", "RunResult", "SeedsResult", "TensorData",
           "TrainConfig", "apply_masks", "evaluate", "imp", "magnitude_masks", "make_model",
           "random_masks", "sparsity", "summarize", "train", "train_seeds"]
