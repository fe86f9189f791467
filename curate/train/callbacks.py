"""The callback contract between :func:`curate.train.train` and dynamics recorders.

A training-dynamics scorer (loss, EL2N, forgetting, AUM, ...) subclasses
:class:`Callback` and records what it needs from the training pass itself, so
recording costs no second pass. Callbacks must be picklable: with
``train_seeds(workers > 1)`` they travel to a worker process and back.
"""

from __future__ import annotations

import torch


class Callback:
    """Hooks the trainer calls; every hook is a no-op by default.

    Order of calls in one run: ``on_train_begin`` once, then ``on_batch`` after
    every optimizer step, ``on_epoch_end`` after each complete pass over the
    training positions (a budget in steps may end mid-epoch, and that partial
    epoch gets no ``on_epoch_end``), and ``on_train_end`` once.
    """

    def on_train_begin(self, n_examples: int, num_classes: int) -> None:
        """``n_examples``: the size of the whole training TensorData (not of the subset)."""

    def on_batch(self, indices: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor,
                 losses: torch.Tensor, step: int) -> None:
        """One optimizer step.

        Args:
            indices: ``[B]`` int64 positions in the training TensorData.
            logits: ``[B, C]``, detached, from the forward pass used for this update
                (so computed before the step).
            targets: ``[B]`` int64 labels.
            losses: ``[B]`` per-example cross-entropy, detached.
            step: 0-based optimizer step.
        """

    def on_epoch_end(self, epoch: int, model: torch.nn.Module) -> None:
        """After epoch ``epoch`` (0-based); ``model`` is in train mode, do not modify it."""

    def on_train_end(self, model: torch.nn.Module) -> None:
        """After the last step, with the final model."""
