"""Frozen run and study settings: what they are, how they are validated, how they hash,
and how a study spec is stored and read back (a versioned record, the TOML's own shape).

A run's config is also exactly what gets logged to MLflow as params.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnistlab.errors import MnistlabError
from mnistlab.names import arm_count_key, study_run_keys
from mnistlab.spec.measures import (
    DIRECTIONS,
    HIGHER,
    LOWER,
    SAME,
    Measure,
    UnknownMeasure,
    measure,
)
from mnistlab.training.datasets import DATASETS
from mnistlab.training.registry import MODELS

# Bump when the training procedure changes in a way that changes results for the same config,
# so that old runs no longer count as finished runs of the new code.
PROTOCOL_VERSION = 1
# The stored spec's format. 1: models + overrides, the paper's claims (before arms existed);
# 2: arms, dataset, claims, question.
SPEC_RECORD_VERSION = 2
MAX_RECORD_CHARACTERS = 20_000  # an MLflow tag value's limit; the record is one tag
# The limits a name meets: MLflow's on a key (mlflow.utils.validation; a test keeps them
# equal), and the file system's on one path component, in bytes. A study's name is a folder
# (reports/NAME/, mlartifacts/NAME/), and reports/.NAME.old-PID the swap's: room is kept for it.
MLFLOW_KEY_LIMIT = 250
FOLDER_NAME_BYTES = 255
FOLDER_SUFFIX_BYTES = 20


class ConfigError(MnistlabError, ValueError):
    """Bad settings; the message names the setting, the problem and the fix."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides one training run's numbers (plus where and how fast it runs)."""

    model: str = "cnn2"
    seed: int = 0
    dataset: str = "mnist"
    epochs: int = 1
    batch_size: int = 50
    lr: float = 1e-3
    eval_every: int = 50
    eval_subset: int = 2000
    train_size: int = 60000
    # Execution settings: recorded, but not part of the identity of a run.
    device: str = "auto"
    threads: int = 0  # 0 = leave torch's default

    EXECUTION_FIELDS = ("device", "threads")
    # Fields added after runs were stored: hashed only when they differ from the value every
    # older run implicitly had, so that those runs keep their config hash.
    LATER_FIELDS = {"dataset": "mnist"}

    def __post_init__(self) -> None:
        validate_run_config(self)

    def identity(self) -> dict[str, Any]:
        """The settings that define the experiment, without where and how fast it ran."""
        values = dataclasses.asdict(self)
        for name in self.EXECUTION_FIELDS:
            values.pop(name)
        for name, implicit in self.LATER_FIELDS.items():
            if values[name] == implicit:
                values.pop(name)
        return values

    def config_hash(self) -> str:
        """Short stable hash of the identity; equal hashes mean comparable runs."""
        payload = json.dumps(
            {"protocol": PROTOCOL_VERSION, **self.identity()}, sort_keys=True, default=str
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def steps_per_epoch(self) -> int:
        return math.ceil(self.train_size / self.batch_size)


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number of 1 or more, got {value!r}.")


def validate_run_config(config: RunConfig) -> None:
    if config.model not in MODELS:
        raise ConfigError(
            f"Unknown model {config.model!r}. Known models: {', '.join(sorted(MODELS))}."
        )
    if config.dataset not in DATASETS:
        raise ConfigError(
            f"Unknown dataset {config.dataset!r}. Known datasets: {', '.join(DATASETS)}."
        )
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or config.seed < 0:
        raise ConfigError(f"seed must be a whole number of 0 or more, got {config.seed!r}.")
    for name in ("epochs", "batch_size", "eval_every", "eval_subset", "train_size"):
        _positive_int(name, getattr(config, name))
    if (
        isinstance(config.lr, bool)
        or not isinstance(config.lr, (int, float))
        or not (0 < config.lr < math.inf)
    ):
        raise ConfigError(f"lr must be a positive finite number such as 0.001, got {config.lr!r}.")
    if config.eval_subset > 10000:
        raise ConfigError(f"eval_subset is at most 10000 (the test set), got {config.eval_subset}.")
    if config.train_size > 60000:
        raise ConfigError(f"train_size is at most 60000 (the train set), got {config.train_size}.")
    if not isinstance(config.device, str) or not (
        config.device in ("auto", "cpu", "cuda")
        or (config.device.startswith("cuda:") and config.device[5:].isdigit())
    ):
        raise ConfigError(f"device must be auto, cpu or cuda[:N], got {config.device!r}.")
    if (
        isinstance(config.threads, bool)
        or not isinstance(config.threads, int)
        or config.threads < 0
    ):
        raise ConfigError(f"threads must be 0 (torch's default) or more, got {config.threads!r}.")


# What a spec's [settings] and arm tables may set: the dataset is the study's, model and seed
# the arm's and the grid's.
RUN_SETTINGS = tuple(
    f.name for f in dataclasses.fields(RunConfig) if f.name not in ("model", "seed", "dataset")
)
DEFAULT_THRESHOLDS = (0.90, 0.95, 0.97, 0.98)


@dataclass(frozen=True)
class Arm:
    """One side of a comparison: a registered model plus the run settings it changes."""

    name: str
    model: str
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Claim:
    """What a claim says about every variant against the baseline: its metric is higher/lower."""

    metric: str
    direction: str  # HIGHER, LOWER, EITHER (any difference) or SAME (within margin)
    margin: float | None = None  # equivalence margin: metric units, or a ratio (> 1)
    effect: float | None = None  # the effect `mnistlab power` sizes the study for (same units)

    @property
    def measure(self) -> Measure:
        return measure(self.metric)


def paper_claims(primary_threshold: float) -> tuple[Claim, ...]:
    """The paper's three claims: fewer steps to the threshold, more time, a noisier loss."""
    return (
        Claim(f"steps_to:{primary_threshold:g}", LOWER),
        Claim("epoch_train_seconds", HIGHER),
        Claim("log_loss_spread", HIGHER),
    )


@dataclass(frozen=True)
class Adaptive:
    """[adaptive]: add `block` seeds per look until every claim is decided or max_seeds."""

    max_seeds: int
    block: int


@dataclass(frozen=True)
class PlannedRun:
    """One cell of a study's grid: an arm trained on one seed."""

    arm: str
    config: RunConfig

    @property
    def name(self) -> str:
        return f"{self.arm}-s{self.config.seed}"


@dataclass(frozen=True)
class StudySpec:
    """Arms x seeds on one dataset, and the claims tested, as read from experiments/*.toml."""

    name: str
    arms: tuple[Arm, ...]
    seeds: tuple[int, ...]
    baseline: str
    claims: tuple[Claim, ...]
    dataset: str = "mnist"
    settings: dict[str, Any] = field(default_factory=dict)
    thresholds: tuple[float, ...] = DEFAULT_THRESHOLDS
    primary_threshold: float = 0.95  # where the paper's steps claim is tested by default
    question: str = ""
    description: str = ""
    source: str = ""
    adaptive: Adaptive | None = None
    strict: bool = False  # reuse a finished run only at the same device and thread count

    @property
    def all_seeds(self) -> tuple[int, ...]:
        """Every seed the study may train: with [adaptive], up to max_seeds."""
        if self.adaptive is None:
            return self.seeds
        return tuple(range(self.adaptive.max_seeds))

    @property
    def arm_names(self) -> list[str]:
        return [arm.name for arm in self.arms]

    @property
    def variants(self) -> list[str]:
        """Every arm but the baseline, in the spec's order: each is compared with the baseline."""
        return [name for name in self.arm_names if name != self.baseline]

    @property
    def family_size(self) -> int:
        """Tests under one Holm correction: every variant against the baseline, every claim."""
        return len(self.variants) * len(self.claims)

    @property
    def analysis_thresholds(self) -> tuple[float, ...]:
        """The descriptive thresholds plus any a claim names."""
        named = {c.measure.threshold for c in self.claims if c.measure.threshold is not None}
        return tuple(sorted(set(self.thresholds) | named))

    def design(self):  # noqa: ANN201 - a sequential.SequentialDesign, or None
        """The sequential design of an [adaptive] spec (None without one)."""
        if self.adaptive is None:
            return None
        from mnistlab.stats.sequential import SequentialDesign

        tests = sum((c.direction != SAME) + (c.margin is not None) for c in self.claims)
        return SequentialDesign(
            len(self.seeds),
            self.adaptive.block,
            self.adaptive.max_seeds,
            family=max(1, tests * len(self.variants)),
        )

    def arm(self, name: str) -> Arm:
        return next(arm for arm in self.arms if arm.name == name)

    def arm_config(self, arm: Arm, seed: int) -> RunConfig:
        return RunConfig(
            model=arm.model, seed=seed, dataset=self.dataset, **{**self.settings, **arm.settings}
        )

    def planned_runs(self, seeds: tuple[int, ...] | None = None) -> list[PlannedRun]:
        """The grid, interleaved by seed (cnn2 s0, cnn3 s0, cnn2 s1, ...) so drift hits all alike.

        seeds: default the spec's seeds (with [adaptive], those of the first look).
        """
        return [
            PlannedRun(arm.name, self.arm_config(arm, seed))
            for seed in (self.seeds if seeds is None else seeds)
            for arm in self.arms
        ]

    def run_configs(self) -> list[RunConfig]:
        return [planned.config for planned in self.planned_runs()]

    def arm_by_hash(self) -> dict[str, str]:
        """Config hash -> arm: which arm a stored run belongs to (arms never share a config)."""
        return {p.config.config_hash(): p.arm for p in self.planned_runs(self.all_seeds)}

    def eval_subsets(self) -> list[int]:
        return sorted({self.arm_config(arm, 0).eval_subset for arm in self.arms})

    def to_record(self) -> dict[str, Any]:
        """The spec as stored with the study: a TOML-shaped document plus its format version."""
        return (
            {
                "version": SPEC_RECORD_VERSION,
                "name": self.name,
                "description": self.description,
                "question": self.question,
                "dataset": self.dataset,
                # A count when the seeds are 0..n-1 (always so with [adaptive]): the record
                # must fit in an MLflow tag, and a thousand seeds listed would not.
                "seeds": len(self.seeds)
                if self.seeds == tuple(range(len(self.seeds)))
                else list(self.seeds),
                "baseline": self.baseline,
                "settings": dict(self.settings),
                "arms": {arm.name: {"model": arm.model, **arm.settings} for arm in self.arms},
                "thresholds": list(self.thresholds),
                "primary_threshold": self.primary_threshold,
                "claims": [
                    {"metric": c.metric, "direction": c.direction}
                    | ({} if c.margin is None else {"margin": c.margin})
                    | ({} if c.effect is None else {"effect": c.effect})
                    for c in self.claims
                ],
                "source": self.source,
            }
            | ({"strict": True} if self.strict else {})
            | (
                {}
                if self.adaptive is None
                else {
                    "adaptive": {"max_seeds": self.adaptive.max_seeds, "block": self.adaptive.block}
                }
            )
        )


def spec_from_record(record: dict[str, Any]) -> StudySpec:
    """Read a stored spec back, whatever version of mnistlab stored it."""
    version = record.get("version", 1)
    source = Path(str(record.get("source") or "stored spec"))
    if version == 1:  # before arms: one arm per model
        keys = ("name", "description", "models", "seeds", "settings", "overrides")
        document = {key: record[key] for key in keys if record.get(key) not in (None, {})}
        document["thresholds"] = record.get("thresholds", list(DEFAULT_THRESHOLDS))
        document["primary_threshold"] = record.get("primary_threshold", 0.95)
    elif version == SPEC_RECORD_VERSION:
        document = {k: v for k, v in record.items() if k not in ("version", "source")}
    else:
        raise ConfigError(
            f"The stored spec of study {record.get('name')!r} has format version {version}, "
            f"newer than this mnistlab reads ({SPEC_RECORD_VERSION}). Upgrade mnistlab."
        )
    return parse_spec(document, source)


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
)
_NAME_CHARACTERS = "-_."


