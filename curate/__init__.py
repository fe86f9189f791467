"""curate: score, select, tag and order training data, and measure whether it helped.

The Python API (see :mod:`curate.api`)::

    import curate, filters
    scores = curate.score("docs.jsonl", ["gopher_quality", "c4_quality"])
    sel = curate.select(scores, filters.Rules(["gopher_quality", "c4_quality"]))
    kept = curate.apply("docs.jsonl", sel)
"""

__version__ = "0.1.0"

__all__ = ["CurateError", "apply", "load", "save", "score", "select"]


def __getattr__(name):
    # Imported lazily so that `import curate` and `curate --help` stay fast.
    if name in ("apply", "load", "save", "score", "select"):
        from curate import api

        return getattr(api, name)
    if name == "CurateError":
        from curate.core.errors import CurateError

        return CurateError
    raise AttributeError(f"module 'curate' has no attribute {name!r}")
