"""What every training-dynamics scorer shares: parameters, training, seed averaging.

A dynamics scorer trains models on the dataset it scores, through the harness
(:func:`curate.train.train_seeds`), with recorder callbacks riding on the training
pass, and turns what they recorded into one row per example. Subclasses say which
callbacks each seed needs (:meth:`DynamicsScorer.callbacks`), how long to train
(:meth:`DynamicsScorer.training_epochs`) and how to reduce the runs to columns
(:meth:`DynamicsScorer.reduce`).

Inputs are standardized by default (``standardize=True``): every model trains
through ``TrainConfig(standardize=True)``, which fits each feature's mean and std on
that run's training rows (all rows, or a cross-validation fold's training rows) and
makes them part of the model, as a scikit-learn ``StandardScaler`` pipeline would.
On features with raw scales (integer attributes, pixel values 0-255) an
unstandardized network saturates its softmax at once, and EL2N, AUM and the rest
degenerate (EL2N takes one value per class, AUM reaches 1e7).
"""

from __future__ import annotations

import functools
import inspect

import numpy as np
import pyarrow as pa
import torch

from curate.core import validate as check
from curate.core.errors import CurateError
from curate.core.scorer import Scorer


class DynamicsScorer(Scorer):
    """Base class: trains ``seeds`` models and scores every example.

    Args (shared by every dynamics scorer):
        model: model-zoo name (``"logreg"``, ``"mlp"``, ``"cnn1d"``, ``"cnn"``,
            ``"resnet"``) or a factory ``(input_shape, num_classes) -> nn.Module``.
        epochs: training epochs (each example is presented once per epoch).
        seeds: number of seeds (``0 .. seeds-1``) or an explicit list of seeds.
        lr, optimizer, momentum, weight_decay, batch_size, schedule: as in
            :class:`curate.train.TrainConfig`.
        model_params: keyword arguments for the model factory.
        label_column: integer class labels (default ``"label"``).
        input_columns: input columns; None lets :meth:`TensorData.from_table` choose
            (the single list column, or every numeric column except id and labels).
        shape: per-example input shape, e.g. ``(1, 28, 28)`` or ``"1x28x28"`` (default:
            the dataset's ``curate.shape`` metadata, else flat).
        workers: processes for the seeds (1: in this process).
        standardize: standardize every input feature with the mean and std of the
            training rows (default True; see the module notes). False trains on the
            inputs as they are.
    """

    kind = "dynamics"
    needs_whole_dataset = True

    def __init__(self, model="mlp", epochs: int = 20, seeds=5, lr: float = 0.1,
                 optimizer: str = "sgd", momentum: float = 0.9, weight_decay: float = 0.0,
                 batch_size: int = 128, schedule: str = "constant", model_params=None,
                 label_column: str = "label", input_columns=None, shape=None, workers: int = 1,
                 standardize: bool = True):
        from curate.train.optim import OPTIMIZERS, SCHEDULES

        owner = self.name or type(self).__name__
        self.model = model if callable(model) else check.string(owner, "model", model)
        self.epochs = check.positive_int(owner, "epochs", epochs)
        self.seeds = seeds if isinstance(seeds, (list, tuple)) else check.positive_int(
            owner, "seeds", seeds)
        self.lr = check.number(owner, "lr", lr, minimum=0.0, strict_minimum=True)
        self.optimizer = check.choice(owner, "optimizer", optimizer, OPTIMIZERS)
        self.momentum = check.number(owner, "momentum", momentum, minimum=0.0)
        self.weight_decay = check.number(owner, "weight_decay", weight_decay, minimum=0.0)
        self.batch_size = check.positive_int(owner, "batch_size", batch_size)
        self.schedule = check.choice(owner, "schedule", schedule, SCHEDULES)
        self.model_params = dict(model_params or {})
        self.label_column = check.string(owner, "label_column", label_column)
        self.input_columns = _as_list(input_columns)
        self.shape = _as_shape(shape)
        self.workers = check.positive_int(owner, "workers", workers)
        self.standardize = check.boolean(owner, "standardize", standardize)

    # -- the Scorer contract -----------------------------------------------------------
    def params(self) -> dict:
        out = {}
        for cls in reversed(type(self).__mro__):
            if "__init__" not in vars(cls) or not issubclass(cls, DynamicsScorer):
                continue
            for key in inspect.signature(cls.__init__).parameters:
                if key not in ("self", "kwargs"):
                    # A parameter named like a method (GraNd's ``params``) is stored as key_.
                    value = getattr(self, f"{key}_", getattr(self, key, None))
                    out[key] = value if isinstance(value, (str, int, float, bool, type(None),
                                                           list, tuple, dict)) else repr(value)
        return out

    def columns_needed(self) -> list[str] | None:
        """All columns (None) unless ``input_columns`` names them."""
        if self.input_columns is None:
            return None
        return [*self.input_columns, self.label_column]

    def score_dataset(self, table: pa.Table) -> pa.Table:
        """Train on every row of ``table`` and return one row of scores per row."""
        return self.score_tensors(self.tensor_data(table))

    def score(self, data) -> pa.Table:
        """Score anything :class:`curate.io.Source` reads; the table has the id column first."""
        from curate.executor import score_source
        from curate.io import Source

        return score_source([self], Source(data))[self.name]

    # -- shared machinery --------------------------------------------------------------
    def tensor_data(self, table: pa.Table):
        from curate.train import TensorData

        return TensorData.from_table(table, label_column=self.label_column,
                                     input_columns=self.input_columns, shape=self.shape)

    def seed_list(self) -> list[int]:
        if isinstance(self.seeds, int):
            return list(range(self.seeds))
        return [int(s) for s in self.seeds]

    def train_config(self, epochs: int | None = None):
        from curate.train import TrainConfig

        return TrainConfig(model=self.model, model_params=self.model_params,
                           optimizer=self.optimizer, lr=self.lr, momentum=self.momentum,
                           weight_decay=self.weight_decay, batch_size=self.batch_size,
                           schedule=self.schedule, epochs=epochs or self.training_epochs(),
                           standardize=self.standardize)

    def training_epochs(self) -> int:
        return self.epochs

    def score_tensors(self, data) -> pa.Table:
        """Train one run per seed with this scorer's recorders; reduce to columns."""
        from curate.train import train_seeds

        result = train_seeds(self.train_config(), data, seeds=self.seed_list(),
                             callbacks_factory=functools.partial(self.callbacks, data=data),
                             workers=self.workers)
        return pa.table(self.reduce([run.callbacks for run in result.runs], data))

    def callbacks(self, seed: int, data) -> list:  # pragma: no cover - abstract
        """The recorder callbacks of one seed's run."""
        raise NotImplementedError

    def reduce(self, runs: list[list], data) -> dict:  # pragma: no cover - abstract
        """Columns (name -> array of N values) from each run's callbacks after training."""
        raise NotImplementedError


def mean_and_std(name: str, per_seed: list[torch.Tensor]) -> dict[str, np.ndarray]:
    """``<name>`` (mean over seeds) and ``<name>_std`` (population std; 0 for one seed)."""
    stacked = torch.stack([v.double() for v in per_seed]).numpy()
    return {name: stacked.mean(axis=0), f"{name}_std": stacked.std(axis=0)}


def _as_shape(shape):
    if isinstance(shape, str):
        try:
            return [int(s) for s in shape.replace(";", "x").split("x")]
        except ValueError:
            raise CurateError(f"bad shape {shape!r}: expected e.g. 1x28x28") from None
    return None if shape is None else [int(s) for s in shape]


def _as_list(columns):
    if columns is None:
        return None
    if isinstance(columns, str):
        return [c for c in columns.replace(";", ",").split(",") if c]
    return list(columns)
