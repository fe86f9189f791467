"""Difficulty statistics from recorded training dynamics (pure tensor functions).

Inputs are ``[E, N]`` float tensors over E epochs and N examples, as recorded by
:class:`~scorers.dynamics.recording.PresentationRecorder`: per-example training
loss and logit margin, NaN where the example was not presented in that epoch.
Each function returns ``[N]`` tensors; loops run over epochs, never over examples.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def _presented(matrix: torch.Tensor) -> torch.Tensor:
    return ~torch.isnan(matrix)


def nanmean(matrix: torch.Tensor) -> torch.Tensor:
    """Mean over presented epochs ``[E, N] -> [N]`` (NaN for an example never presented)."""
    return matrix.nanmean(dim=0)


def mean_loss(losses: torch.Tensor, at: str | Sequence[int] = "mean") -> torch.Tensor:
    """Training loss averaged over every epoch (``"mean"``) or over the listed epochs.

    Epochs are 1-based: epoch ``e`` is the e-th pass, row ``e - 1`` of ``losses``.
    """
    if at == "mean":
        return nanmean(losses)
    rows = [int(e) - 1 for e in at]
    if any(r < 0 or r >= len(losses) for r in rows):
        raise ValueError(f"epochs {list(at)} outside the {len(losses)} recorded epochs")
    return nanmean(losses[rows])


def area_under_margin(margins: torch.Tensor) -> torch.Tensor:
    """AUM (Pleiss et al., 2020): the logit margin averaged over presentations."""
    return nanmean(margins)


def forgetting(margins: torch.Tensor) -> dict[str, torch.Tensor]:
    """Forgetting statistics of one training run (Toneva et al., 2019).

    An example is correct at a presentation when its margin is positive. A
    forgetting event is a correct -> incorrect transition between consecutive
    presentations (epochs where it was not presented are skipped).

    Returns ``[N]`` tensors:

    * ``events`` (int64): forgetting events observed;
    * ``presentations`` (int64): times the example was presented;
    * ``never_learned`` (bool): never correct at any presentation;
    * ``count`` (int64): ``events``, or ``presentations`` for a never-learned example
      (the official code's convention; it exceeds any possible event count, which is
      at most ``presentations // 2``, so never-learned examples rank as the most
      forgettable rather than, wrongly, as unforgettable).
    """
    presented = _presented(margins)
    n = margins.shape[1]
    previous = torch.full((n,), -1, dtype=torch.int8)  # -1 unseen, 0 wrong, 1 correct
    events = torch.zeros(n, dtype=torch.int64)
    learned = torch.zeros(n, dtype=torch.bool)
    for row, seen in zip(margins, presented):
        correct = row > 0
        events += (seen & (previous == 1) & ~correct).long()
        learned |= seen & correct
        previous = torch.where(seen, correct.to(torch.int8), previous)
    count_presented = presented.sum(dim=0)
    never = ~learned
    return {"events": events, "presentations": count_presented, "never_learned": never,
            "count": torch.where(never, count_presented, events)}


def cartography(losses: torch.Tensor, margins: torch.Tensor) -> dict[str, torch.Tensor]:
    """Dataset-cartography coordinates (Swayamdipta et al., 2020) over epochs.

    ``confidence``: mean gold-label probability ``p = exp(-loss)``; ``variability``:
    its population standard deviation (as ``np.std`` in the official code);
    ``correctness``: the fraction of epochs predicted correctly (the official code
    stores the count; multiply by the number of epochs to get it).
    """
    presented = _presented(losses)
    probs = torch.exp(-losses)
    confidence = nanmean(probs)
    deviation = torch.where(presented, probs - confidence, torch.zeros_like(probs))
    variability = (deviation.pow(2).sum(dim=0) / presented.sum(dim=0)).sqrt()
    correct = torch.where(presented, (margins > 0).float(), torch.full_like(margins, torch.nan))
    return {"confidence": confidence, "variability": variability,
            "correctness": nanmean(correct)}


def el2n(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """EL2N of one model: ``||softmax(z) - onehot(y)||_2``, ``[N, C], [N] -> [N]``."""
    probs = torch.softmax(logits.float(), dim=1)
    error = probs - torch.nn.functional.one_hot(targets, probs.shape[1]).float()
    return error.norm(dim=1)
