"""The tables of a study spec, each read and checked on its own: arms (or the older models
with overrides) and their run settings, seeds, claims with their margins, and [adaptive]. An
error names the file, the key and the fix; spec.parse reads the document as a whole.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from mnistlab.spec.limits import name_problem
from mnistlab.spec.measures import DIRECTIONS, SAME, UnknownMeasure, effect_problem, measure
from mnistlab.spec.run import ConfigError, RunConfig, is_user_model, locate_user_model
from mnistlab.spec.study import RESOLVED_SETTINGS, RUN_SETTINGS, Adaptive, Arm, Claim
from mnistlab.training.registry import MODELS


def _spec_error(path: Path, key: str, reason: str) -> ConfigError:
    return ConfigError(f"{path}: key '{key}': {reason}")


def _check_settings(path: Path, where: str, table: Any, allowed=RUN_SETTINGS) -> dict[str, Any]:  # noqa: ANN001
    if not isinstance(table, dict):
        raise _spec_error(path, where, "must be a table of run settings.")
    for key, value in table.items():
        if key == "dataset":  # every arm trains on the same data, so that seeds pair
            raise _spec_error(
                path,
                f"{where}.{key}",
                "the dataset is the study's, the same for every arm: set dataset = ... at the "
                'top of the spec (before any [table]), e.g. dataset = "data/my_images.npz".',
            )
        if key not in allowed:
            raise _spec_error(
                path,
                f"{where}.{key}",
                f"unknown setting.{_setting_hint(key, allowed)} Known: {', '.join(allowed)}.",
            )
        expected = type(getattr(RunConfig(), key))
        ok = (
            isinstance(value, (int, float)) and not isinstance(value, bool)
            if expected is float
            else type(value) is expected
        )
        if not ok:
            raise _spec_error(
                path, f"{where}.{key}", f"must be {expected.__name__}, got {value!r}."
            )
        if (found := _not_plain(f"{where}.{key}", value)) is not None:
            raise _spec_error(path, found[0], _NOT_PLAIN.format(kind=type(found[1]).__name__))
    return dict(table)


# Names other tools give a setting (PyTorch's and Keras' keywords), which difflib cannot
# find from the spec's shorter names.
SETTING_SYNONYMS = {
    "learning_rate": "lr",
    "learningrate": "lr",
    "lr_scheduler": "lr_schedule",
    "scheduler": "lr_schedule",
    "num_epochs": "epochs",
    "n_epochs": "epochs",
    "batchsize": "batch_size",
    "model_kwargs": "model_args",
    "optimiser": "optimizer",
}


def _model_hint(model: Any) -> str:
    """' Did you mean cnn2?' for a registered net's name mistyped, else ''."""
    import difflib

    near = difflib.get_close_matches(str(model).lower(), sorted(MODELS), n=1, cutoff=0.6)
    return f" Did you mean {near[0]}?" if near else ""


def _setting_hint(key: str, allowed: Any) -> str:
    import difflib

    known = list(allowed)
    near = [SETTING_SYNONYMS[key.lower()]] if key.lower() in SETTING_SYNONYMS else []
    near = [n for n in near if n in known] or difflib.get_close_matches(key, known, n=2)
    return f" Did you mean {' or '.join(near)}?" if near else ""


_EFFECT_FIX = "Give a difference such as 0.005, or a ratio above 0 such as 1.05 for a ratio metric."
_NOT_PLAIN = (
    "a {kind} is not a value a run setting can hold: settings are stored as JSON, so each value "
    'must be text, a number, true/false, or a list or table of those. Write it in quotes, e.g. "2024-01-31".'
)


def _not_plain(key: str, value: Any) -> tuple[str, Any] | None:
    """The dotted key and value of the first value inside that is not text, a number, a bool,
    or a list/table of those (TOML's dates and times), or None."""
    if isinstance(value, dict):
        for name, inner in value.items():
            if (found := _not_plain(f"{key}.{name}", inner)) is not None:
                return found
        return None
    if isinstance(value, list):
        for index, inner in enumerate(value):
            if (found := _not_plain(f"{key}[{index}]", inner)) is not None:
                return found
        return None
    return None if isinstance(value, (str, int, float, bool)) else (key, value)


