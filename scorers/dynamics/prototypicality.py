"""Prototypicality: distance to the nearest k-means centroid (Sorscher et al., 2022).

Sorscher et al.'s self-supervised prototype metric clusters the whole dataset
(no labels) with k-means in the embedding of a pretrained self-supervised model
(SwAV) and scores each example by its cosine distance to the nearest centroid:
far from every prototype = hard. Without a pretrained network, this scorer embeds
with the penultimate layer of a model trained on the data itself
(``space="embedding"``, one model per seed) or uses the raw inputs
(``space="input"``, no training). ``per_class=True`` clusters each class
separately (with ``k`` per class, default 1: the class mean, a *supervised*
prototype, which is not the paper's default).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch
from sklearn.cluster import KMeans

from curate.core.errors import CurateError
from curate.core.registry import register_scorer
from curate.core.scorer import HARDER
from scorers.dynamics import gradients
from scorers.dynamics.base import DynamicsScorer, mean_and_std


@register_scorer
class Prototypicality(DynamicsScorer):
    """Distance to the nearest k-means centroid; larger = less prototypical (harder).

    Args:
        space: ``"embedding"`` (penultimate layer of a trained model, default) or
            ``"input"`` (the flattened inputs).
        k: clusters; default the number of classes (global) or 1 (per class).
        per_class: cluster each class on its own (default False, as in the paper).
        metric: ``"cosine"`` (default, as in the paper: rows are L2-normalised before
            k-means and the distance is ``1 - cos``) or ``"euclidean"``.

    With ``standardize`` (the default) ``space="input"`` clusters the standardized
    inputs, and the embedding model trains on them. k-means is scikit-learn's,
    seeded with the run's seed. Columns:
    ``prototypicality`` (mean over seeds) and ``prototypicality_std``.
    """

    name = "prototypicality"
    directions = {"prototypicality": HARDER}
    primary = "prototypicality"

    def __init__(self, space: str = "embedding", k: int | None = None, per_class: bool = False,
                 metric: str = "cosine", **kwargs):
        super().__init__(**kwargs)
        if space not in ("embedding", "input"):
            raise CurateError(f"space must be 'embedding' or 'input', not {space!r}")
        if metric not in ("cosine", "euclidean"):
            raise CurateError(f"metric must be 'cosine' or 'euclidean', not {metric!r}")
        self.space, self.k, self.per_class, self.metric = space, k, bool(per_class), metric

    def score_tensors(self, data) -> pa.Table:
        seeds = self.seed_list()
        if self.space == "input":
            inputs = data.standardized(*data.standardization()) if self.standardize else data
            features = [inputs.x.flatten(1)] * len(seeds)
        else:
            from curate.train import train_seeds

            result = train_seeds(self.train_config(), data, seeds=seeds, workers=self.workers)
            features = []
            for run in result.runs:
                run.model.eval()
                features.append(gradients.embeddings(run.model, data.x))
        per_seed = [self.distances(f.double().numpy(), data.y.numpy(), data.num_classes, seed)
                    for f, seed in zip(features, seeds)]
        return pa.table(mean_and_std(self.name, [torch.from_numpy(d) for d in per_seed]))

    def distances(self, features: np.ndarray, labels: np.ndarray, num_classes: int,
                  seed: int) -> np.ndarray:
        """``[N, D]`` features -> ``[N]`` distance to the nearest centroid."""
        if self.metric == "cosine":
            features = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True),
                                              1e-12)
        out = np.empty(len(features))
        groups = ([np.flatnonzero(labels == c) for c in range(num_classes)] if self.per_class
                  else [np.arange(len(features))])
        k = self.k or (1 if self.per_class else num_classes)
        for members in groups:
            if len(members):
                out[members] = self._nearest(features[members], min(k, len(members)), seed)
        return out

    def _nearest(self, features: np.ndarray, k: int, seed: int) -> np.ndarray:
        kmeans = KMeans(n_clusters=k, random_state=seed, n_init="auto").fit(features)
        if self.metric == "euclidean":
            return kmeans.transform(features).min(axis=1)
        centroids = kmeans.cluster_centers_
        centroids = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True),
                                           1e-12)
        return 1.0 - (features @ centroids.T).max(axis=1)