def _spec_error(path: Path, key: str, reason: str) -> ConfigError:
    return ConfigError(f"{path}: key '{key}': {reason}")


def valid_name(name: Any) -> bool:
    """A safe single path component: letters, digits, - _ or ., and not just dots."""
    return (
        isinstance(name, str)
        and bool(name)
        and all(c.isalnum() or c in _NAME_CHARACTERS for c in name)
        and name.strip(".") != ""  # "." and ".." would name folders outside reports/
    )


def folder_name_problem(name: str) -> str | None:
    """Why name cannot name a folder mnistlab makes (too many bytes), or None."""
    size, limit = len(name.encode()), FOLDER_NAME_BYTES - FOLDER_SUFFIX_BYTES
    if size <= limit:
        return None
    return (
        f"is {size} bytes in UTF-8 ({len(name)} characters), and it names folders "
        f"(reports/NAME/, mlartifacts/NAME/) whose names the file system limits to "
        f"{FOLDER_NAME_BYTES} bytes, {limit} once mnistlab's suffixes are added. Shorten it "
        f"to at most {limit} bytes."
    )


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


def _arms_from_table(path: Path, table: Any) -> list[Arm]:
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
        if model not in MODELS:
            raise _spec_error(
                path,
                f"arms.{name}.model",
                f"unknown model {model!r}. Known: {', '.join(sorted(MODELS))}.",
            )
        settings = {k: v for k, v in body.items() if k != "model"}
        arms.append(Arm(name, model, _check_settings(path, f"arms.{name}", settings)))
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


def parse_spec(data: dict[str, Any], path: Path) -> StudySpec:
    """Validate a parsed TOML document; every error names the file, the key and the reason."""
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
    if dataset not in DATASETS:
        raise _spec_error(
            path, "dataset", f"unknown dataset {dataset!r}. Known: {', '.join(DATASETS)}."
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
        _arms_from_models(path, data) if "models" in data else _arms_from_table(path, data["arms"])
    )
    names = [arm.name for arm in arms]
    baseline = data.get("baseline", names[0])
    if baseline not in names:
        raise _spec_error(
            path, "baseline", f"{baseline!r} is not one of the arms ({', '.join(names)})."
        )
    seeds = _parse_seeds(path, data["seeds"])
    settings = _check_settings(path, "settings", data.get("settings", {}))
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
    )
    try:
        spec.planned_runs()
    except ConfigError as error:  # impossible values, e.g. batch_size = 0
        raise ConfigError(f"{path}: {error}") from None
    _refuse_identical_arms(path, spec)
    _check_name_limits(path, spec)
    size = len(json.dumps(spec.to_record()))
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
