"""Selection policies over score tables: subsets, tags, coresets and curricula.

The per-step schedules (:mod:`filters.schedules`, which import torch) load on first use.
"""

from filters.base import Decision, Filter, select
from filters.ccs import CCS
from filters.curriculum import Curriculum, Pacing, difficulty_order, ordered_positions
from filters.labels import join_labels
from filters.subset import KeepFraction, RandomSubset, Rules, Threshold, Where
from filters.tag import Tag

#: Registered names, as used in recipes and on the command line.
FILTERS = {cls.name: cls for cls in (Rules, Where, Threshold, KeepFraction, RandomSubset, CCS,
                                     Curriculum, Tag)}

_SCHEDULES = ("CurriculumSchedule", "IndexSchedule", "MixtureSchedule", "RS2Schedule")


def __getattr__(name):
    if name in _SCHEDULES:
        from filters import schedules

        return getattr(schedules, name)
    raise AttributeError(f"module 'filters' has no attribute {name!r}")


__all__ = ["CCS", "FILTERS", "Curriculum", "CurriculumSchedule", "Decision", "Filter",
           "IndexSchedule", "KeepFraction", "MixtureSchedule", "Pacing", "RS2Schedule",
           "RandomSubset", "Rules", "Tag", "Threshold", "Where", "difficulty_order",
           "join_labels", "ordered_positions", "select"]
