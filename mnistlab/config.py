"""Frozen run and study settings: what they are, how they are validated, how they hash.

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
from mnistlab.models import MODELS

# Bump when the training procedure changes in a way that changes results for the same config,
# so that old runs no longer count as finished runs of the new code.
PROTOCOL_VERSION = 1


class ConfigError(MnistlabError, ValueError):
    """Bad settings; the message names the setting, the problem and the fix."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that decides one training run's numbers (plus where and how fast it runs)."""

    model: str = "cnn2"
    seed: int = 0
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

    def __post_init__(self) -> None:
        validate_run_config(self)

    def identity(self) -> dict[str, Any]:
        """The settings that define the experiment, without where and how fast it ran."""
        values = dataclasses.asdict(self)
        for name in self.EXECUTION_FIELDS:
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
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or config.seed < 0:
        raise ConfigError(f"seed must be a whole number of 0 or more, got {config.seed!r}.")
    for name in ("epochs", "batch_size", "eval_every", "eval_subset", "train_size"):
        _positive_int(name, getattr(config, name))
    if not isinstance(config.lr, (int, float)) or not (0 < config.lr < math.inf):
        raise ConfigError(f"lr must be a positive finite number such as 0.001, got {config.lr!r}.")
    if config.eval_subset > 10000:
        raise ConfigError(f"eval_subset is at most 10000 (the test set), got {config.eval_subset}.")
    if config.train_size > 60000:
        raise ConfigError(f"train_size is at most 60000 (the train set), got {config.train_size}.")
    if config.device not in ("auto", "cpu", "cuda") and not config.device.startswith("cuda:"):
        raise ConfigError(f"device must be auto, cpu or cuda[:N], got {config.device!r}.")
    if (
        isinstance(config.threads, bool)
        or not isinstance(config.threads, int)
        or config.threads < 0
    ):
        raise ConfigError(f"threads must be 0 (torch's default) or more, got {config.threads!r}.")


RUN_SETTINGS = tuple(
    f.name for f in dataclasses.fields(RunConfig) if f.name not in ("model", "seed")
)


@dataclass(frozen=True)
class StudySpec:
    """A grid of models x seeds under shared settings, as read from experiments/*.toml."""

    name: str
    models: tuple[str, ...]
    seeds: tuple[int, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    thresholds: tuple[float, ...] = (0.90, 0.95, 0.97, 0.98)
    primary_threshold: float = 0.95  # the accuracy that the steps claim is tested at
    description: str = ""
    source: str = ""

    @property
    def baseline(self) -> str:
        """The first model listed is the one every other model is compared with."""
        return self.models[0]

    def run_configs(self) -> list[RunConfig]:
        """The grid, interleaved by seed (cnn2 s0, cnn3 s0, cnn2 s1, ...) so drift hits all alike."""
        return [
            RunConfig(model=model, seed=seed, **{**self.settings, **self.overrides.get(model, {})})
            for seed in self.seeds
            for model in self.models
        ]


SPEC_KEYS = {
    "name",
    "description",
    "models",
    "seeds",
    "settings",
    "overrides",
    "thresholds",
    "primary_threshold",
}


def _spec_error(path: Path, key: str, reason: str) -> ConfigError:
    return ConfigError(f"{path}: key '{key}': {reason}")


def _check_settings(path: Path, where: str, table: Any) -> dict[str, Any]:
    if not isinstance(table, dict):
        raise _spec_error(path, where, "must be a table of run settings.")
    for key, value in table.items():
        if key not in RUN_SETTINGS:
            raise _spec_error(
                path, f"{where}.{key}", f"unknown setting. Known: {', '.join(RUN_SETTINGS)}."
            )
        expected = type(getattr(RunConfig(), key))
        ok = isinstance(value, (int, float)) if expected is float else type(value) is expected
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


def parse_spec(data: dict[str, Any], path: Path) -> StudySpec:
    """Validate a parsed TOML document; every error names the file, the key and the reason."""
    for key in data:
        if key not in SPEC_KEYS:
            raise _spec_error(
                path, key, f"unknown key. Known keys: {', '.join(sorted(SPEC_KEYS))}."
            )
    for key in ("name", "models", "seeds"):
        if key not in data:
            raise _spec_error(path, key, "is required.")
    name = data["name"]
    if not isinstance(name, str) or not name or not all(c.isalnum() or c in "-_." for c in name):
        raise _spec_error(path, "name", "must be a non-empty name of letters, digits, - _ or .")
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
    seeds = _parse_seeds(path, data["seeds"])
    settings = _check_settings(path, "settings", data.get("settings", {}))
    overrides_table = data.get("overrides", {})
    if not isinstance(overrides_table, dict):
        raise _spec_error(path, "overrides", "must be a table of per-model tables.")
    overrides = {}
    for model, table in overrides_table.items():
        if model not in models:
            raise _spec_error(path, f"overrides.{model}", "is not one of the study's models.")
        overrides[model] = _check_settings(path, f"overrides.{model}", table)
    thresholds = data.get("thresholds", [0.90, 0.95, 0.97, 0.98])
    if (
        not isinstance(thresholds, list)
        or not thresholds
        or not all(isinstance(t, (int, float)) and 0 < t <= 1 for t in thresholds)
    ):
        raise _spec_error(path, "thresholds", f"must be accuracies in (0, 1], got {thresholds!r}.")
    primary = data.get("primary_threshold", 0.95 if 0.95 in thresholds else thresholds[0])
    if primary not in thresholds:
        raise _spec_error(
            path, "primary_threshold", f"{primary!r} must be one of the thresholds {thresholds}."
        )
    spec = StudySpec(
        name=name,
        models=tuple(models),
        seeds=seeds,
        settings=settings,
        overrides=overrides,
        thresholds=tuple(sorted(float(t) for t in thresholds)),
        primary_threshold=float(primary),
        description=str(data.get("description", "")),
        source=str(path),
    )
    try:
        spec.run_configs()
    except ConfigError as error:  # impossible values, e.g. batch_size = 0
        raise ConfigError(f"{path}: {error}") from None
    return spec


def load_spec(path: Path) -> StudySpec:
    """Read and validate a study spec; a missing file lists the specs that do exist."""
    path = Path(path)
    if not path.is_file():
        folder = path.parent if path.parent.is_dir() else Path("experiments")
        found = sorted(str(p) for p in folder.glob("*.toml"))
        listing = ", ".join(found) if found else "none"
        raise ConfigError(f"No study spec at {path}. Specs in {folder}/: {listing}.")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error}). Fix the syntax and retry.") from None
    return parse_spec(data, path)
