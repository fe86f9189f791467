"""Registered names for scorers, filters and built-in datasets.

Names map to ``"module:Class"`` strings and are imported only when used, so that
importing :mod:`curate` (and ``curate --help``) stays fast.
"""

from __future__ import annotations

import importlib

from curate.core.errors import CurateError

SCORERS: dict[str, str] = {
    "gopher_quality": "scorers.text.gopher:GopherQuality",
    "gopher_repetition": "scorers.text.gopher:GopherRepetition",
    "c4_quality": "scorers.text.c4:C4Quality",
    "fineweb_quality": "scorers.text.fineweb:FineWebQuality",
    "fasttext_quality": "scorers.fasttext_quality:FastTextQuality",
    "langid": "scorers.langid:LangID",
    "perplexity": "scorers.perplexity:Perplexity",
    "exact_dup": "scorers.dedup:ExactDup",
    "minhash": "scorers.dedup:MinHashDup",
    "loss": "scorers.dynamics:Loss",
    "el2n": "scorers.dynamics:EL2N",
    "grand": "scorers.dynamics:GraNd",
    "forgetting": "scorers.dynamics:Forgetting",
    "aum": "scorers.dynamics:AUM",
    "cartography": "scorers.dynamics:Cartography",
    "prototypicality": "scorers.dynamics:Prototypicality",
    "cv_loss": "scorers.dynamics:CVLoss",
}


def _import(target: str):
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def scorer_class(name: str):
    if name not in SCORERS:
        raise CurateError(f"unknown scorer {name!r}; known scorers: {', '.join(sorted(SCORERS))}")
    return _import(SCORERS[name])


def parse_value(text: str):
    """Parse a ``key=value`` value from the CLI: int, float, bool, none, or string."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def parse_spec(spec: str) -> tuple[str, dict]:
    """Split ``"name:key=val,key=val"`` into the name and its parameters."""
    name, _, rest = spec.partition(":")
    params = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq:
            raise CurateError(f"bad scorer parameter {part!r} in {spec!r}: expected key=value")
        params[key.strip()] = parse_value(value.strip())
    return name.strip(), params


def make_scorer(name: str, params: dict | None = None):
    """Instantiate a registered scorer, turning bad parameters into a clear error."""
    cls = scorer_class(name)
    params = dict(params or {})
    try:
        return cls(**params)
    except TypeError as exc:
        raise CurateError(f"bad parameters for scorer {name!r}: {exc}") from None
