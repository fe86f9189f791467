"""Out-of-sample loss from K-fold cross-validation: the cheap baseline.

Each example is scored by a model that never trained on it: the data is split into
``folds`` stratified folds (one split, seeded by ``split_seed``); for each fold,
``seeds`` models train on the other folds and predict the held-out one. With
``standardize`` (the default) each fold's models standardize the inputs with the
mean and std of that fold's training rows only, never the held-out rows. These are
also the out-of-sample predicted probabilities that confident learning (cleanlab)
expects.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch
from sklearn.model_selection import KFold, StratifiedKFold

from curate.core.errors import CurateError
from curate.core.registry import register_scorer
from curate.core.scorer import HARDER
from scorers.dynamics import gradients
from scorers.dynamics.base import DynamicsScorer, mean_and_std


@register_scorer
class CVLoss(DynamicsScorer):
    """Cross-entropy of each example under models trained without it.

    Args:
        folds: number of folds (default 5); stratified by label when every class has
            at least ``folds`` examples.
        split_seed: seed of the fold split (the same for every model seed).

    Columns: ``cv_loss`` (mean over seeds), ``cv_loss_std``, and ``cv_loss_probs``
    (list of float32, the out-of-sample class probabilities averaged over seeds).
    """

    name = "cv_loss"
    directions = {"cv_loss": HARDER}
    primary = "cv_loss"

    def __init__(self, folds: int = 5, split_seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if int(folds) < 2:
            raise CurateError(f"folds must be at least 2, not {folds}")
        self.folds, self.split_seed = int(folds), int(split_seed)

    def splits(self, y: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """(train positions, held-out positions) per fold."""
        if np.bincount(y).min(initial=len(y)) >= self.folds and len(np.unique(y)) > 1:
            splitter = StratifiedKFold(self.folds, shuffle=True, random_state=self.split_seed)
        else:
            splitter = KFold(self.folds, shuffle=True, random_state=self.split_seed)
        return list(splitter.split(np.zeros(len(y)), y))

    def score_tensors(self, data) -> pa.Table:
        from curate.train import train_seeds

        seeds = self.seed_list()
        log_probs = torch.zeros(len(seeds), len(data), data.num_classes, dtype=torch.float64)
        for train_pos, held_out in self.splits(data.y.numpy()):
            result = train_seeds(self.train_config(), data, seeds=seeds, workers=self.workers,
                                 positions=torch.from_numpy(train_pos))
            held = torch.from_numpy(held_out)
            for i, run in enumerate(result.runs):
                run.model.eval()
                z = gradients.logits(run.model, data.x[held])
                log_probs[i, held] = torch.log_softmax(z.double(), dim=1)
        gold = data.y[None, :, None].expand(len(seeds), -1, 1)
        cols = mean_and_std(self.name, list(-log_probs.gather(2, gold).squeeze(2)))
        mean_probs = log_probs.exp().mean(dim=0).float().numpy()
        cols[self.col("probs")] = pa.array(list(mean_probs), pa.list_(pa.float32()))
        return pa.table(cols)
