"""Language-model runs over seeds, one process per seed: :func:`train_lm_seeds`."""

from __future__ import annotations

from curate.train.lm.pool import TokenPool
from curate.train.lm.trainer import LMConfig, LMRun, train_lm
from curate.train.seeds import map_processes


def train_lm_seeds(config: LMConfig, train: TokenPool, heldout: dict[str, TokenPool],
                   seeds=(0, 1, 2), *, workers: int = 1) -> list[LMRun]:
    """:func:`train_lm` once per seed, in seed order; ``workers > 1`` runs seeds in that
    many spawned processes with one torch thread each (pools travel as paths)."""
    return list(map_processes(_run, [(config, train, heldout, s) for s in seeds], workers))


def _run(job) -> LMRun:
    config, train, heldout, seed = job
    return train_lm(config, train, heldout, seed=seed)
