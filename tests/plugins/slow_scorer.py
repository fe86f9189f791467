"""A test plugin: a rule scorer that takes a while per batch, so a run can be killed
part-way through. Importable by test subprocesses and Ray workers (tests/plugins is on
their PYTHONPATH)."""

import time

import pyarrow as pa

from curate.core.registry import register_scorer
from curate.core.scorer import Scorer


@register_scorer
class SlowLength(Scorer):
    """``slow_length_chars``: characters per text, after ``delay`` seconds per batch."""

    name = "slow_length"

    def __init__(self, delay: float = 0.4, text_column: str = "text"):
        self.delay = delay
        self.text_column = text_column

    def score_batch(self, batch: pa.Table) -> pa.Table:
        time.sleep(self.delay)
        return pa.table({self.col("chars"): pa.array([len(t) for t in self.texts(batch)],
                                                     pa.int64())})


def process_id(_job) -> int:
    """The process a task ran in."""
    import os

    return os.getpid()


def failing_setup() -> None:
    """A worker set-up that fails, as one whose model file is missing does."""
    raise FileNotFoundError("no such model file: model.bin")