def _parse_seeds(path: Path, value: Any) -> tuple[int, ...]:
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise _spec_error(path, "seeds", f"a count of seeds must be 1 or more, got {value}.")
        return tuple(range(value))
    if not isinstance(value, list) or not value:
        raise _spec_error(path, "seeds", "give a count (seeds = 10) or a list (seeds = [0, 1]).")
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in value):
        raise _spec_error(path, "seeds", f"seeds must be whole numbers of 0 or more, got {value}.")
    duplicates = sorted({s for s in value if value.count(s) > 1})
    if duplicates:
        raise _spec_error(path, "seeds", f"duplicate seed(s) {duplicates}; list each seed once.")
    return tuple(value)


def _arms_from_models(path: Path, data: dict[str, Any]) -> list[Arm]:
    """The older form: models = [...] with [overrides.MODEL], one arm per model named after it."""
    models = data["models"]
    if not isinstance(models, list) or not models or not all(isinstance(m, str) for m in models):
        raise _spec_error(path, "models", 'must be a list of model names, e.g. ["cnn2", "cnn3"].')
    for model in models:
        if model not in MODELS:
            raise _spec_error(
                path,
                "models",
                f"unknown model {model!r}.{_model_hint(model)} Known: {', '.join(sorted(MODELS))}.",
            )
    if len(set(models)) != len(models):
        raise _spec_error(path, "models", "lists a model twice.")
    overrides = data.get("overrides", {})
    if not isinstance(overrides, dict):
        raise _spec_error(path, "overrides", "must be a table of per-model tables.")
    for model in overrides:
        if model not in models:
            raise _spec_error(path, f"overrides.{model}", "is not one of the study's models.")
    return [
        Arm(model, model, _check_settings(path, f"overrides.{model}", overrides.get(model, {})))
        for model in models
    ]


def _arms_from_table(path: Path, table: Any, stored: bool = False) -> list[Arm]:
    if not isinstance(table, dict) or not table:
        raise _spec_error(
            path, "arms", 'must hold at least one arm table, e.g. [arms.base] model = "cnn2".'
        )
    arms = []
    for name, body in table.items():
        if problem := name_problem(name):
            raise _spec_error(path, f"arms.{name}", f"an arm's name: {problem}")
        if not isinstance(body, dict) or "model" not in body:
            raise _spec_error(
                path, f"arms.{name}", 'needs a model, e.g. model = "cnn2", plus any run settings.'
            )
        model = body["model"]
        if not isinstance(model, str) or (model not in MODELS and not is_user_model(model)):
            raise _spec_error(
                path,
                f"arms.{name}.model",
                f"unknown model {model!r}.{_model_hint(model)} Known: {', '.join(sorted(MODELS))}, "
                "or your own "
                'net as "path/to/file.py:ClassName" (relative to the spec) or '
                '"package.module:ClassName".',
            )
        settings = {k: v for k, v in body.items() if k != "model"}
        allowed = RUN_SETTINGS + RESOLVED_SETTINGS if stored else RUN_SETTINGS
        settings = _check_settings(path, f"arms.{name}", settings, allowed)
        if is_user_model(model) and "model_sha256" not in settings:
            try:
                source, sha256 = locate_user_model(model, path.parent)
            except ConfigError as error:
                raise _spec_error(path, f"arms.{name}.model", str(error)) from None
            settings |= {"model_sha256": sha256, "model_source": source}
        arms.append(Arm(name, model, settings))
    return arms


def _parse_claims(path: Path, value: Any) -> tuple[Claim, ...]:
    if not isinstance(value, list) or not value:
        raise _spec_error(
            path,
            "claims",
            'must be one or more [[claims]] tables, each with metric = "..." and '
            'direction = "higher" or "lower"; leave it out for the paper\'s three claims.',
        )
    claims: list[Claim] = []
    for index, table in enumerate(value):
        claims.append(_parse_claim(path, f"claims[{index}]", table, claims))
    return tuple(claims)


