"""Sweep methods: which examples a run trains on, from registered filters, scorers, schedules.

A method is a dict (every key but ``name`` optional)::

    {"name": "el2n-hard",                  # the row label
     "filter": "keep_fraction",            # a registered filter (curate.core.registry.FILTERS)
     "params": {"keep": "hard"},           # the filter's parameters
     "score": "el2n",                      # a registered scorer, or None
     "score_params": {"model": "cnn1d"},   # the scorer's parameters
     "schedule": None,                     # a registered schedule (SCHEDULES), e.g. "rs2"
     "schedule_params": {},                # the schedule's parameters
     "selection": None}                    # a selection (table or parquet path), or
                                           # "selection": the one the recipe built

A run trains on a **fixed subset**, the examples the filter keeps (the filter sees the
method's score table, or only the ids when the method has no score) or those a given
selection keeps; or on a **schedule** (batches per step) over those examples, or over
all of them when there is neither filter nor selection (RS2). A schedule that presents
its positions in order (``curriculum``) takes them in the selection's ``order`` (a
``curriculum`` filter writes one).

Parameters the experiment fills in, unless the method sets them:

- ``fraction``: the cell's kept fraction, to the filter if its constructor takes one,
  else to the schedule if it takes one (setting it there is an error: the sweep owns
  it). A method whose filter and schedule take no fraction (``threshold``, a
  selection) runs once per seed, at the fraction it keeps.
- ``seed``: the run's seed, to the filter and the schedule when they take one.
- the filter's ``score_params`` (``by``, ``column``): the scorer's ``primary`` column.
- the filter's ``direction_param`` (``higher_is_harder``): ``scorer.direction(column)
  == HARDER``, so a score where low means hard (AUM) needs no special case.
- a filter with ``balance`` gets that label column joined from the data by id.

Shorthands: ``"random"`` (filter ``random``), ``"rs2"`` (schedule ``rs2``),
``"<score>-easy"``, ``"<score>-hard"``, ``"<score>-middle"`` (filter ``keep_fraction``
with ``keep`` easy/hard/middle) and ``"<score>-ccs"`` (filter ``ccs``). The earlier dict
keys still read: ``policy`` (``keep_fraction``, ``ccs``, ``random``, ``rs2``) with
``keep`` (default ``hard``), ``offset``, ``balance``, ``beta``, ``bins``, ``by`` and
``higher_is_harder`` as the filter's parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from curate.core.errors import CurateError
from curate.core.hashing import fingerprint

KEYS = ("name", "filter", "params", "score", "score_params", "schedule", "schedule_params",
        "selection")
SHORTHANDS = "'random', 'rs2', '<score>-<easy|hard|middle>' or '<score>-ccs'"
#: The earlier ``policy`` names and the keys each passed on to its filter.
POLICY_KEYS = {"keep_fraction": ("keep", "offset", "balance"), "ccs": ("beta", "bins", "balance"),
               "random": (), "rs2": ()}
LEGACY_KEYS = ("keep", "offset", "balance", "beta", "bins", "by", "higher_is_harder")
#: Schedule parameters the experiment always sets.
SCHEDULE_OWN = ("positions", "batch_size", "steps", "epochs")
#: The value of ``selection`` that names the selection the recipe's steps built.
RECIPE_SELECTION = "selection"


def method_spec(method) -> dict:
    """A method as a full dict with every key of :data:`KEYS` (see the module notes)."""
    if isinstance(method, str):
        return method_spec(_shorthand(method))
    if not isinstance(method, dict):
        raise CurateError(f"bad method {method!r}: expected a name ({SHORTHANDS}) or a mapping")
    spec = dict(method)
    if "policy" in spec:
        spec = _from_policy(spec)
    unknown = [k for k in spec if k not in KEYS]
    if unknown:
        raise CurateError(f"method {spec.get('name', method)!r}: unknown key {unknown[0]!r}; "
                          f"keys are: {', '.join(KEYS)}")
    name = spec.get("name")
    if not isinstance(name, str) or not name:
        raise CurateError(f"method {method!r} needs a name")
    for key in ("params", "score_params", "schedule_params"):
        spec[key] = dict(spec.get(key) or {})
    for key in ("filter", "score", "schedule", "selection"):
        spec.setdefault(key, None)
    if spec["filter"] is not None and spec["selection"] is not None:
        raise CurateError(f"method {name!r}: give a filter or a selection, not both")
    if spec["filter"] is None and spec["selection"] is None and spec["schedule"] is None:
        raise CurateError(f"method {name!r} needs a filter, a schedule or a selection")
    if spec["params"] and spec["filter"] is None:
        raise CurateError(f"method {name!r}: params are the filter's, but it has no filter")
    if spec["schedule_params"] and spec["schedule"] is None:
        raise CurateError(f"method {name!r}: schedule_params without a schedule")
    return {key: spec[key] for key in KEYS}


def _shorthand(method: str) -> dict:
    if method == "random":
        return {"name": method, "filter": "random"}
    if method == "rs2":
        return {"name": method, "schedule": "rs2"}
    score, _, how = method.rpartition("-")
    if not score or how not in ("easy", "hard", "middle", "ccs"):
        raise CurateError(f"bad method {method!r}: expected {SHORTHANDS}, or a mapping")
    if how == "ccs":
        return {"name": method, "filter": "ccs", "score": score}
    return {"name": method, "filter": "keep_fraction", "params": {"keep": how}, "score": score}


def _from_policy(spec: dict) -> dict:
    """The earlier form (``policy`` and its keys at the top level) as filter and params."""
    policy = spec.pop("policy")
    name = spec.get("name", "?")
    if policy not in POLICY_KEYS:
        raise CurateError(f"method {name!r}: policy must be one of {', '.join(POLICY_KEYS)}, "
                          f"got {policy!r}")
    clash = [k for k in ("filter", "params", "schedule") if k in spec]
    if clash:
        raise CurateError(f"method {name!r}: give policy or {clash[0]!r}, not both")
    params = {k: spec.pop(k) for k in LEGACY_KEYS if k in spec}
    if policy == "rs2":
        if params:
            raise CurateError(f"method {name!r}: policy rs2 takes no {next(iter(params))!r}")
        return {**spec, "schedule": "rs2"}
    if policy == "keep_fraction":
        params.setdefault("keep", "hard")
    return {**spec, "filter": policy, "params": params}


@dataclass
class Choice:
    """What one run of a method trains on.

    ``positions``: training positions (sorted, or in the selection's order for a schedule
    that needs one); ``fraction``: the cell's fraction, or the share kept when the method
    takes none; ``filter``: the filter instance (None without one); ``schedule_params``:
    the schedule's parameters with the experiment's filled in (None without a schedule).
    """

    positions: np.ndarray
    fraction: float
    filter: object = None
    schedule_params: dict | None = None


def check_method(method, *, selection: bool = False) -> dict:
    """Check ``method`` without data, scoring or a scorer instance; return its full dict.

    Checks the registered names, the names of the scorer's and the schedule's
    parameters, the parameters the experiment sets, and the filter's parameter values
    (built once with placeholder score columns). ``selection``: whether the experiment
    will be given the recipe's selection. A problem is a one-line :class:`CurateError`.
    """
    from curate.core.registry import FILTERS, SCHEDULES, SCORERS, accepted, build

    spec = method_spec(method)
    name = spec["name"]
    try:
        scorer = SCORERS.get(spec["score"]) if spec["score"] else None
        if scorer is not None:
            _check_names(f"scorer {spec['score']!r}", spec["score_params"], accepted(scorer))
        filter_cls = FILTERS.get(spec["filter"]) if spec["filter"] else None
        schedule = SCHEDULES.get(spec["schedule"]) if spec["schedule"] else None
        if schedule is not None:
            known = [a for a in accepted(schedule) if a not in SCHEDULE_OWN]
            _check_names(f"schedule {spec['schedule']!r}", spec["schedule_params"], known,
                         owned=SCHEDULE_OWN)
    except CurateError as exc:
        raise CurateError(f"method {name!r}: {exc}") from None
    takes = {"filter": accepted(filter_cls) if filter_cls else [],
             "schedule": accepted(schedule) if schedule else []}
    fraction_to = next((part for part in ("filter", "schedule") if "fraction" in takes[part]),
                       None)
    own = {"filter": spec["params"], "schedule": spec["schedule_params"]}
    if fraction_to and "fraction" in own[fraction_to]:
        raise CurateError(f"method {name!r}: the experiment sets the {fraction_to}'s fraction "
                          "(one per cell); remove it")
    if spec["selection"] == RECIPE_SELECTION and not selection:
        raise CurateError(f"method {name!r} trains on the recipe's selection, but none was "
                          "given (add filter steps before the experiment)")
    if filter_cls is not None:
        if filter_cls.score_params and scorer is None:
            raise CurateError(f"method {name!r}: filter {filter_cls.name!r} ranks by a score "
                              "column: give score (a registered scorer)")
        params = {**{p: "<score column>" for p in filter_cls.score_params},
                  **({filter_cls.direction_param: True} if filter_cls.direction_param else {}),
                  **({"fraction": 0.5} if fraction_to == "filter" else {}), **spec["params"]}
        try:
            build(FILTERS, spec["filter"], params)
        except CurateError as exc:
            raise CurateError(f"method {name!r}: {exc}") from None
    return spec


def _check_names(what: str, params: dict, known: list, owned=()) -> None:
    import difflib

    for key in params:
        if key in owned:
            raise CurateError(f"the experiment sets the {what.split()[0]}'s {key!r}; remove it")
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise CurateError(f"{what} has no parameter {key!r}{hint}; its parameters: "
                              f"{', '.join(known) or 'none'}")


class Method:
    """A validated method (see the module notes): registered parts looked up, parameters
    checked (:func:`check_method`), the scorer built and defaults from it filled in.
    Errors are one line naming the method.

    Args:
        method: a method dict or shorthand.
        score_seeds: the scorer's ``seeds`` unless ``score_params`` sets it (scorers
            that take ``seeds`` only).
        selection: the selection the recipe built (for ``selection: "selection"``).
    """

    def __init__(self, method, *, score_seeds=None, selection=None):
        from curate.core.registry import FILTERS, SCHEDULES, SCORERS, accepted, build

        self.spec = spec = check_method(method, selection=selection is not None)
        self.name = spec["name"]
        self.scorer = self.score_params = None
        if spec["score"] is not None:
            self.score_params = dict(spec["score_params"])
            if score_seeds is not None and "seeds" in accepted(SCORERS.get(spec["score"])):
                self.score_params.setdefault("seeds", score_seeds)
            try:
                self.scorer = build(SCORERS, spec["score"], self.score_params)
            except CurateError as exc:
                raise CurateError(f"method {self.name!r}: {exc}") from None
        self.filter_cls = FILTERS.get(spec["filter"]) if spec["filter"] else None
        self.schedule_fn = SCHEDULES.get(spec["schedule"]) if spec["schedule"] else None
        filter_args = accepted(self.filter_cls) if self.filter_cls else []
        schedule_args = accepted(self.schedule_fn) if self.schedule_fn else []
        self.fraction_to = ("filter" if "fraction" in filter_args else
                            "schedule" if "fraction" in schedule_args else None)
        self._seed_to = {"filter": "seed" in filter_args, "schedule": "seed" in schedule_args}
        self.selection = None
        if spec["selection"] is not None:
            self.selection = read_selection(spec["selection"], selection,
                                            f"method {self.name!r}")
        self.defaults = self._defaults()
        if self.filter_cls is not None:   # with the scorer's columns: fails here, not per cell
            self.filter_for(0.5, 0)

    def _defaults(self) -> dict:
        """Filter parameters taken from the scorer: score columns and the direction."""
        from curate.core.scorer import HARDER

        cls, given = self.filter_cls, self.spec["params"]
        if cls is None or self.scorer is None:
            return {}
        out = {}
        try:
            for param in (p for p in cls.score_params if p not in given):
                if self.scorer.primary is None:
                    raise CurateError(f"scorer {self.scorer.name!r} has no primary column; set "
                                      f"params.{param}")
                out[param] = self.scorer.primary
            if cls.direction_param and cls.direction_param not in given and cls.score_params:
                column = {**out, **given}[cls.score_params[0]]
                try:
                    out[cls.direction_param] = self.scorer.direction(column) == HARDER
                except CurateError as exc:
                    raise CurateError(f"{exc}; set params.{cls.direction_param}") from None
        except CurateError as exc:
            raise CurateError(f"method {self.name!r}: {exc}") from None
        return out

    # -- per cell -------------------------------------------------------------------------
    @property
    def takes_fraction(self) -> bool:
        """Whether the method's filter or schedule takes the cell's fraction."""
        return self.fraction_to is not None

    def filter_for(self, fraction: float | None, seed: int):
        """The filter for one cell (None without a filter)."""
        from curate.core.registry import FILTERS, build

        if self.filter_cls is None:
            return None
        params = {**self.defaults, **self.spec["params"]}
        if self.fraction_to == "filter":
            params["fraction"] = fraction
        if self._seed_to["filter"]:
            params.setdefault("seed", seed)
        try:
            return build(FILTERS, self.spec["filter"], params)
        except CurateError as exc:
            raise CurateError(f"method {self.name!r}: {exc}") from None

    def schedule_params(self, fraction: float | None, seed: int) -> dict | None:
        """The schedule's own parameters for one cell (None without a schedule)."""
        if self.schedule_fn is None:
            return None
        params = dict(self.spec["schedule_params"])
        if self.fraction_to == "schedule":
            params["fraction"] = fraction
        if self._seed_to["schedule"]:
            params.setdefault("seed", seed)
        return params

    def check_data(self, table: pa.Table, scores) -> None:
        """Fail before any training if the data lacks a column the method reads."""
        if self.scorer is not None and not scores.has(self.scorer.name):
            for column in self.scorer.columns_needed() or ():
                if column not in table.column_names:
                    raise CurateError(
                        f"method {self.name!r}: scorer {self.scorer.name!r} reads column "
                        f"{column!r}, which the data does not have; columns are: "
                        f"{', '.join(table.column_names)}")
        balance = {**self.defaults, **self.spec["params"]}.get("balance")
        if balance and balance not in table.column_names:
            raise CurateError(f"method {self.name!r}: balance column {balance!r} is not in the "
                              f"data; columns are: {', '.join(table.column_names)}")

    def choose(self, fraction: float | None, seed: int, table: pa.Table, ids,
               scores) -> Choice:
        """The training positions of one cell (``fraction`` None: a method that takes none)."""
        from curate.core.filter import select
        from curate.core.tables import kept_positions, ordered_positions

        chosen, step = None, self.filter_for(fraction, seed)
        if self.selection is not None:
            chosen = self.selection
        elif step is not None:
            chosen = select(self._score_table(table, scores), [step])
        try:
            if chosen is None:
                positions = np.arange(len(ids))
            elif getattr(self.schedule_fn, "needs_order", False):
                positions = ordered_positions(chosen, ids)
            else:
                positions = kept_positions(chosen, ids)
        except CurateError as exc:
            raise CurateError(f"method {self.name!r}: {exc}") from None
        if not len(positions):
            where = "" if fraction is None else f" at fraction {fraction:g}"
            raise CurateError(f"method {self.name!r} keeps no example{where}")
        share = fraction if self.takes_fraction else round(len(positions) / len(ids), 6)
        return Choice(positions, share, step, self.schedule_params(fraction, seed))

    def _score_table(self, table: pa.Table, scores) -> pa.Table:
        from filters.labels import join_labels

        params = {**self.defaults, **self.spec["params"]}
        if self.scorer is None:
            score_table = table.select(["id"])
        else:
            score_table = scores.get(self.scorer.name, self.score_params, table)
            for param in self.filter_cls.score_params:
                column = params.get(param)
                if column not in score_table.column_names:
                    raise CurateError(
                        f"method {self.name!r}: score column {column!r} not found; the scorer "
                        f"wrote {', '.join(c for c in score_table.column_names if c != 'id')}")
        if params.get("balance"):
            column = params["balance"]
            score_table = join_labels(score_table, table.select(["id", column]), column)
        return score_table

    # -- labels and keys ------------------------------------------------------------------
    @property
    def policy(self) -> str:
        """How the method picks its data, for the results table (e.g. ``keep_fraction``,
        ``rs2``, ``selection``, ``keep_fraction+rs2``)."""
        parts = [self.spec["filter"] or ("selection" if self.selection is not None else None),
                 self.spec["schedule"]]
        return "+".join(p for p in parts if p)

    def key(self, choice: Choice) -> dict:
        """The method as it enters a run's cache key.

        Methods the sweep could describe before they were filter specs (``random``,
        ``rs2``, ``keep_fraction`` and ``ccs`` with their earlier keys) keep the earlier
        description, so that the runs cached by earlier sweeps stay valid.
        """
        legacy = self._legacy(choice)
        if legacy is not None:
            return legacy
        spec = {k: v for k, v in self.spec.items() if k != "selection"}
        return {**spec, "selection": self.selection is not None,
                "filter_params": choice.filter.params() if choice.filter else None,
                "schedule_params": choice.schedule_params}

    def _legacy(self, choice: Choice) -> dict | None:
        spec, name = self.spec, self.name
        if self.selection is not None:
            return None
        if spec["schedule"] is not None:
            plain = spec["schedule"] == "rs2" and spec["filter"] is None \
                and not spec["schedule_params"]
            return {"name": name, "policy": "rs2"} if plain else None
        policy, given = spec["filter"], spec["params"]
        if policy == "random":
            return {"name": name, "policy": "random"} if not given else None
        keys = POLICY_KEYS.get(policy)
        if keys is None or spec["score"] is None or \
                any(k not in (*keys, "by", "higher_is_harder") for k in given):
            return None
        effective = choice.filter.params()
        out = {"name": name, "score": spec["score"], "policy": policy,
               "score_params": spec["score_params"], "by": effective["by"],
               "higher_is_harder": effective["higher_is_harder"],
               **{k: given[k] for k in keys if k in given}}
        if policy == "keep_fraction":
            out["keep"] = effective["keep"]
        return out

    def data_key(self, choice: Choice):
        """The key of a schedule's data (a fixed subset is keyed by its positions)."""
        if self._legacy(choice) == {"name": self.name, "policy": "rs2"}:
            return "rs2"
        return {"schedule": self.spec["schedule"], "params": choice.schedule_params,
                "positions": fingerprint(choice.positions.tolist())}


