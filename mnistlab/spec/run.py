"""One run's settings: RunConfig (its checks and its hash, the identity of a run) and PlannedRun,
one cell of a study's grid.

A run's config is also exactly what gets logged to MLflow as params.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mnistlab.errors import MnistlabError
from mnistlab.training.dataset_registry import DATASETS, DataError
from mnistlab.training.owndata import file_sha256, is_own_dataset, locate_own_dataset
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
    # The training recipe (training.recipe): any torch.optim optimizer and lr_scheduler by name.
    optimizer: str = "Adam"
    optimizer_args: dict[str, Any] = field(default_factory=dict)
    weight_decay: float = 0.0
    lr_schedule: str = ""  # "" = a constant lr; else stepped once per training step
    lr_schedule_args: dict[str, Any] = field(default_factory=dict)
    label_smoothing: float = 0.0
    grad_clip: float = 0.0  # max gradient norm; 0 = no clipping
    model_args: dict[str, Any] = field(default_factory=dict)
    # Random per-sample transforms of each training batch (training.augment); {} = none.
    augment: dict[str, Any] = field(default_factory=dict)
    # A user net ("path.py:Class" or "package.module:Class"): the SHA-256 of its source file,
    # part of the identity (an edited file trains new runs), and where that file is.
    model_sha256: str = ""
    model_source: str = ""
    # An .npz dataset (training.owndata): the file's SHA-256, part of the identity (a changed
    # file trains new runs), and where the file is.
    dataset_sha256: str = ""
    dataset_source: str = ""
    # Execution settings: recorded, but not part of the identity of a run.
    device: str = "auto"
    threads: int = 0  # 0 = leave torch's default

    EXECUTION_FIELDS = ("device", "threads", "model_source", "dataset_source")
    # Fields added after runs were stored: hashed only when they differ from the value every
    # older run implicitly had, so that those runs keep their config hash.
    LATER_FIELDS = {
        "dataset": "mnist",
        "optimizer": "Adam",
        "optimizer_args": {},
        "weight_decay": 0.0,
        "lr_schedule": "",
        "lr_schedule_args": {},
        "label_smoothing": 0.0,
        "grad_clip": 0.0,
        "model_args": {},
        "model_sha256": "",
        "augment": {},
        "dataset_sha256": "",
    }

    def __post_init__(self) -> None:
        if is_user_model(self.model) and not self.model_sha256:
            source, sha256 = locate_user_model(self.model, Path.cwd())
            object.__setattr__(self, "model_source", source)
            object.__setattr__(self, "model_sha256", sha256)
        if is_own_dataset(self.dataset) and not self.dataset_sha256:
            try:
                source, sha256 = locate_own_dataset(self.dataset, Path.cwd())
            except DataError as error:
                raise ConfigError(str(error)) from None
            object.__setattr__(self, "dataset_source", source)
            object.__setattr__(self, "dataset_sha256", sha256)
        validate_run_config(self)

    def __hash__(self) -> int:  # the dict fields are not hashable; the identity is
        return hash((self.config_hash(), self.device, self.threads))

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


def is_user_model(model: str) -> bool:
    """A user's net ("path.py:Class" or "package.module:Class") rather than a registered name."""
    return ":" in model


def locate_user_model(model: str, base: Path) -> tuple[str, str]:
    """The absolute path of a user net's source file and the file's SHA-256.

    "path.py:Class" is relative to base (the spec's folder); "package.module:Class" is found
    on the import path (its parent packages are imported, the module itself is not).
    """
    target, _, class_name = model.rpartition(":")
    if not target or not class_name.isidentifier():
        raise ConfigError(
            f'model {model!r}: a user net is named as "path/to/file.py:ClassName" (relative '
            'to the spec) or "package.module:ClassName".'
        )
    if target.endswith(".py"):
        path = (base / target).resolve()
        if not path.is_file():
            raise ConfigError(
                f"model {model!r}: no file {path} (a .py path is relative to the spec's folder)."
            )
    else:
        import importlib.util

        try:
            found = importlib.util.find_spec(target)
        except (ImportError, ValueError) as error:
            found, reason = None, f" ({error})"
        else:
            reason = ""
        if found is None or not found.origin or not Path(found.origin).is_file():
            raise ConfigError(
                f"model {model!r}: no module {target!r} on the import path{reason}. Give a "
                'file instead, "path/to/file.py:ClassName", relative to the spec.'
            )
        path = Path(found.origin).resolve()
    return str(path), file_sha256(path)


