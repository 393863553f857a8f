"""A spec's own dataset (`dataset = "data/my_digits.npz"`), resolved when the spec is read.

The path is relative to the spec. The file is read and checked once here, so that a damaged
file, or a train_size or eval_subset beyond what it holds, is refused before anything runs;
its SHA-256 and absolute path go into the spec (and from there into every run's config).
A stored spec (analyze, report, power) keeps what was resolved and never reads the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mnistlab.spec.run import ConfigError, RunConfig

RESOLVED_KEYS = ("dataset_sha256", "dataset_source")


def resolve_dataset(
    path: Path, data: dict[str, Any], settings: dict[str, Any], stored: bool
) -> tuple[dict[str, str], Any]:
    """(the dataset's resolved keys, the checked training.owndata.OwnData): ({}, None) for a
    built-in dataset or a stored spec. Completes settings with the file's sizes: train_size defaults to every train image, eval_subset to at most all
    test images. ConfigError (one paragraph, naming the spec and key) when it is not usable."""
    from mnistlab.training.dataset_registry import DataError
    from mnistlab.training.owndata import is_own_dataset

    dataset = data.get("dataset", "mnist")
    given = [key for key in RESOLVED_KEYS if key in data]
    if not stored and given:
        raise ConfigError(
            f"{path}: key '{given[0]}': set by mnistlab when it reads an .npz dataset; remove it "
            "from the spec."
        )
    if not is_own_dataset(dataset):
        return {}, None
    if stored and "dataset_sha256" in data:
        return {key: str(data.get(key, "")) for key in RESOLVED_KEYS}, None
    from mnistlab.training.owndata import read_npz

    try:
        own = read_npz((path.parent / dataset).resolve())
    except DataError as error:
        raise ConfigError(f"{path}: key 'dataset': {error}") from None
    settings.setdefault("train_size", own.train_size)
    if own.test_size < RunConfig().eval_subset:
        settings.setdefault("eval_subset", own.test_size)
    return {"dataset_sha256": own.sha256, "dataset_source": str(own.path)}, own


def check_sizes(path: Path, spec: Any, own: Any) -> None:
    """Every arm's train_size and eval_subset within the file's sizes (training.owndata)."""
    from mnistlab.training.owndata import size_problem

    for arm in spec.arms:
        config = spec.arm_config(arm, spec.seeds[0])
        if problem := size_problem(config.train_size, config.eval_subset, own):
            raise ConfigError(f"{path}: arm '{arm.name}': {problem}")
