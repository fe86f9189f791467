"""Selection policies over score tables: subsets, tags, coresets and curricula.

Every filter registers itself by name (``curate.core.registry.FILTERS``), so recipes
and the command line refer to them as ``keep_fraction``, ``ccs``, ``where``, ...
The per-step schedules (:mod:`filters.schedules`, which import torch) load on first use.
"""

from curate.core.filter import Decision, Filter, select
from filters.ccs import CCS
from filters.curriculum import Curriculum, Pacing, difficulty_order
from filters.labels import join_labels
from filters.subset import KeepFraction, RandomSubset, Rules, Threshold, Where
from filters.tag import Tag

_SCHEDULES = ("CurriculumSchedule", "IndexSchedule", "MixtureSchedule", "RS2Schedule")


def __getattr__(name):
    if name in _SCHEDULES:
        from filters import schedules

        return getattr(schedules, name)
    raise AttributeError(f"module 'filters' has no attribute {name!r}")


__all__ = ["CCS", "Curriculum", "CurriculumSchedule", "Decision", "Filter", "IndexSchedule",
           "KeepFraction", "MixtureSchedule", "Pacing", "RS2Schedule", "RandomSubset", "Rules",
           "Tag", "Threshold", "Where", "difficulty_order", "join_labels", "select"]
