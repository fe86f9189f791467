"""Coverage-centric coreset selection (CCS, Zheng et al., ICLR 2023)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from curate.core import validate as check
from curate.core.filter import Decision, Filter, as_numpy
from curate.core.registry import register_filter
from filters.labels import class_budgets


@register_filter
class CCS(Filter):
    """Stratified sampling over a difficulty score that keeps the score range covered.

    1. Drop the hardest ``round(beta * n)`` examples (likely mislabelled).
    2. Split the remaining score range ``[min, max]`` into ``bins`` equal-width strata.
    3. Fill the budget ``round(fraction * n)`` from the smallest stratum up: each takes
       ``min(size, remaining // strata_left)`` (the allocation of the authors' code).
    4. Sample uniformly at random inside each stratum (``numpy`` generator with ``seed``).

    Missing (null or NaN) scores are dropped. If fewer examples than the budget are
    left after step 1, all of them are kept.

    ``balance`` names a label column: steps 1-4 then run within each class, on the
    class's own score range, with the budget and the dropped share split over the
    classes in proportion to their sizes (:func:`filters.labels.class_budgets`).

    Args:
        by: score column; higher means harder unless ``higher_is_harder=False``
            (e.g. for AUM, where the hardest examples have the lowest margins).
        fraction: share of the input to keep, in [0, 1].
        beta: share of the input dropped as hardest first, in [0, 1] (paper: 0 to 0.4;
            0.3 at 90% pruning on CIFAR-10).
        bins: number of strata (paper: 50).
        seed: sampling seed.
        balance: label column for class-balanced budgets (default None: global).
    """

    name = "ccs"
    score_params = ("by",)
    direction_param = "higher_is_harder"

    def __init__(self, by: str, fraction: float, beta: float = 0.0, bins: int = 50,
                 higher_is_harder: bool = True, seed: int = 0, balance: str | None = None,
                 reason: str | None = None):
        self.by = check.string("ccs", "by", by)
        self.fraction = check.fraction("ccs", "fraction", fraction)
        self.beta = check.fraction("ccs", "beta", beta)
        self.bins = check.positive_int("ccs", "bins", bins)
        self.higher_is_harder = check.boolean("ccs", "higher_is_harder", higher_is_harder)
        self.seed = check.non_negative_int("ccs", "seed", seed)
        self.balance = check.string("ccs", "balance", balance, optional=True)
        self.reason = check.string("ccs", "reason", reason, optional=True)

    def decide(self, scores: pa.Table) -> Decision:
        values = as_numpy(self.score_column(scores, self.by))
        n = len(values)
        hardness = values if self.higher_is_harder else -values
        labels = None if self.balance is None else self.score_column(scores, self.balance)
        rng = np.random.default_rng(self.seed)
        keep = np.zeros(n, dtype=bool)
        hardest = []
        for rows, (budget, dropped) in class_budgets(labels, n, (self.fraction, self.beta)):
            scored = rows[~np.isnan(values[rows])]
            hard_first = scored[np.lexsort((scored, -hardness[scored]))]
            hardest.append(hard_first[:dropped])
            pool = np.sort(hard_first[dropped:])
            keep[sample_strata(values[pool], budget, self.bins, rng, pool)] = True
        hardest = np.concatenate(hardest)
        reason = np.full(n, self.reason or f"ccs: not sampled ({self.fraction:g} by "
                         f"{self.by}, seed {self.seed})", dtype=object)
        reason[hardest] = self.reason or f"ccs: among hardest {self.beta:g} by {self.by}"
        reason[np.isnan(values)] = self.reason or f"{self.by} missing"
        return Decision(keep=keep, reason=reason)


def strata(values: np.ndarray, bins: int) -> np.ndarray:
    """Stratum index in ``[0, bins)`` of each value: equal-width bins over [min, max]."""
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    low, high = values.min(), values.max()
    if high == low:
        return np.zeros(len(values), dtype=np.int64)
    index = np.floor((values - low) / (high - low) * bins).astype(np.int64)
    return np.minimum(index, bins - 1)  # the maximum belongs to the last bin


def allocate(budget: int, sizes: np.ndarray) -> np.ndarray:
    """Budget per stratum: smallest first, each ``min(size, remaining // strata_left)``.

    Ties between equal sizes go to the lower stratum index first.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    out = np.zeros(len(sizes), dtype=np.int64)
    remaining = min(budget, int(sizes.sum()))
    for done, stratum in enumerate(np.argsort(sizes, kind="stable")):
        out[stratum] = min(sizes[stratum], remaining // (len(sizes) - done))
        remaining -= out[stratum]
    return out


def sample_strata(values: np.ndarray, budget: int, bins: int, rng: np.random.Generator,
                  positions: np.ndarray | None = None) -> np.ndarray:
    """CCS steps 2-4 on ``values`` [m]: the chosen entries of ``positions`` (default 0..m-1)."""
    positions = np.arange(len(values)) if positions is None else positions
    which = strata(values, bins)
    budgets = allocate(budget, np.bincount(which, minlength=bins))
    chosen = [rng.permutation(positions[which == b])[:budgets[b]] for b in range(bins)
              if budgets[b]]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)
