"""Reading a study spec: the TOML file or a stored record, every key checked; an error names the
file, the key and the fix."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path
from typing import Any

from mnistlab.names import arm_count_key, study_run_keys
from mnistlab.spec.limits import (
    MAX_RECORD_CHARACTERS,
    MLFLOW_KEY_LIMIT,
    folder_name_problem,
    valid_name,
)
from mnistlab.spec.measures import DIRECTIONS, SAME, UnknownMeasure, measure
from mnistlab.spec.netargs import model_args_problem
from mnistlab.spec.owndata import check_sizes, resolve_dataset
from mnistlab.spec.ranking import parse_ranking
from mnistlab.spec.record import record_document, to_record
from mnistlab.spec.run import (
    ConfigError,
    RunConfig,
    check_recipe,
    is_user_model,
    locate_user_model,
)
from mnistlab.spec.study import (
    DEFAULT_THRESHOLDS,
    RESOLVED_SETTINGS,
    RUN_SETTINGS,
    Adaptive,
    Arm,
    Claim,
    StudySpec,
    paper_claims,
)
from mnistlab.training.datasets import DATASETS
from mnistlab.training.owndata import is_own_dataset
from mnistlab.training.registry import MODELS

SPEC_KEYS = (
    "name",
    "description",
    "question",
    "dataset",
    "seeds",
    "baseline",
    "settings",
    "arms",
    "models",
    "overrides",
    "thresholds",
    "primary_threshold",
    "claims",
    "adaptive",
    "strict",
    "dataset_sha256",  # these two: resolved from an .npz dataset, in a stored spec only
    "dataset_source",
    "compare",
    "ranking",
)


def _spec_error(path: Path, key: str, reason: str) -> ConfigError:
    return ConfigError(f"{path}: key '{key}': {reason}")


def _check_name_limits(path: Path, spec: StudySpec) -> None:
    """Every name a spec gives against every limit it will meet, before anything runs."""
    if problem := folder_name_problem(spec.name):
        raise _spec_error(path, "name", f"the study name {problem}")
    for arm in spec.arms:
        keys = [arm_count_key(arm.name)]
        if arm.name != spec.baseline:
            keys += [k for c in spec.claims for k in study_run_keys(arm.name, c.measure.column)]
        longest = max(keys, key=len)
        if len(longest) > MLFLOW_KEY_LIMIT:
            allowed = MLFLOW_KEY_LIMIT - (len(longest) - len(arm.name))
            raise _spec_error(
                path,
                f"arms.{arm.name}",
                f"the arm name is {len(arm.name)} characters, and the verdicts it is written "
                f"under make MLflow keys of up to {len(longest)} characters (such as "
                f"'{longest[:20]}...{longest[-30:]}'), over MLflow's limit of "
                f"{MLFLOW_KEY_LIMIT}. Shorten the arm name to at most {allowed} characters.",
            )


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
                path, f"{where}.{key}", f"unknown setting. Known: {', '.join(allowed)}."
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
    return dict(table)


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
                path, "models", f"unknown model {model!r}. Known: {', '.join(sorted(MODELS))}."
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
        if not valid_name(name):
            raise _spec_error(path, f"arms.{name}", "an arm name is letters, digits, - _ or .")
        if not isinstance(body, dict) or "model" not in body:
            raise _spec_error(
                path, f"arms.{name}", 'needs a model, e.g. model = "cnn2", plus any run settings.'
            )
        model = body["model"]
        if not isinstance(model, str) or (model not in MODELS and not is_user_model(model)):
            raise _spec_error(
                path,
                f"arms.{name}.model",
                f"unknown model {model!r}. Known: {', '.join(sorted(MODELS))}, or your own "
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
    claims = []
    for index, table in enumerate(value):
        where = f"claims[{index}]"
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
        if any(c.metric == metric for c in claims):
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
        effect = table.get("effect")
        if effect is not None and (
            not isinstance(effect, (int, float))
            or isinstance(effect, bool)
            or not math.isfinite(effect)
            or (measure(metric).log_scale and effect <= 0)
        ):
            raise _spec_error(
                path,
                f"{where}.effect",
                f"must be a number in the claim's units (a ratio above 0, e.g. 1.05, for a "
                f"ratio metric), got {effect!r}.",
            )
        claims.append(
            Claim(
                metric,
                table["direction"],
                _parse_margin(path, where, table),
                None if effect is None else float(effect),
            )
        )
    return tuple(claims)


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


def _refuse_identical_arms(path: Path, spec: StudySpec) -> None:
    seen: dict[str, str] = {}
    for arm in spec.arms:
        identity = spec.arm_config(arm, 0).config_hash()
        if identity in seen:
            raise _spec_error(
                path,
                f"arms.{arm.name}",
                f"has the same model and run settings as arm {seen[identity]!r}, so both would "
                "train the same runs. Change a setting of one of them, or remove one.",
            )
        seen[identity] = arm.name


def _check_model_args(path: Path, spec: StudySpec) -> None:
    """A registered net's model_args against its signature (spec.netargs)."""
    for arm in spec.arms:
        args = spec.arm_config(arm, spec.seeds[0]).model_args
        if problem := model_args_problem(arm.model, args):
            own = "model_args" in arm.settings
            key = f"arms.{arm.name}.model_args" if own else "settings.model_args"
            raise _spec_error(path, key, problem)


