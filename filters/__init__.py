"""Selection policies over score tables: subsets and tags."""

from filters.base import Decision, Filter, select
from filters.subset import KeepFraction, RandomSubset, Rules, Threshold, Where
from filters.tag import Tag

#: Registered names, as used in recipes and on the command line.
FILTERS = {cls.name: cls for cls in (Rules, Where, Threshold, KeepFraction, RandomSubset, Tag)}

__all__ = ["FILTERS", "Decision", "Filter", "KeepFraction", "RandomSubset", "Rules", "Tag",
           "Threshold", "Where", "select"]
