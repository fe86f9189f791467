"""Registered names: scorers, filters, schedules, models, built-in datasets and experiments.

Each class (or function) registers itself beside its definition::

    from curate.core.registry import register_scorer

    @register_scorer
    class MyScorer(Scorer):
        name = "my_scorer"

Registries fill themselves on first lookup from the entry points of installed
distributions, one group per registry (``curate.scorers``, ``curate.filters``,
``curate.schedules``, ``curate.models``, ``curate.datasets``, ``curate.experiments``).
An entry point names a module (importing it runs its decorators) or an object
(registered under its ``name``). curate's own components arrive the same way, from the
entry points in its ``pyproject.toml``, so the engine never names a concrete scorer or
filter.

A user's own module is imported only on request: :func:`load_plugins`, called by the
CLI's ``--plugin MODULE`` and a recipe's ``plugins:`` list.
"""

from __future__ import annotations

import difflib
import importlib
import inspect

from curate.core.errors import CurateError


class Registry:
    """Names -> classes (or functions) of one kind, filled by :meth:`register` and entry points.

    Args:
        kind: what the registry holds, for messages (``"scorer"``).
        group: the entry-point group that plugins register under (``"curate.scorers"``).
    """

    def __init__(self, kind: str, group: str):
        self.kind, self.group = kind, group
        self._items: dict[str, object] = {}
        self._loaded = False
        self._broken: list[str] = []  # entry points that failed to import, for messages

    def register(self, obj=None, *, name: str | None = None):
        """Register ``obj`` under ``name`` (default: its ``name`` attribute); usable as a
        decorator with or without arguments. Registering another object under a taken
        name is an error."""
        def add(target):
            key = name or getattr(target, "name", None)
            if not key or not isinstance(key, str):
                raise TypeError(f"cannot register {target!r} as a {self.kind}: it has no name")
            known = self._items.get(key)
            if known is not None and known is not target and _origin(known) != _origin(target):
                raise CurateError(f"{self.kind} name {key!r} is taken by {_origin(known)}; "
                                  f"{_origin(target)} cannot register it too")
            self._items[key] = target
            return target

        return add if obj is None else add(obj)

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        from importlib.metadata import entry_points

        for point in sorted(entry_points(group=self.group), key=lambda p: p.name):
            try:
                loaded = point.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin is named, not fatal
                self._broken.append(f"{self.kind} plugin {point.name!r} ({point.value}) "
                                    f"failed to load: {type(exc).__name__}: {exc}")
                continue
            if not inspect.ismodule(loaded) and getattr(loaded, "name", None) not in self._items:
                self.register(loaded)

    def get(self, name: str):
        """The object registered as ``name``; an unknown name lists the known ones."""
        self._load()
        if name not in self._items:
            close = difflib.get_close_matches(str(name), self._items, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            broken = "".join(f"; {b}" for b in self._broken)
            raise CurateError(f"unknown {self.kind} {name!r}{hint}; known {self.kind}s: "
                              f"{', '.join(sorted(self._items)) or 'none'}{broken}")
        return self._items[name]

    def __contains__(self, name) -> bool:
        self._load()
        return name in self._items

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def items(self) -> list[tuple[str, object]]:
        self._load()
        return sorted(self._items.items())


def _origin(obj) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', obj)}"


SCORERS = Registry("scorer", "curate.scorers")
FILTERS = Registry("filter", "curate.filters")
#: Per-step index schedules (RS2, paced curricula): builders of batches, see filters.schedules.
SCHEDULES = Registry("schedule", "curate.schedules")
MODELS = Registry("model", "curate.models")
DATASETS = Registry("dataset", "curate.datasets")
EXPERIMENTS = Registry("experiment", "curate.experiments")

register_scorer = SCORERS.register
register_filter = FILTERS.register
register_schedule = SCHEDULES.register
register_model = MODELS.register
register_dataset = DATASETS.register
register_experiment = EXPERIMENTS.register


def load_plugins(modules) -> list[str]:
    """Import each user module named in ``modules`` (its decorators register what it
    defines); return their names. The explicit opt-in behind ``--plugin`` and ``plugins:``."""
    loaded = []
    for module in modules or ():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise CurateError(f"cannot import plugin module {module!r}: {exc}") from None
        loaded.append(module)
    return loaded


# -- parameters -------------------------------------------------------------------------
def parse_value(text: str):
    """A ``key=value`` value as written on the command line: int, float, bool, none, or the
    string itself. Lists are written ``a;b;c`` and split by the constructor."""
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


def parse_spec(spec: str, what: str = "scorer") -> tuple[str, dict]:
    """Split ``"name:key=val,key=val"`` into the name and its parameters.

    A repeated key is an error; list values are written ``key=a;b;c``.
    """
    name, _, rest = spec.partition(":")
    params: dict = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = part.partition("=")
        key = key.strip()
        if not eq or not key:
            raise CurateError(f"bad {what} parameter {part!r} in {spec!r}: expected key=value "
                              "(lists as key=a;b;c)")
        if key in params:
            raise CurateError(f"{what} parameter {key!r} is given twice in {spec!r}")
        params[key] = parse_value(value.strip())
    return name.strip(), params


def parameters(cls) -> list[inspect.Parameter]:
    """The keyword parameters of ``cls``'s constructor (or of a function), in order."""
    target = cls.__init__ if inspect.isclass(cls) else cls
    return [p for name, p in inspect.signature(target).parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


def accepted(cls) -> list[str]:
    """Every parameter name ``cls`` takes, including those its ``**kwargs`` pass to a base
    class (followed up the MRO)."""
    names: list[str] = []
    for klass in (cls.__mro__ if inspect.isclass(cls) else (cls,)):
        init = klass.__init__ if inspect.isclass(cls) else klass
        if inspect.isclass(cls) and "__init__" not in vars(klass):
            continue
        if init is object.__init__:
            break
        sig = inspect.signature(init)
        names += [n for n, p in sig.parameters.items() if n != "self" and p.kind not in (
            p.VAR_POSITIONAL, p.VAR_KEYWORD) and n not in names]
        if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            break
    return names


def build(registry: Registry, name: str, params: dict | None = None):
    """``registry.get(name)(**params)``: an unknown parameter or a bad value is one line."""
    cls = registry.get(name)
    params = dict(params or {})
    known = accepted(cls)
    for key in params:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise CurateError(f"{registry.kind} {name!r} has no parameter {key!r}{hint}; its "
                              f"parameters: {', '.join(known) or 'none'}")
    try:
        return cls(**params)
    except TypeError as exc:
        raise CurateError(f"bad parameters for {registry.kind} {name!r}: {exc}") from None


def describe(cls) -> list[dict]:
    """``[{"name", "type", "default"}]`` for each parameter (for ``curate scorers``)."""
    out, seen = [], set()
    for klass in (cls.__mro__ if inspect.isclass(cls) else (cls,)):
        if inspect.isclass(cls) and "__init__" not in vars(klass):
            continue
        init = klass.__init__ if inspect.isclass(cls) else klass
        if init is object.__init__:
            break
        sig = inspect.signature(init)
        for key, p in sig.parameters.items():
            if key == "self" or key in seen or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            seen.add(key)
            kind = p.annotation if isinstance(p.annotation, str) else getattr(
                p.annotation, "__name__", "") if p.annotation is not p.empty else ""
            out.append({"name": key, "type": str(kind),
                        "default": None if p.default is p.empty else p.default,
                        "required": p.default is p.empty})
        if not any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values()):
            break
    return out


def make_scorer(spec, params: dict | None = None):
    """A scorer from ``"name:key=value,..."`` (plus ``params``), or ``spec`` itself if it is
    already a scorer object."""
    if not isinstance(spec, str):
        return spec
    name, parsed = parse_spec(spec, "scorer")
    clash = set(parsed) & set(params or {})
    if clash:
        raise CurateError(f"scorer parameter {sorted(clash)[0]!r} is given twice in {spec!r}")
    return build(SCORERS, name, {**parsed, **(params or {})})
