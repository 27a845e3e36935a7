"""Hyper-parameter search with optuna, on a validation split carved from the TRAIN part.

Tuning on the test part and then reporting the test score overstates accuracy (the parameters were
chosen to fit those very events). Here every trial fits on ``validation.train`` and is scored on
``validation.test``, both inside the outer split's train part, so the test part stays unseen until
the caller asks, once, for the honest last number (``holdout_score``). Search spaces live here, one
function per model name, so model modules stay free of the optional optuna dependency.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pandas as pd

from recsmith.config import Weight
from recsmith.errors import MissingExtraError, ValidationError
from recsmith.evaluation.metrics import METRICS
from recsmith.evaluation.runner import evaluate_model, evaluate_models, ground_truth, item_features
from recsmith.evaluation.split import Split, SplitSpec, validation_split
from recsmith.events.schema import Item
from recsmith.features.interactions import Interactions
from recsmith.features.items import ItemCatalog
from recsmith.models.registry import model_class

#: optuna trial → model params. The trial is typed ``Any``: optuna is an optional extra.
SearchSpace = Callable[[Any], dict[str, Any]]


def _neighbours(trial: Any) -> dict[str, Any]:
    return {
        "neighbors": trial.suggest_int("neighbors", 10, 500, log=True),
        "shrinkage": trial.suggest_float("shrinkage", 0.0, 100.0),
        "binary": trial.suggest_categorical("binary", [False, True]),
    }


def _ials(trial: Any) -> dict[str, Any]:
    return {
        "factors": trial.suggest_int("factors", 16, 256, log=True),
        "regularization": trial.suggest_float("regularization", 1e-3, 1.0, log=True),
        "alpha": trial.suggest_float("alpha", 0.5, 50.0, log=True),
        "iterations": trial.suggest_int("iterations", 5, 30),
    }


def _bpr(trial: Any) -> dict[str, Any]:
    return {
        "factors": trial.suggest_int("factors", 16, 256, log=True),
        "learning_rate": trial.suggest_float("learning_rate", 1e-3, 0.2, log=True),
        "regularization": trial.suggest_float("regularization", 1e-4, 0.1, log=True),
        "iterations": trial.suggest_int("iterations", 20, 300, log=True),
    }


def _cooccurrence(trial: Any) -> dict[str, Any]:
    return {
        "metric": trial.suggest_categorical("metric", ["confidence", "lift"]),
        "min_support": trial.suggest_int("min_support", 1, 10),
        "neighbors": trial.suggest_int("neighbors", 10, 500, log=True),
    }


def _sknn(trial: Any) -> dict[str, Any]:
    # No decay (None, the default) is a real candidate, so it is a choice, not a range end.
    decay = trial.suggest_categorical("recency_decay", [False, True])
    half_life = (
        trial.suggest_float("recency_half_life_days", 1.0, 365.0, log=True) if decay else None
    )
    return {
        "neighbors": trial.suggest_int("neighbors", 10, 500, log=True),
        "recency_half_life_days": half_life,
    }


SEARCH_SPACES: Mapping[str, SearchSpace] = MappingProxyType(
    {
        "ials": _ials,
        "bpr": _bpr,
        "itemknn": _neighbours,
        "userknn": _neighbours,
        "ease": lambda t: {
            "regularization": t.suggest_float("regularization", 1.0, 5000.0, log=True)
        },
        "rp3beta": lambda t: {
            "neighbors": t.suggest_int("neighbors", 10, 500, log=True),
            "alpha": t.suggest_float("alpha", 0.25, 2.0),
            "beta": t.suggest_float("beta", 0.0, 1.0),
        },
        "transitions": lambda t: {
            "steps": t.suggest_int("steps", 1, 20),
            "history": t.suggest_int("history", 1, 50, log=True),
        },
        "slist": lambda t: {
            "regularization": t.suggest_float("regularization", 1.0, 1000.0, log=True),
            "steps": t.suggest_int("steps", 1, 10),
            "history": t.suggest_int("history", 1, 20, log=True),
            "alpha": t.suggest_float("alpha", 0.0, 0.9),
        },
        "cooccurrence": _cooccurrence,
        "sknn": _sknn,
        "content": lambda t: {
            "half_life_days": t.suggest_float("half_life_days", 1.0, 365.0, log=True)
        },
        # Each hybrid trial fits every component: costly; its blend weights are learned anyway.
        "hybrid": lambda t: {"grid_steps": t.suggest_int("grid_steps", 2, 10)},
    }
)


def search_space(model: str) -> SearchSpace:
    """The model's search space; unknown models and models with nothing to tune are errors."""
    model_class(model)  # raises UnknownModelError naming the known models
    space = SEARCH_SPACES.get(model)
    if space is None:
        raise ValidationError("--model", f"{model} has nothing to tune")
    return space


@dataclass(frozen=True, slots=True)
class TuningSplits:
    """The outer split (its test part is the final exam) and the validation split trials use,
    carved from ``outer.train`` only."""

    outer: Split
    validation: Split


def tuning_splits(events: pd.DataFrame, spec: SplitSpec) -> TuningSplits:
    outer = spec.apply(events)
    return TuningSplits(outer, validation_split(outer.train, spec))


@dataclass(frozen=True, slots=True)
class TuneResult:
    """Best parameters, their validation score, and every trial's score in trial order."""

    model: str
    metric: str
    k: int
    best_params: dict[str, Any]
    best_value: float
    values: list[float]
    validation: str  # the validation split's name, e.g. validation:temporal:0.9
    evaluated_users: int


