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
# A field spec is (type, required). Types: a Python type or tuple of types, or a
# nested schema dict (a mapping with those keys), or "any".
STR, INT, NUM, BOOL, LIST = str, int, (int, float), bool, list

TOP = {"name": (STR, False), "description": (STR, False), "source": ((str, dict), True),
       "seed": (INT, False), "workers": (INT, False), "batch_size": (INT, False),
       "steps": (LIST, True)}
SOURCE = {"path": (STR, True), "id_column": (STR, False), "text_column": (STR, False),
          "max_doc_bytes": (INT, False)}
STEPS = {
    "fit": {"scorer": (STR, True), "save": (STR, True), "data": (dict, True),
            "params": (dict, False)},
    "score": {"scorers": (LIST, True)},
    "filter": "filter",  # one registered filter name as key, plus optional reason
    "tag": {"rules": (LIST, True), "default": (STR, False)},
    "apply": {"kept": (STR, False), "rejected": (STR, False), "everything": (STR, False),
              "tag_as": (STR, False), "tag_format": (STR, False), "transform": (LIST, False)},
    "experiment": "experiment",  # checked by EXPERIMENTS[kind]
}
EXPERIMENT = {"kind": (STR, True), "test": (STR, True), "train": (dict, True),
              "seeds": (INT, False), "output": (STR, False)}
EXPERIMENTS = {
    "prune-sweep": {**EXPERIMENT, "methods": (LIST, True), "fractions": (LIST, True),
                    "budget": (STR, False), "score_seeds": (INT, False)},
    "curriculum": {**EXPERIMENT, "score": (dict, True), "budgets": (LIST, True),
                   "orderings": (LIST, False), "pacings": (LIST, False), "start": (NUM, False),
                   "full_at": (NUM, False), "higher_is_harder": (BOOL, False),
                   "eval_points": (INT, False)},
    "lottery": {**EXPERIMENT, "levels": (INT, True), "fraction": (NUM, False),
                "rewind_step": (INT, False), "controls": (LIST, False),
                "output_fraction": (NUM, False), "scope": (STR, False),
                "target_acc": (NUM, False), "eval_every": (INT, False),
                "instability": (STR, False)},
}


def _where(path: Path, mapping, key=None) -> str:
    line = getattr(mapping, "lines", {}).get(key) if key is not None else None
    line = line or getattr(mapping, "line", 0)
    return f"{path}:{line}" if line else str(path)


def check_mapping(path: Path, mapping, schema: dict, what: str) -> None:
    """Raise on an unknown key, a missing required key or a value of the wrong type."""
    if not isinstance(mapping, dict):
        raise CurateError(f"{path}: {what} must be a mapping, got {type(mapping).__name__}")
    for key in mapping:
        if key not in schema:
            raise CurateError(f"{_where(path, mapping, key)}: unknown key {key!r} in {what}; "
                              f"expected one of: {', '.join(schema)}")
    for key, (kind, required) in schema.items():
        if key not in mapping:
            if required:
                raise CurateError(f"{_where(path, mapping)}: {what} is missing required key "
                                  f"{key!r}")
            continue
        value = mapping[key]
        bad = isinstance(value, bool) and kind in (INT, NUM)
        if bad or not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else " or ".join(
                k.__name__ for k in kind)
            raise CurateError(f"{_where(path, mapping, key)}: {what}.{key} must be {names}, "
                              f"got {value!r}")


def validate(path: Path, recipe: LineDict) -> None:
    """Check the whole recipe; raise a :class:`CurateError` naming the first problem."""
    from curate.core.registry import FILTERS, SCORERS

    check_mapping(path, recipe, TOP, "recipe")
    if isinstance(recipe["source"], dict):
        check_mapping(path, recipe["source"], SOURCE, "source")
    if not recipe["steps"]:
        raise CurateError(f"{_where(path, recipe, 'steps')}: steps is empty")
    for number, step in enumerate(recipe["steps"], start=1):
        if not isinstance(step, dict) or len(step) != 1:
            raise CurateError(f"{_where(path, recipe, 'steps')}: step {number} must be a mapping "
                              f"with one key, the step type ({', '.join(STEPS)})")
        (kind, body), = step.items()
        if kind not in STEPS:
            raise CurateError(f"{_where(path, step, kind)}: unknown step type {kind!r}; "
                              f"expected one of: {', '.join(STEPS)}")
        what = f"step {number} ({kind})"
        if kind == "filter":
            _check_filter(path, body, what, FILTERS)
            continue
        if kind == "experiment":
            _check_experiment(path, body, what)
            continue
        check_mapping(path, body, STEPS[kind], what)
        if kind == "score":
            for spec in body["scorers"]:
                name = spec.get("name") if isinstance(spec, dict) else spec
                if name not in SCORERS:
                    raise CurateError(f"{_where(path, body, 'scorers')}: {what}: unknown scorer "
                                      f"{name!r}; known: {', '.join(SCORERS.names())}")
        if kind == "fit" and body["scorer"] not in SCORERS:
            raise CurateError(f"{_where(path, body, 'scorer')}: {what}: unknown scorer "
                              f"{body['scorer']!r}")
        if kind == "apply" and body.get("tag_as") not in (None, "column", "prefix"):
            raise CurateError(f"{_where(path, body, 'tag_as')}: {what}.tag_as must be 'column' "
                              f"or 'prefix', got {body['tag_as']!r}")


def _check_experiment(path: Path, body, what: str) -> None:
    if not isinstance(body, dict) or body.get("kind") not in EXPERIMENTS:
        where = _where(path, body, "kind") if isinstance(body, dict) else str(path)
        raise CurateError(f"{where}: {what} needs kind: one of {', '.join(EXPERIMENTS)}")
    what = f"{what} ({body['kind']})"
    check_mapping(path, body, EXPERIMENTS[body["kind"]], what)
    from curate.experiment import method_spec
    from curate.core.registry import SCORERS

    try:
        scores = [method_spec(m).get("score") for m in body.get("methods", [])]
    except CurateError as exc:
        raise CurateError(f"{_where(path, body, 'methods')}: {what}: {exc}") from None
    if "score" in body:
        if "name" not in body["score"]:
            raise CurateError(f"{_where(path, body, 'score')}: {what}: score needs a name, "
                              "e.g. {name: el2n, model: cnn1d, epoch: 5}")
        scores.append(body["score"]["name"])
    for name in scores:
        if name is not None and name not in SCORERS:
            key = "score" if "score" in body else "methods"
            raise CurateError(f"{_where(path, body, key)}: {what}: unknown scorer {name!r}; "
                              f"known: {', '.join(SCORERS.names())}")


def _check_filter(path: Path, body, what: str, registry) -> None:
    if not isinstance(body, dict):
        raise CurateError(f"{path}: {what} must be a mapping such as {{where: '...'}}")
    names = [k for k in body if k != "reason"]
    unknown = [k for k in names if k not in registry or k == "tag"]
    if unknown:
        raise CurateError(f"{_where(path, body, unknown[0])}: unknown key {unknown[0]!r} in "
                          f"{what}; expected one of: "
                          f"{', '.join(k for k in registry.names() if k != 'tag')}, reason")
    if len(names) != 1:
        raise CurateError(f"{_where(path, body)}: {what} needs exactly one filter, got "
                          f"{names or 'none'}")