def parse_spec(data: dict[str, Any], path: Path, stored: bool = False) -> StudySpec:
    """Validate a parsed TOML document; every error names the file, the key and the reason.

    stored: the document is a stored spec (spec_from_record): its user nets' files and hashes
    were resolved when it was first read, and are taken as stored.
    """
    for key in data:
        if key not in SPEC_KEYS:
            raise _spec_error(path, key, f"unknown key. Known keys: {', '.join(SPEC_KEYS)}.")
    for key in ("name", "seeds"):
        if key not in data:
            raise _spec_error(path, key, "is required.")
    name = data["name"]
    if not valid_name(name):
        raise _spec_error(
            path, "name", "must be a name of letters, digits, - _ or . (not just dots)."
        )
    dataset = data.get("dataset", "mnist")
    if dataset not in DATASETS and not is_own_dataset(dataset):
        raise _spec_error(
            path,
            "dataset",
            f"unknown dataset {dataset!r}. Known: {', '.join(DATASETS)}, or your own images "
            'as an .npz file relative to the spec, "data/my_images.npz".',
        )
    if "models" in data and "arms" in data:
        raise _spec_error(path, "arms", "give either arms or models (one arm per model), not both.")
    if "models" not in data and "arms" not in data:
        raise _spec_error(
            path, "arms", "is required: [arms.NAME] tables, or models = [...] (one arm per model)."
        )
    if "overrides" in data and "models" not in data:
        raise _spec_error(
            path, "overrides", "goes with models; put an arm's settings in its table."
        )
    arms = (
        _arms_from_models(path, data)
        if "models" in data
        else _arms_from_table(path, data["arms"], stored)
    )
    names = [arm.name for arm in arms]
    baseline = data.get("baseline", names[0])
    if baseline not in names:
        raise _spec_error(
            path, "baseline", f"{baseline!r} is not one of the arms ({', '.join(names)})."
        )
    seeds = _parse_seeds(path, data["seeds"])
    settings = _check_settings(path, "settings", data.get("settings", {}))
    own_data, own = resolve_dataset(path, data, settings, stored)
    thresholds = data.get("thresholds", list(DEFAULT_THRESHOLDS))
    if (
        not isinstance(thresholds, list)
        or not thresholds
        or not all(
            isinstance(t, (int, float)) and not isinstance(t, bool) and 0 < t <= 1
            for t in thresholds
        )
    ):
        raise _spec_error(path, "thresholds", f"must be accuracies in (0, 1], got {thresholds!r}.")
    primary = data.get("primary_threshold", 0.95 if 0.95 in thresholds else thresholds[0])
    if primary not in thresholds:
        raise _spec_error(
            path, "primary_threshold", f"{primary!r} must be one of the thresholds {thresholds}."
        )
    claims = (
        _parse_claims(path, data["claims"]) if "claims" in data else paper_claims(float(primary))
    )
    if not isinstance(data.get("strict", False), bool):
        raise _spec_error(path, "strict", "must be true or false.")
    for key in ("description", "question"):
        if not isinstance(data.get(key, ""), str):
            raise _spec_error(path, key, "must be text in quotes.")
    adaptive = (
        _parse_adaptive(path, data["adaptive"], data["seeds"]) if "adaptive" in data else None
    )
    spec = StudySpec(
        name=name,
        arms=tuple(arms),
        seeds=seeds,
        baseline=baseline,
        claims=claims,
        dataset=dataset,
        settings=settings,
        thresholds=tuple(sorted(float(t) for t in thresholds)),
        primary_threshold=float(primary),
        question=data.get("question", ""),
        description=data.get("description", ""),
        source=str(path),
        adaptive=adaptive,
        strict=data.get("strict", False),
        **own_data,
        ranking=parse_ranking(path, data, names, claims),
    )
    try:
        spec.planned_runs()
        if not stored:  # a stored spec was checked when first read, and needs no torch now
            for arm in spec.arms:
                check_recipe(spec.arm_config(arm, spec.seeds[0]))
    except ConfigError as error:  # impossible values, e.g. batch_size = 0
        raise ConfigError(f"{path}: {error}") from None
    if own is not None:
        check_sizes(path, spec, own)
    if not stored:
        _check_model_args(path, spec)
    _refuse_identical_arms(path, spec)
    _check_name_limits(path, spec)
    size = len(json.dumps(to_record(spec)))
    if size > MAX_RECORD_CHARACTERS:
        raise ConfigError(
            f"{path}: the spec is {size:,} characters once stored, more than the "
            f"{MAX_RECORD_CHARACTERS:,} an MLflow tag holds. List fewer seeds by hand (seeds = "
            "COUNT gives 0..COUNT-1 in a few characters) or shorten the description."
        )
    return spec


def load_spec(path: Path) -> StudySpec:
    """Read and validate a study spec; a missing file lists the specs that do exist."""
    path = Path(path)
    if path.is_dir():
        found = sorted(str(p) for p in path.glob("*.toml"))
        raise ConfigError(
            f"{path} is a folder, not a spec file. Specs in it: {', '.join(found) or 'none'}."
        )
    if not path.is_file():
        folder = path.parent if path.parent.is_dir() else Path("experiments")
        found = sorted(str(p) for p in folder.glob("*.toml"))
        listing = ", ".join(found) if found else "none"
        raise ConfigError(f"No study spec at {path}. Specs in {folder}/: {listing}.")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error}). Fix the syntax and retry.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file. A study spec is TOML text.") from None
    spec = parse_spec(data, path)
    # A new design that can never decide is refused; a stored one (spec_from_record) still reads.
    if spec.adaptive is not None and spec.design().problem():
        raise _spec_error(path, "adaptive", spec.design().problem())
    return spec


def spec_from_record(record: dict[str, Any]) -> StudySpec:
    """Read a stored spec (spec.record.to_record) back, whatever version of mnistlab stored it."""
    source = Path(str(record.get("source") or "stored spec"))
    return parse_spec(record_document(record), source, stored=True)
