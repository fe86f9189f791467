"""Scores of the model as it is at one epoch: EL2N and GraNd (Paul et al., 2021).

Both evaluate the network at the chosen epoch on *all* training examples, as the
published definition does (not the stale per-batch logits of the training pass):
at the end of epoch ``e`` the :class:`~scorers.dynamics.recording.ScoreAtEpochs`
callback runs one batched pass over the training tensors, in eval mode. Epoch 0
is the initialisation: the run trains one step and the scorer evaluates the
step-0 checkpoint the harness keeps.

Training stops at the scoring epoch when the learning-rate schedule is constant
(later epochs cannot change the score); with any other schedule the run trains
all ``epochs`` so that the schedule up to the scoring epoch is the one asked for.
"""

from __future__ import annotations

import copy

import pyarrow as pa
import torch

from curate.core.errors import CurateError
from curate.core.registry import register_scorer
from curate.core.scorer import HARDER
from scorers.dynamics import gradients, statistics
from scorers.dynamics.base import DynamicsScorer, mean_and_std
from scorers.dynamics.recording import ScoreAtEpochs


class AtEpochScorer(DynamicsScorer):
    """Scores every example with ``per_example(model, x, y) -> [N]`` at epoch ``epoch``.

    Args:
        epoch: the scoring epoch, 0 (initialisation) .. ``epochs``; None means ``epochs``.
    """

    default_epoch: int | None = None

    def __init__(self, epoch: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.epoch = self.default_epoch if epoch is None else int(epoch)
        if self.epoch is None:
            self.epoch = self.epochs
        if not 0 <= self.epoch <= self.epochs:
            raise CurateError(f"epoch={self.epoch} must lie in 0..epochs={self.epochs}")

    def per_example(self, model, x, y) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def train_config(self, epochs: int | None = None):
        if self.epoch > 0:
            return super().train_config(epochs)
        from curate.train import TrainConfig

        return TrainConfig(model=self.model, model_params=self.model_params,
                           optimizer=self.optimizer, lr=self.lr, batch_size=self.batch_size,
                           steps=1, checkpoint_steps=(0,), standardize=self.standardize)

    def training_epochs(self) -> int:
        return self.epoch if self.schedule == "constant" else self.epochs

    def callbacks(self, seed: int, data) -> list:
        if self.epoch == 0:
            return []
        return [ScoreAtEpochs(self.per_example, [self.epoch], data.x, data.y)]

    def score_tensors(self, data):
        if self.epoch > 0:
            return super().score_tensors(data)
        from curate.train import train_seeds

        result = train_seeds(self.train_config(), data, seeds=self.seed_list(),
                             workers=self.workers)
        per_seed = []
        for run in result.runs:
            model = copy.deepcopy(run.model)
            model.load_state_dict(run.checkpoints[0])
            model.eval()
            per_seed.append(self.per_example(model, data.x, data.y))
        return pa.table(mean_and_std(self.name, per_seed))

    def reduce(self, runs, data) -> dict:
        per_seed = [next(c for c in run if isinstance(c, ScoreAtEpochs)).scores[self.epoch]
                    for run in runs]
        return mean_and_std(self.name, per_seed)


@register_scorer
class EL2N(AtEpochScorer):
    """EL2N: ``||softmax(f(x)) - onehot(y)||_2`` at epoch ``epoch``, averaged over seeds.

    Paul et al. score at epoch 20 of 200 and average 10 runs. Columns: ``el2n``,
    ``el2n_std``. Higher = harder (or mislabelled).
    """

    name = "el2n"
    directions = {"el2n": HARDER}
    primary = "el2n"

    def per_example(self, model, x, y) -> torch.Tensor:
        return statistics.el2n(gradients.logits(model, x), y)


@register_scorer
class GraNd(AtEpochScorer):
    """GraNd: per-example loss-gradient norm, averaged over seeds.

    Args:
        params: ``"all"`` parameters (default) or the ``"last"`` (output) layer's.
        epoch: default 0, the initialisation, as in Paul et al.'s GraNd.

    Computed with ``torch.func`` (``vmap(grad)``), exact per-example gradients.
    Columns: ``grand``, ``grand_std``. Higher = more influential / harder.
    """

    name = "grand"
    directions = {"grand": HARDER}
    primary = "grand"
    default_epoch = 0

    def __init__(self, params: str = "all", **kwargs):
        if params not in ("all", "last"):
            raise CurateError(f"params must be 'all' or 'last', not {params!r}")
        self.params_ = params
        super().__init__(**kwargs)

    def per_example(self, model, x, y) -> torch.Tensor:
        return gradients.grad_norms(model, x, y, params=self.params_)