AUGMENT_KEYS = {
    "translate": "pixels of shift, in x and y",
    "rotate": "degrees of rotation either way",
    "scale": "fraction of zoom either way, below 1",
    "erase": "probability of erasing a rectangle, at most 1",
}


def augment_problem(augment: Any) -> str | None:
    """Why an augment table is refused, in one paragraph; None when it is fine."""
    accepted = "; ".join(f"{key} ({what})" for key, what in AUGMENT_KEYS.items())
    if not isinstance(augment, dict):
        return f"augment must be a table such as {{ translate = 2, rotate = 10 }}, got {augment!r}."
    for key, value in augment.items():
        if key not in AUGMENT_KEYS:
            return f"augment has an unknown key {key!r}. The accepted keys are: {accepted}."
        limit = 1.0 if key in ("scale", "erase") else math.inf
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not (0 <= value <= limit) or (key == "scale" and value >= 1):
            return (
                f"augment.{key} must be a number of 0 or more ({AUGMENT_KEYS[key]}), got "
                f"{value!r}. The accepted keys are: {accepted}."
            )
    return None


def _non_negative(name: str, value: Any, below: float = math.inf) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 <= value < below):
        bound = "below 1" if below == 1 else "finite"
        raise ConfigError(f"{name} must be a number of 0 or more, {bound}, got {value!r}.")


def _check_recipe_names(config: RunConfig) -> None:
    for name in ("optimizer", "lr_schedule"):
        if not isinstance(getattr(config, name), str):
            raise ConfigError(
                f"{name} must be a class name in quotes, got {getattr(config, name)!r}."
            )
    if not config.optimizer:
        raise ConfigError('optimizer must name a class of torch.optim, e.g. "Adam" or "SGD".')
    for name in ("optimizer_args", "lr_schedule_args", "model_args"):
        value = getattr(config, name)
        if not isinstance(value, dict):
            raise ConfigError(
                f"{name} must be a table such as {{ momentum = 0.9 }}, got {value!r}."
            )
    if config.lr_schedule_args and not config.lr_schedule:
        raise ConfigError("lr_schedule_args is set but lr_schedule is not: name the schedule too.")


def check_recipe(config: RunConfig) -> None:
    """The optimizer's and schedule's names, keywords and values, checked against torch's own
    classes (training.recipe). Called where a spec is first read and before a run trains, but
    not for a stored spec read back (analyze, report and power import no torch)."""
    if (
        config.optimizer != "Adam"
        or config.optimizer_args
        or config.lr_schedule
        or config.weight_decay
    ):
        from mnistlab.training.recipe import check_recipe as check_against_torch

        check_against_torch(config)


def _positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a whole number of 1 or more, got {value!r}.")


def validate_run_config(config: RunConfig) -> None:
    if not isinstance(config.model, str) or (
        config.model not in MODELS and not is_user_model(config.model)
    ):
        raise ConfigError(
            f"Unknown model {config.model!r}. Known models: {', '.join(sorted(MODELS))}, or "
            'your own net as "path/to/file.py:ClassName" or "package.module:ClassName".'
        )
    own_data = is_own_dataset(config.dataset)  # its sizes are checked against the file
    if config.dataset not in DATASETS and not own_data:
        raise ConfigError(
            f"Unknown dataset {config.dataset!r}. Known datasets: {', '.join(DATASETS)}, or "
            'your own as an .npz file, "path/to/data.npz".'
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
    if config.eval_subset > 10000 and not own_data:
        raise ConfigError(f"eval_subset is at most 10000 (the test set), got {config.eval_subset}.")
    if config.train_size > 60000 and not own_data:
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
    _non_negative("weight_decay", config.weight_decay)
    _non_negative("label_smoothing", config.label_smoothing, below=1)
    _non_negative("grad_clip", config.grad_clip)
    _check_recipe_names(config)
    if problem := augment_problem(config.augment):
        raise ConfigError(problem)


@dataclass(frozen=True)
class PlannedRun:
    """One cell of a study's grid: an arm trained on one seed."""

    arm: str
    config: RunConfig

    @property
    def name(self) -> str:
        return f"{self.arm}-s{self.config.seed}"
