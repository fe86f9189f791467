"""Scores read off the training pass: loss, forgetting, AUM, dataset cartography.

Each trains ``seeds`` models for ``epochs`` epochs with one
:class:`~scorers.dynamics.recording.PresentationRecorder` per run (the logits of the
forward pass that makes the update; no second pass), then reduces the recorded
``[epochs, N]`` loss and margin matrices with :mod:`scorers.dynamics.statistics`.
"""

from __future__ import annotations

import numpy as np
import torch

from curate.core.errors import CurateError
from curate.core.registry import register_scorer
from curate.core.scorer import EASIER, HARDER
from scorers.dynamics import statistics
from scorers.dynamics.base import DynamicsScorer, mean_and_std
from scorers.dynamics.recording import PresentationRecorder


class TrainingPassScorer(DynamicsScorer):
    """A dynamics scorer whose every run needs one :class:`PresentationRecorder`."""

    def callbacks(self, seed: int, data) -> list:
        return [PresentationRecorder()]

    @staticmethod
    def recorders(runs: list[list]) -> list[PresentationRecorder]:
        return [next(c for c in run if isinstance(c, PresentationRecorder)) for run in runs]


@register_scorer
class Loss(TrainingPassScorer):
    """Per-example training loss from the training pass.

    Args:
        at: ``"mean"`` (average over every epoch, default), or 1-based epochs as a
            list or a ``";"``-separated string (``"1;5"``): the average over those
            epochs, plus one column ``loss_epoch<e>`` per listed epoch.

    Columns: ``loss`` (mean over seeds), ``loss_std`` (its spread over seeds).
    Higher = harder.
    """

    name = "loss"
    directions = {"loss": HARDER}
    primary = "loss"

    def __init__(self, at="mean", **kwargs):
        super().__init__(**kwargs)
        self.at = _epochs_param(at)
        if self.at != "mean" and any(not 1 <= e <= self.epochs for e in self.at):
            raise CurateError(f"at={self.at}: epochs must lie in 1..{self.epochs}")

    def reduce(self, runs, data) -> dict:
        losses = [r.losses for r in self.recorders(runs)]
        cols = mean_and_std(self.name, [statistics.mean_loss(m, self.at) for m in losses])
        if self.at != "mean":
            for epoch in self.at:
                per_seed = [statistics.mean_loss(m, [epoch]).double() for m in losses]
                cols[f"{self.name}_epoch{epoch}"] = torch.stack(per_seed).mean(dim=0).numpy()
        return cols


@register_scorer
class Forgetting(TrainingPassScorer):
    """Forgetting events (Toneva et al., 2019), summed over seeds as in the paper.

    Columns:
        ``forgetting`` (int64): the ranking count, summed over seeds; in a run where
        the example was never learned it counts its number of presentations (the
        official code's convention), more than any observable number of events, so
        never-learned examples rank as the most forgettable.
        ``forgetting_std``: spread of the per-seed counts.
        ``forgetting_events`` (int64): observed correct -> incorrect transitions, summed.
        ``forgetting_never_learned`` (int64): seeds in which it was never learned.
        ``forgetting_unforgettable`` (bool): learned and never forgotten in every seed.
    """

    name = "forgetting"
    directions = {"forgetting": HARDER}
    primary = "forgetting"

    def reduce(self, runs, data) -> dict:
        stats = [statistics.forgetting(r.margins) for r in self.recorders(runs)]
        counts = torch.stack([s["count"] for s in stats])
        events = torch.stack([s["events"] for s in stats]).sum(dim=0)
        never = torch.stack([s["never_learned"] for s in stats]).sum(dim=0)
        return {self.name: counts.sum(dim=0).numpy(),
                f"{self.name}_std": counts.double().std(dim=0, unbiased=False).numpy(),
                f"{self.name}_events": events.numpy(),
                f"{self.name}_never_learned": never.numpy(),
                f"{self.name}_unforgettable": ((events == 0) & (never == 0)).numpy()}


@register_scorer
class AUM(TrainingPassScorer):
    """Area under the margin (Pleiss et al., 2020).

    Columns: ``aum`` (the logit margin ``z_y - max_{i != y} z_i`` averaged over
    every presentation, then over seeds) and ``aum_std``. Lower = more likely
    mislabelled; negative means the model mostly preferred another class.
    """

    name = "aum"
    directions = {"aum": EASIER}
    primary = "aum"

    def reduce(self, runs, data) -> dict:
        return mean_and_std(self.name, [statistics.area_under_margin(r.margins)
                                        for r in self.recorders(runs)])


@register_scorer
class Cartography(TrainingPassScorer):
    """Dataset-cartography coordinates (Swayamdipta et al., 2020).

    Columns (each averaged over seeds, with a ``_std`` spread):
    ``cartography_confidence`` (mean gold-label probability over epochs),
    ``cartography_variability`` (its population std over epochs) and
    ``cartography_correctness`` (fraction of epochs predicted correctly).
    Low confidence = hard to learn (often mislabelled); high variability = ambiguous.
    """

    name = "cartography"
    directions = {"cartography_confidence": EASIER, "cartography_variability": HARDER,
                  "cartography_correctness": EASIER}
    primary = "cartography_confidence"

    def reduce(self, runs, data) -> dict:
        stats = [statistics.cartography(r.losses, r.margins) for r in self.recorders(runs)]
        cols: dict[str, np.ndarray] = {}
        for key in ("confidence", "variability", "correctness"):
            cols.update(mean_and_std(self.col(key), [s[key] for s in stats]))
        return cols


def _epochs_param(at):
    """``"mean"``, an int, a list of ints or ``"1;5;10"`` -> ``"mean"`` or a list of ints."""
    if isinstance(at, str):
        if at == "mean":
            return at
        return [int(p) for p in at.replace(",", ";").split(";") if p.strip()]
    if isinstance(at, int):
        return [at]
    return [int(e) for e in at]
