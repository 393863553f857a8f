"""The options several commands share, and the defaults of one run's (RunConfig's own)."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Folder holding MNIST/raw/, FashionMNIST/raw/, KMNIST/raw/ "
        "[default: $MNISTLAB_DATA, else ./data]",
    ),
]
DATASET_HELP = "mnist, fashion-mnist or kmnist."
TrackingUri = Annotated[
    str | None,
    typer.Option(
        "--tracking-uri",
        help="MLflow tracking URI [default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db]",
    ),
]
StudyName = Annotated[str, typer.Argument(metavar="STUDY", help="Study name, e.g. paper.")]


def _run_defaults():  # noqa: ANN202
    from mnistlab.spec.run import RunConfig

    return RunConfig()


# The options' defaults are RunConfig's own, so the CLI and a spec can never disagree.
DEFAULT = _run_defaults()


def refuse_spec_path(argument: str, command: str) -> None:
    """A spec file given where a study name belongs: say the study it holds."""
    from mnistlab.spec.run import ConfigError
    from mnistlab.spec.studyname import spec_path_problem

    if problem := spec_path_problem(argument, command):
        raise ConfigError(problem)


def check_effect(metric: str, effect: float | None) -> None:
    """--effect for a claim's metric: refused where it means nothing (measures.effect_problem)."""
    from mnistlab.spec.measures import effect_problem
    from mnistlab.spec.run import ConfigError

    if effect is not None and (problem := effect_problem(metric, effect)):
        raise ConfigError(f"--effect {problem}")


def run_config_from(options: dict[str, Any]):  # noqa: ANN201
    """A RunConfig from a command's options: those named as its fields; the others are ignored.

    One place that maps option names to RunConfig fields, so a command does not restate each.
    Raises ConfigError where RunConfig refuses a value.
    """
    from mnistlab.spec.run import RunConfig

    known = {spec.name for spec in fields(RunConfig)}
    return RunConfig(**{name: value for name, value in options.items() if name in known})
