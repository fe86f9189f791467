"""Training experiments over curated data, cached and repeated over seeds.

Every experiment is registered by name (``curate.core.registry.EXPERIMENTS``, filled
from this module by the ``curate.experiments`` entry point), with one calling convention::

    from curate.core.registry import EXPERIMENTS
    result = EXPERIMENTS.get("prune-sweep")(
        "builtin:mnist1d", "builtin:mnist1d:split=test", train_config=TrainConfig(...),
        seeds=3, out_dir="sweep", methods=["random", "el2n-hard"], fractions=[0.3, 0.5])

``fn(data, test_data, *, train_config, seeds, out_dir, workers=1, progress=False,
scores=None, selection=None, **own) -> result``: ``data``/``test_data`` are anything
:class:`curate.io.Source` reads; ``train_config`` a :class:`curate.train.TrainConfig`
or a mapping of its fields; ``seeds`` a count (``0..n-1``) or a list; ``scores``
precomputed score tables (scorer name -> table with ``id``); ``selection`` the
selection earlier recipe steps built (used where a parameter says ``"selection"``).
Each writes its tables, figures and ``report.md`` under ``out_dir``
(:mod:`curate.experiment.outputs`) and returns a result with ``trained`` and ``reused``
(training runs), ``scores_computed``, ``scores_reused``, ``seconds`` and ``report``.

- ``prune-sweep`` (:func:`prune_sweep`): methods x kept fractions x seeds against the
  full data; own parameters ``methods``, ``fractions``, ``budget``, ``score_seeds``.
- ``curriculum`` (:func:`curriculum_sweep`): paced orderings against standard training;
  ``score`` (a name, ``"name:key=value,..."`` or ``{"name": ..., **params}``),
  ``score_params``, ``by``, ``higher_is_harder``, ``orderings``, ``pacings``, ``budgets``,
  ``start``, ``full_at``, ``eval_points``.
- ``lottery`` (:func:`curate.experiment.lottery.lottery`): IMP with rewinding, controls
  and barriers; ``levels``, ``fraction``, ``rewind_step``, ``controls``,
  ``output_fraction``, ``scope``, ``target_acc``, ``eval_every``, ``barrier_points``,
  ``instability``, ``pretrain`` (None, ``"selection"`` or a selection).
- ``sharpness`` (:func:`curate.experiment.prunability.sharpness`): predicted against
  observed one-shot prunable fraction; ``rewind_step``, ``fractions``,
  ``hessian_examples``, ``top_k``, ``trace_samples``, ``lanczos_iters``, ``lanczos_tol``,
  ``tolerance``, ``eval_every``, ``retrain``.
- ``rewind-diet`` (:func:`curate.experiment.rewind_diet.rewind_diet_experiment`): IMP
  rewind points pre-trained on data-diet subsets; ``subsets`` (sweep methods),
  ``rewind_steps``, ``levels``, ``subset_fraction``, ``subset_seed``, ``score_seeds``,
  ``fraction``, ``tolerance``, ``scope``, ``output_fraction``.
- ``text-ablation`` (:func:`curate.experiment.text_ablation.text_ablation`): a small GPT
  trained on text pools (all, the selection, random of the same size, ...) at an equal
  token budget, bits per byte per held-out slice; ``train_config`` is an
  :class:`curate.train.lm.LMConfig`; ``pools``, ``baseline``, ``tokenizer``,
  ``text_column``, ``slice_column``.
- ``conditional-training`` (:func:`curate.experiment.conditional.conditional_training`):
  tag, don't drop: control tokens from ``tag`` rules over a scorer's segment scores,
  against plain and filtered training; the unwanted rate of generations and bits per
  byte; ``score``, ``tags``, ``default``, ``good``, ``segment``, ``untagged``, ``arms``,
  ``samples``, ``max_new_tokens``, ``temperature``, ``top_k``, ``prompt``, ...

Sweep methods (any registered filter over any registered scorer, a schedule, or a
selection) are described in :mod:`curate.experiment.methods`. :func:`check` checks an
experiment's own parameters (names, methods, scorers) before anything is read or run.
"""

from curate.core.errors import CurateError
from curate.core.registry import register_experiment
from curate.experiment.cells import as_train_config, seed_list
from curate.experiment.conditional import (
    ConditionalResult,
    check_conditional_params,
    conditional_training,
)
from curate.experiment.curriculum import CurriculumResult, curriculum_sweep
from curate.experiment.lottery import LotteryResult, lottery
from curate.experiment.methods import Method, check_method, method_spec
from curate.experiment.outputs import write_outputs, write_result
from curate.experiment.prunability import PrunabilityResult, sharpness
from curate.experiment.prune_sweep import SweepResult, prune_sweep
from curate.experiment.repetition import (
    RepetitionResult,
    check_repetition_params,
    config_type_for,
    repetition,
)
from curate.experiment.rewind_diet import DietResult, rewind_diet, rewind_diet_experiment
from curate.experiment.text_ablation import (
    TextAblationResult,
    check_ablation_params,
    text_ablation,
)
from curate.train.lm import LMConfig


@register_experiment(name="prune-sweep")
def prune_sweep_experiment(data, test_data, *, train_config, seeds, out_dir, workers: int = 1,
                           progress: bool = False, scores: dict | None = None, selection=None,
                           methods, fractions, budget: str = "same-steps",
                           score_seeds: int | None = None) -> SweepResult:
    """:func:`prune_sweep` under the registered calling convention."""
    return prune_sweep(data, test_data, methods=methods, fractions=fractions,
                       seeds=seed_list(seeds), budget=budget,
                       train_config=as_train_config(train_config), score_seeds=score_seeds,
                       out_dir=out_dir, workers=workers, progress=progress, scores=scores,
                       selection=selection)


