"""One run's settings: RunConfig (its checks and its hash, the identity of a run) and PlannedRun,
one cell of a study's grid.

A run's config is also exactly what gets logged to MLflow as params.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

from mnistlab.errors import MnistlabError
from mnistlab.training.datasets import DATASETS
from mnistlab.training.registry import MODELS

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


@dataclass(frozen=True)
class PlannedRun:
    """One cell of a study's grid: an arm trained on one seed."""

    arm: str
    config: RunConfig

    @property
    def name(self) -> str:
        return f"{self.arm}-s{self.config.seed}"
