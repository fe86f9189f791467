"""Callbacks that record training dynamics on the training pass itself.

:class:`PresentationRecorder` keeps, for every epoch and every example, the two
numbers from which loss, forgetting, AUM and cartography are all computed:

* the per-example cross-entropy of the forward pass used for the update, and
* the margin ``z_y - max_{i != y} z_i`` on the same logits (Pleiss et al.).

The gold-label probability is ``exp(-loss)`` and "predicted correctly" is
``margin > 0`` (the gold logit strictly above every other; an exact tie counts as
wrong), so nothing else needs storing. No Python loop runs over examples.

:class:`ScoreAtEpochs` scores every training example with the model as it is at
the end of chosen epochs (EL2N, GraNd), one batched pass over the tensors in
``on_epoch_end``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from curate.train import Callback


def margins(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Assigned logit minus the largest other logit: ``[B, C], [B] -> [B]``."""
    # Class-major layout: reducing over C becomes an elementwise max of C rows,
    # several times faster on CPU than a reduction over a short last dimension.
    by_class = logits.T.contiguous()
    assigned = by_class.gather(0, targets[None]).squeeze(0)
    return assigned - by_class.scatter(0, targets[None], float("-inf")).amax(dim=0)


class PresentationRecorder(Callback):
    """Per-epoch loss and margin of every example, from the training pass.

    After training, ``losses`` and ``margins`` are float32 tensors ``[E, N]`` (E epochs
    seen, N training examples); an example not presented in an epoch (a partial last
    epoch, a subset run) holds NaN there. An example presented twice in one epoch
    (positions with repeats) keeps one of its presentations.

    Per batch the recorder only copies the batch's logits, targets and losses into
    preallocated ``[N, C]`` / ``[N]`` buffers (three indexed writes); margins are
    computed once per epoch over all N examples, which keeps the per-step cost to a
    few microseconds.
    """

    def __init__(self):
        self.n = 0
        self._rows: list[torch.Tensor] = []
        self._logits = self._targets = self._losses = None

    def on_train_begin(self, n_examples: int, num_classes: int) -> None:
        self.n = n_examples
        self._rows = []
        self._logits = self._targets = self._losses = None

    def on_batch(self, indices, logits, targets, losses, step: int) -> None:
        if self._losses is None:
            self._logits = torch.zeros((self.n, logits.shape[1]), dtype=logits.dtype,
                                       device=logits.device)
            self._targets = torch.zeros(self.n, dtype=torch.long, device=logits.device)
            self._losses = torch.full((self.n,), float("nan"), device=logits.device)
        self._logits.index_copy_(0, indices, logits)
        self._targets.index_copy_(0, indices, targets)
        self._losses.index_copy_(0, indices, losses.to(self._losses.dtype))

    def on_epoch_end(self, epoch: int, model: torch.nn.Module) -> None:
        self._close_epoch()

    def on_train_end(self, model: torch.nn.Module) -> None:
        # A budget in steps may stop mid-epoch: keep that partial epoch too.
        if self._losses is not None and not torch.isnan(self._losses).all():
            self._close_epoch()
        self._logits = self._targets = self._losses = None

    def _close_epoch(self) -> None:
        losses = self._losses.float()
        margin = margins(self._logits.float(), self._targets)
        margin = torch.where(torch.isnan(losses), losses, margin)
        self._rows.append(torch.stack((losses, margin)))
        self._losses.fill_(float("nan"))

    def _stacked(self) -> torch.Tensor:
        if not self._rows:
            return torch.empty((0, 2, self.n))
        return torch.stack(self._rows).cpu()

    @property
    def losses(self) -> torch.Tensor:
        """``[E, N]`` training-pass cross-entropy per epoch (NaN where not presented)."""
        return self._stacked()[:, 0]

    @property
    def margins(self) -> torch.Tensor:
        """``[E, N]`` training-pass logit margin per epoch (NaN where not presented)."""
        return self._stacked()[:, 1]

    def __getstate__(self):
        # Rows recorded on an accelerator travel back to the parent as CPU tensors.
        state = dict(self.__dict__)
        state["_rows"] = [row.cpu() for row in self._rows]
        return state


class ScoreAtEpochs(Callback):
    """Score all training examples with the model at the end of chosen epochs.

    Args:
        fn: ``fn(model, x, y) -> Tensor [N]`` (or ``[N, D]``), run under the model's
            current parameters; it must not change them.
        epochs: 1-based epochs after which to score (epoch ``e`` = after ``e`` passes).
        x, y: the training inputs ``[N, ...]`` and labels ``[N]``, positions as in training.

    After training ``scores`` maps each requested epoch to its CPU tensor. The data
    references are dropped once every requested epoch is scored, so a callback sent
    back from a worker process does not carry the dataset.
    """

    def __init__(self, fn: Callable, epochs: Sequence[int], x: torch.Tensor, y: torch.Tensor):
        self.fn = fn
        self.epochs = sorted(set(int(e) for e in epochs))
        self.x, self.y = x, y
        self.scores: dict[int, torch.Tensor] = {}

    def on_epoch_end(self, epoch: int, model: torch.nn.Module) -> None:
        if epoch + 1 in self.epochs:
            self.score(epoch + 1, model)

    def score(self, epoch: int, model: torch.nn.Module) -> None:
        """Score with ``model`` now and store the result under ``epoch``."""
        was_training = model.training
        model.eval()
        try:
            device = next(model.parameters()).device
            self.scores[epoch] = self.fn(model, self.x.to(device), self.y.to(device)).detach().cpu()
        finally:
            model.train(was_training)
        if all(e in self.scores for e in self.epochs):
            self.x = self.y = None
