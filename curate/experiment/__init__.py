"""Training experiments over curated data, cached and repeated over seeds.

- :func:`prune_sweep`: accuracy of models trained on score-selected subsets
  (methods x kept fractions x seeds) against random subsets and the full data.
- :func:`curriculum_sweep`: accuracy of paced curricula (orderings x pacings x
  budgets x seeds) against standard shuffled training.

Both compute each difficulty score once per fingerprint, cache every finished run
(:mod:`curate.experiment.cells`) and write a tidy results table, a summary with 95%
intervals, plots and a Markdown report.
"""

from curate.experiment.curriculum import CurriculumResult, curriculum_sweep
from curate.experiment.prune_sweep import SweepResult, method_spec, prune_sweep

__all__ = ["CurriculumResult", "SweepResult", "curriculum_sweep", "method_spec", "prune_sweep"]
