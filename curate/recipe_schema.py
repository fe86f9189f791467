"""Reading and validating recipe YAML before anything runs.

Every mapping read from the file remembers the line of each key, so that an
unknown key or a bad value is reported as ``recipe.yaml:12: ...``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from curate.core.errors import CurateError


class LineDict(dict):
    """A mapping that remembers the line (1-based) of each key and of itself."""

    line: int = 0
    lines: dict


class _Loader(yaml.SafeLoader):
    pass


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    loader.flatten_mapping(node)
    out = LineDict()
    out.line = node.start_mark.line + 1
    out.lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key in out:
            raise CurateError(f"{loader.name}:{key_node.start_mark.line + 1}: key {key!r} "
                              "appears twice")
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = key_node.start_mark.line + 1
    return out


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def read_yaml(path: Path) -> LineDict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CurateError(f"{path}: cannot read recipe: {exc}") from None
    loader = _Loader(text)
    loader.name = str(path)
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise CurateError(f"{where}: invalid YAML: {problem}") from None
    finally:
        loader.dispose()
    if not isinstance(data, LineDict):
        raise CurateError(f"{path}: a recipe is a YAML mapping with 'source' and 'steps'")
    return data


# -- schema ---------------------------------------------------------------------------
# A field spec is (type, required). Types: a Python type or tuple of types.
STR, INT, NUM, BOOL, LIST = str, int, (int, float), bool, list

TOP = {"name": (STR, False), "description": (STR, False), "source": ((str, dict), True),
       "seed": (INT, False), "workers": (INT, False), "batch_size": (INT, False),
       "executor": (STR, False), "address": (STR, False), "shard_rows": (INT, False),
       "plugins": (LIST, False), "allow_outside_outputs": (BOOL, False),
       "steps": (LIST, True)}
SOURCE = {"path": (STR, True), "id_column": (STR, False), "text_column": (STR, False),
          "max_doc_bytes": (INT, False), "on_oversize": (STR, False)}
#: Keys of each step type; a filter step's key is a registered filter's name, and an
#: experiment step takes its experiment's own parameters besides these.
STEPS = {
    "fit": {"scorer": (STR, True), "save": (STR, True), "data": (dict, True),
            "params": (dict, False)},
    "score": {"scorers": (LIST, True)},
    "filter": None,
    "tag": {"rules": (LIST, True), "default": (STR, False)},
    "apply": {"kept": (STR, False), "rejected": (STR, False), "everything": (STR, False),
              "tag_as": (STR, False), "tag_format": (STR, False), "transform": (LIST, False)},
    "card": {"output": (STR, False), "title": (STR, False)},
    "experiment": {"kind": (STR, True), "test": (STR, True), "train": (dict, True),
                   "seeds": ((int, list), False), "output": (STR, False)},
}


def where(path: Path, mapping, key=None) -> str:
    """``path:line`` of ``key`` in ``mapping`` (or of the mapping itself)."""
    line = getattr(mapping, "lines", {}).get(key) if key is not None else None
    line = line or getattr(mapping, "line", 0)
    return f"{path}:{line}" if line else str(path)


def check_mapping(path: Path, mapping, schema: dict, what: str, *,
                  open_ended: bool = False) -> None:
    """Raise on an unknown key (unless ``open_ended``), a missing required key or a value
    of the wrong type."""
    if not isinstance(mapping, dict):
        raise CurateError(f"{path}: {what} must be a mapping, got {type(mapping).__name__}")
    for key in mapping:
        if key not in schema and not open_ended:
            raise CurateError(f"{where(path, mapping, key)}: unknown key {key!r} in {what}; "
                              f"expected one of: {', '.join(schema)}")
    for key, (kind, required) in schema.items():
        if key not in mapping:
            if required:
                raise CurateError(f"{where(path, mapping)}: {what} is missing required key "
                                  f"{key!r}")
            continue
        value = mapping[key]
        bad = isinstance(value, bool) and kind in (INT, NUM)
        if bad or not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(
                k.__name__ for k in kind)
            raise CurateError(f"{where(path, mapping, key)}: {what}.{key} must be {names}, "
                              f"got {value!r}")


def validate(path: Path, recipe: LineDict) -> None:
    """Check the recipe's shape (top-level keys, source, one type key per step); the steps'
    own contents are checked when :class:`curate.recipe.RecipeRun` builds them."""
    check_mapping(path, recipe, TOP, "recipe")
    if isinstance(recipe["source"], dict):
        check_mapping(path, recipe["source"], SOURCE, "source")
    if not recipe["steps"]:
        raise CurateError(f"{where(path, recipe, 'steps')}: steps is empty")
    for number, step in enumerate(recipe["steps"], start=1):
        if not isinstance(step, dict) or len(step) != 1:
            raise CurateError(f"{where(path, recipe, 'steps')}: step {number} must be a "
                              f"mapping with one key, the step type ({', '.join(STEPS)})")
        (kind, _), = step.items()
        if kind not in STEPS:
            raise CurateError(f"{where(path, step, kind)}: unknown step type {kind!r}; "
                              f"expected one of: {', '.join(STEPS)}")