@register_experiment(name="curriculum")
def curriculum_experiment(data, test_data, *, train_config, seeds, out_dir, workers: int = 1,
                          progress: bool = False, scores: dict | None = None, selection=None,
                          score, score_params: dict | None = None, by: str | None = None,
                          higher_is_harder: bool | None = None,
                          orderings=("easy_to_hard", "hard_to_easy", "random"),
                          pacings=("linear",), budgets, start: float = 0.1,
                          full_at: float = 0.8, eval_points: int = 10) -> CurriculumResult:
    """:func:`curriculum_sweep` under the registered calling convention (``selection`` is
    not used)."""
    name, params = _score_spec(score)
    return curriculum_sweep(data, test_data, score=name,
                            score_params={**params, **(score_params or {})}, by=by,
                            higher_is_harder=higher_is_harder, orderings=orderings,
                            pacings=pacings, budgets=budgets, seeds=seed_list(seeds),
                            start=start, full_at=full_at,
                            train_config=as_train_config(train_config),
                            eval_points=eval_points, out_dir=out_dir, workers=workers,
                            progress=progress, scores=scores)


def _score_spec(score) -> tuple[str, dict]:
    """``(name, params)`` of a scorer given as a name, ``"name:key=value,..."`` or a mapping."""
    from curate.core.registry import parse_spec

    if isinstance(score, dict):
        params = dict(score)
        if "name" not in params:
            raise CurateError(f"score needs a name, e.g. {{name: el2n, epoch: 5}}; got {score!r}")
        return params.pop("name"), params
    if not isinstance(score, str):
        raise CurateError(f"score must be a scorer name or a mapping, got {score!r}")
    return parse_spec(score)


register_experiment(lottery, name="lottery")
register_experiment(text_ablation, name="text-ablation")
register_experiment(sharpness, name="sharpness")
register_experiment(rewind_diet_experiment, name="rewind-diet")

def train_config_for(fn, fields):
    """The training config experiment ``fn`` takes (``fn.config_type``: a config class, or a
    function choosing one from the fields; default :class:`curate.train.TrainConfig`), from
    a config or a mapping of its fields."""
    config_type = getattr(fn, "config_type", None)
    if config_type is not None and not isinstance(config_type, type):
        config_type = config_type(fields)  # an experiment taking either kind of config
    return as_train_config(fields, config_type)


register_experiment(conditional_training, name="conditional-training")
text_ablation.config_type = conditional_training.config_type = LMConfig
text_ablation.check_params = check_ablation_params
conditional_training.check_params = check_conditional_params
register_experiment(repetition, name="repetition")
repetition.config_type = config_type_for
repetition.check_params = check_repetition_params

#: The parameters every registered experiment takes from its caller, not from ``params``.
INPUTS = ("data", "test_data", "train_config", "seeds", "out_dir", "workers", "progress",
          "scores", "selection")


def check(kind: str, params: dict, *, selection: bool = False) -> None:
    """Check experiment ``kind``'s own ``params`` without reading data or training: the
    name is registered, every parameter is known and the required ones are given, and
    (for curate's experiments) each method names a registered filter, scorer or schedule
    with parameters they take (:func:`curate.experiment.methods.check_method`; scorer
    parameter values are checked when the experiment runs: a model file it reads may be
    made by an earlier step). ``selection``: whether the caller will pass a
    selection (for methods with ``selection: "selection"``). Raises a one-line
    :class:`CurateError`."""
    import inspect

    from curate.core.registry import EXPERIMENTS, accepted

    fn = EXPERIMENTS.get(kind)
    known = [k for k in accepted(fn) if k not in INPUTS]
    for key in params:
        if key not in known:
            raise CurateError(f"experiment {kind!r} has no parameter {key!r}; its parameters: "
                              f"{', '.join(known)}")
    required = [name for name, p in inspect.signature(fn).parameters.items()
                if name in known and p.default is p.empty]
    missing = [k for k in required if k not in params]
    if missing:
        raise CurateError(f"experiment {kind!r} needs {missing[0]!r}")
    for key in {"prune-sweep": ("methods",), "rewind-diet": ("subsets",)}.get(kind, ()):
        if not isinstance(params[key], (list, tuple)) or not params[key]:
            raise CurateError(f"experiment {kind!r}: {key} must be a non-empty list")
        for method in params[key]:
            check_method(method, selection=selection)
    own_check = getattr(fn, "check_params", None)
    if own_check is not None:
        own_check(params, selection=selection)
    if kind == "curriculum":
        name, score_params = _score_spec(params["score"])
        check_method({"name": "curriculum", "filter": "curriculum", "score": name,
                      "score_params": {**score_params, **(params.get("score_params") or {})}})

__all__ = ["INPUTS", "ConditionalResult", "CurriculumResult", "DietResult", "LotteryResult",
           "Method", "PrunabilityResult", "RepetitionResult", "SweepResult", "TextAblationResult",
           "check", "check_method", "conditional_training", "curriculum_experiment",
           "curriculum_sweep", "lottery", "method_spec", "prune_sweep", "prune_sweep_experiment",
           "repetition", "rewind_diet", "rewind_diet_experiment", "sharpness", "text_ablation",
           "train_config_for", "write_outputs", "write_result"]