def _parse_claim(path: Path, where: str, table: Any, earlier: list[Claim]) -> Claim:  # noqa: ANN401 - a TOML value
    """One [[claims]] table, checked key by key against the claims before it."""
    if not isinstance(table, dict):
        raise _spec_error(path, where, "must be a table with metric and direction.")
    unknown = sorted(set(table) - {"metric", "direction", "margin", "effect"})
    if unknown:
        raise _spec_error(
            path,
            f"{where}.{unknown[0]}",
            "unknown key. A claim has: metric, direction and optionally margin and effect.",
        )
    for key in ("metric", "direction"):
        if key not in table:
            raise _spec_error(path, f"{where}.{key}", "is required.")
    try:
        metric = measure(table["metric"]).name
    except UnknownMeasure as error:
        raise _spec_error(path, f"{where}.metric", str(error)) from None
    if table["direction"] not in DIRECTIONS:
        raise _spec_error(
            path,
            f"{where}.direction",
            f"unknown direction {table['direction']!r}. Known: {', '.join(DIRECTIONS)} "
            "(what the claim says of each variant's value against the baseline's).",
        )
    if any(c.metric == metric for c in earlier):
        raise _spec_error(path, f"{where}.metric", f"{metric!r} is claimed twice.")
    if table["direction"] == SAME and "margin" not in table:
        raise _spec_error(
            path,
            f"{where}.margin",
            'is required with direction = "equivalent": the claim asks whether the two '
            "arms are the same within ±margin, and without a margin there is nothing to "
            "test (no finite number of seeds shows a difference to be exactly zero). Give "
            "the largest difference that would not matter, in the metric's units (margin = "
            "0.003 for 0.3 accuracy points) or as a ratio for a ratio metric (margin = "
            '1.05 for within 5%), or ask direction = "either" for any difference.',
        )
    effect = _parse_effect(path, where, metric, table)  # checked before the margin, as ever
    return Claim(metric, table["direction"], _parse_margin(path, where, table), effect)


def _parse_effect(path: Path, where: str, metric: str, table: dict[str, Any]) -> float | None:
    """The effect a claim's study is sized for, in the claim's units (None without one)."""
    effect = table.get("effect")
    number = isinstance(effect, (int, float)) and not isinstance(effect, bool)
    if effect is not None and (not number or effect_problem(metric, effect)):
        raise _spec_error(
            path,
            f"{where}.effect",
            f"must be a number in the claim's units, got {effect!r}"
            + (f": {effect_problem(metric, effect)}" if number else f". {_EFFECT_FIX}"),
        )
    return None if effect is None else float(effect)


def _parse_margin(path: Path, where: str, table: dict[str, Any]) -> float | None:
    """An equivalence margin: a ratio above 1 for ratio measures, else a positive difference."""
    if "margin" not in table:
        return None
    margin, ratio = table["margin"], measure(table["metric"]).log_scale
    number = isinstance(margin, (int, float)) and not isinstance(margin, bool)
    if not number or not math.isfinite(margin) or margin <= (1 if ratio else 0):
        wanted = (
            "a ratio above 1, e.g. margin = 1.05 (within 5% either way)"
            if ratio
            else "a positive difference in the metric's units, e.g. margin = 0.002"
        )
        raise _spec_error(path, f"{where}.margin", f"must be {wanted}, got {margin!r}.")
    return float(margin)


def _parse_adaptive(path: Path, table: Any, seeds: Any) -> Adaptive:
    if not isinstance(table, dict):
        raise _spec_error(
            path, "adaptive", "must be a table: [adaptive] max_seeds = 40, block = 5."
        )
    unknown = sorted(set(table) - {"max_seeds", "block"})
    if unknown:
        raise _spec_error(path, f"adaptive.{unknown[0]}", "unknown key. Known: max_seeds, block.")
    for key in ("max_seeds", "block"):
        value = table.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _spec_error(
                path, f"adaptive.{key}", f"must be a whole number of 1 or more, got {value!r}."
            )
    if isinstance(seeds, bool) or not isinstance(seeds, int):
        raise _spec_error(
            path, "seeds", "with [adaptive], seeds is the count of the first look, e.g. seeds = 10."
        )
    if table["max_seeds"] <= seeds:
        raise _spec_error(
            path, "adaptive.max_seeds", f"must be more than the first look's {seeds} seeds."
        )
    return Adaptive(table["max_seeds"], table["block"])