def _optuna() -> Any:
    try:
        import optuna
    except ImportError:
        raise MissingExtraError("optuna", "tune") from None
    return optuna


def tune_model(
    events: pd.DataFrame,
    model: str,
    spec: SplitSpec,
    weights: Mapping[str, Weight],
    *,
    n_trials: int,
    k: int = 10,
    metric: str = "ndcg",
    seed: int = 0,
    half_life_days: float | None = None,
    items: list[Item] | None = None,
    profiles: Mapping[str, Mapping[str, Any]] | None = None,
    on_trial: Callable[[int, float, float], None] | None = None,
) -> TuneResult:
    """Search ``model``'s space for ``n_trials`` seeded TPE trials, maximising ``metric``@``k``.
    ``profiles`` (user id → properties) reach a model that fits on them, as in ``train``.

    The validation matrix, its ground truth and item features are built once and shared by every
    trial; ``on_trial(number, value, best)`` is called after each one (progress display).
    """
    space = search_space(model)
    if metric not in METRICS:
        raise ValidationError("--metric", f"unknown {metric!r}; known: {', '.join(METRICS)}")
    if n_trials < 1:
        raise ValidationError("--trials", f"must be >= 1, got {n_trials}")
    optuna = _optuna()
    validation = tuning_splits(events, spec).validation
    if validation.train.empty or validation.test.empty:
        raise ValidationError("--split", f"{validation.name} has an empty side: too few events")
    data = Interactions.from_events(
        validation.train,
        weights,
        half_life_days=half_life_days,
        catalog=ItemCatalog.from_items(items) if items else None,
        profiles=profiles,
    )
    truth = ground_truth(data, validation.test, weights)
    if len(truth.user_ids) == 0:
        raise ValidationError("--split", f"{validation.name}: no validation user has history")
    features = item_features(data)

    def objective(trial: Any) -> float:
        params = space(trial)
        trial.set_user_attr("params", params)
        result = evaluate_model(model, data, truth, k, params, (metric,), features=features)
        return result.metrics[metric]

    callbacks = []
    if on_trial is not None:
        callbacks.append(lambda study, trial: on_trial(trial.number, trial.value, study.best_value))
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        sampler = optuna.samplers.TPESampler(seed=seed)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        study.optimize(objective, n_trials=n_trials, callbacks=callbacks)
    finally:
        optuna.logging.set_verbosity(verbosity)
    best = study.best_trial
    return TuneResult(
        model=model,
        metric=metric,
        k=k,
        best_params=dict(best.user_attrs["params"]),
        best_value=float(best.value),
        values=[float(t.value) for t in study.trials],
        validation=validation.name,
        evaluated_users=len(truth.user_ids),
    )


def holdout_score(
    events: pd.DataFrame,
    model: str,
    params: Mapping[str, Any],
    spec: SplitSpec,
    weights: Mapping[str, Weight],
    *,
    k: int = 10,
    metric: str = "ndcg",
    **options: Any,
) -> float:
    """``metric``@``k`` of ``params`` fitted on the outer train part and scored on its test part:
    the honest last step, to run once after tuning and never to feed back into it. ``options``
    (``half_life_days``, ``items``, ``profiles``) go to ``evaluate_models`` as they went to
    ``tune_model``."""
    res, _ = evaluate_models(events, spec, [model], k, weights, params={model: params}, **options)
    return res[0].metrics[metric]


# ---- the params file: [models.NAME] (what train reads) and [tuning.NAME] (how it was found) ----


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot store {value} in a params file")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a valid TOML basic string
    raise ValueError(f"cannot store {type(value).__name__} {value!r} in a params file")


def _load(path: Path, option: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(option, f"{path}: {exc}") from None


def write_params_file(path: Path, result: TuneResult, trials: int, seed: int) -> None:
    """Write (or update) ``[models.NAME]`` with the best params and ``[tuning.NAME]`` with how they
    were found; other models' sections already in the file are kept. ``None`` values are left out:
    every space yields None only where it is the model's default."""
    doc = _load(path, "--out") if path.exists() else {}
    sections = {"models": {}, "tuning": {}} | doc
    if set(sections) != {"models", "tuning"} or not all(
        isinstance(v, dict) and all(isinstance(p, dict) for p in v.values())
        for v in sections.values()
    ):
        raise ValidationError("--out", f"{path} is not a params file written by tune; pick another")
    sections["models"][result.model] = result.best_params
    sections["tuning"][result.model] = {
        "metric": f"{result.metric}@{result.k}",
        "validation_score": result.best_value,
        "split": result.validation,
        "trials": trials,
        "seed": seed,
    }
    lines = [
        "# Written by `recsmith tune`; `recsmith train --params-file` reads [models.NAME].",
        "",
    ]
    for table in ("models", "tuning"):
        for name, params in sorted(sections[table].items()):
            lines.append(f"[{table}.{name}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in params.items() if v is not None]
            lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def read_params_file(path: Path, model: str) -> dict[str, Any]:
    """The ``[models.<model>]`` table of a params file (``recsmith train --params-file``)."""
    if not path.exists():
        raise FileNotFoundError(f"--params-file: no such file: {path}")
    section = _load(path, "--params-file").get("models", {}).get(model)
    if not isinstance(section, dict):
        raise ValidationError("--params-file", f"no models.{model} table in {path}")
    return dict(section)