def read_selection(value, recipe_selection, what: str) -> pa.Table:
    """A selection from a table, a parquet path, or :data:`RECIPE_SELECTION` (the one the
    recipe's steps built, ``recipe_selection``); errors start with ``what``."""
    from curate.core.tables import validate_selection

    if isinstance(value, str) and value == RECIPE_SELECTION:
        if recipe_selection is None:
            raise CurateError(f"{what} trains on the recipe's selection, but none was given "
                              "(add filter steps before the experiment)")
        value = recipe_selection
    if not isinstance(value, pa.Table):
        import pyarrow.parquet as pq

        try:
            value = pq.read_table(value)
        except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
            raise CurateError(f"{what}: cannot read a selection from {value}: {exc}") from None
    try:
        return validate_selection(value)
    except CurateError as exc:
        raise CurateError(f"{what}: {exc}") from None


def selection_positions(value, recipe_selection, ids, what: str) -> np.ndarray:
    """Sorted positions into ``ids`` of the examples a selection (as for
    :func:`read_selection`) keeps; keeping none is an error."""
    from curate.core.tables import kept_positions

    table = read_selection(value, recipe_selection, what)
    try:
        positions = kept_positions(table, ids)
    except CurateError as exc:
        raise CurateError(f"{what}: {exc}") from None
    if not len(positions):
        raise CurateError(f"{what}: the selection keeps no example")
    return positions
