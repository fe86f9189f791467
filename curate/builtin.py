"""Built-in datasets, referred to as ``builtin:NAME`` or ``builtin:NAME:key=value,...``.

Two kinds:

* text samples shipped inside the package (see ``curate/data/quickstart/PROVENANCE.md``),
  resolved to a file path;
* generated or package-provided tables (MNIST-1D, scikit-learn's digits,
  Fashion-MNIST from its IDX files), registered in :data:`TABLES` as functions that
  take keyword parameters and return a ``pyarrow.Table`` with ``id``, ``label`` and
  input columns.
"""

from __future__ import annotations

from pathlib import Path

from curate.core.errors import CurateError

DATA_DIR = Path(__file__).parent / "data"

TEXT_SAMPLES = {
    "quickstart": "quickstart/docs.jsonl.gz",
    "quickstart-good": "quickstart/reference_good.jsonl.gz",
    "quickstart-bad": "quickstart/reference_bad.jsonl.gz",
}

#: name -> "module:function" returning a pyarrow.Table; imported when used.
TABLES: dict[str, str] = {
    "mnist1d": "curate.train.builtin_data:mnist1d",
    "digits": "curate.train.builtin_data:digits",
    "fashion-mnist": "curate.train.builtin_data:fashion_mnist",
}


def parse_builtin(spec: str) -> tuple[str, dict]:
    """``"mnist1d:split=test,seed=1"`` -> ``("mnist1d", {"split": "test", "seed": 1})``."""
    from curate.registry import parse_spec

    return parse_spec(spec)


def resolve(spec: str):
    """The file path (text samples) or Arrow table (generated datasets) for a spec."""
    import importlib

    name, params = parse_builtin(spec)
    if name in TEXT_SAMPLES:
        if params:
            raise CurateError(f"built-in dataset {name!r} takes no parameters")
        return DATA_DIR / TEXT_SAMPLES[name]
    if name in TABLES:
        module, _, attr = TABLES[name].partition(":")
        try:
            return getattr(importlib.import_module(module), attr)(**params)
        except TypeError as exc:
            raise CurateError(f"bad parameters for built-in dataset {name!r}: {exc}") from None
    known = sorted([*TEXT_SAMPLES, *TABLES])
    raise CurateError(f"unknown built-in dataset {name!r}; known: {', '.join(known)}")
