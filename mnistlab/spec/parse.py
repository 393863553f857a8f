"""Reading a study spec: the TOML file or a stored record, every key checked; an error names the
file, the key and the fix. Each table is read by spec.tables; here the document as a whole: its
keys and defaults, then what only the whole spec can show (identical arms, names too long for
MLflow, a record too large for its tag)."""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
from pathlib import Path
from typing import Any

from mnistlab.names import arm_count_key, study_run_keys
from mnistlab.spec.limits import (
    MAX_RECORD_CHARACTERS,
    MLFLOW_KEY_LIMIT,
    folder_name_problem,
    name_problem,
)
from mnistlab.spec.netargs import model_args_problem
from mnistlab.spec.owndata import check_sizes, resolve_dataset
from mnistlab.spec.ranking import parse_ranking
from mnistlab.spec.record import record_document, to_record
from mnistlab.spec.run import (
    ConfigError,
    check_recipe,
)
from mnistlab.spec.study import (
    DEFAULT_THRESHOLDS,
    Arm,
    StudySpec,
    paper_claims,
)
from mnistlab.spec.tables import (
    _arms_from_models,
    _arms_from_table,
    _check_settings,
    _parse_adaptive,
    _parse_claims,
    _parse_seeds,
    _spec_error,
)
from mnistlab.training.dataset_registry import DATASETS
from mnistlab.training.owndata import is_own_dataset

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


def _refuse_identical_arms(path: Path, spec: StudySpec) -> None:
    seen: dict[str, str] = {}
    for arm in spec.arms:
        identity = spec.arm_config(arm, 0).config_hash()
        if identity in seen:
            raise _spec_error(path, f"arms.{arm.name}", _same_runs(spec, arm.name, seen[identity]))
        seen[identity] = arm.name


def _same_runs(spec: StudySpec, arm: str, other: str) -> str:
    """Why two arms with one identity are refused: the same settings, or settings that differ
    only where a run's numbers do not (device, threads: not part of the config hash)."""
    mine = dataclasses.asdict(spec.arm_config(spec.arm(arm), 0))
    theirs = dataclasses.asdict(spec.arm_config(spec.arm(other), 0))
    differ = sorted(k for k in mine if mine[k] != theirs[k])
    if not differ:
        return (
            f"has the same model and run settings as arm {other!r}, so both would train the "
            "same runs. Change a setting of one of them, or remove one."
        )
    return (
        f"differs from arm {other!r} only in {', '.join(differ)}, which does not change a run's "
        "numbers (it is not part of a run's identity), so both would train the same runs. Set "
        "it in [settings] for the whole study, or change a setting that changes what is trained."
    )


def _check_model_args(path: Path, spec: StudySpec) -> None:
    """A registered net's model_args against its signature (spec.netargs)."""
    for arm in spec.arms:
        args = spec.arm_config(arm, spec.seeds[0]).model_args
        if problem := model_args_problem(arm.model, args):
            own = "model_args" in arm.settings
            key = f"arms.{arm.name}.model_args" if own else "settings.model_args"
            raise _spec_error(path, key, problem)


def _check_top_level(path: Path, data: dict[str, Any]) -> None:
    """Refuse unknown or missing keys, a bad name or dataset, and arms given both ways or not at all."""
    for key in data:
        if key not in SPEC_KEYS:
            raise _spec_error(path, key, f"unknown key. Known keys: {', '.join(SPEC_KEYS)}.")
    for key in ("name", "seeds"):
        if key not in data:
            raise _spec_error(path, key, "is required.")
    if problem := name_problem(data["name"]):
        raise _spec_error(path, "name", problem)
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


def _parse_arms(path: Path, data: dict[str, Any], stored: bool) -> tuple[list[Arm], str]:
    """The arms (from models = [...] or [arms.NAME] tables) and the baseline, one of them."""
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
    return arms, baseline


def _parse_thresholds(path: Path, data: dict[str, Any]) -> tuple[list[float], float]:
    """The accuracy thresholds, each in (0, 1], and the primary one among them."""
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
    return thresholds, primary


def _check_flag_and_texts(path: Path, data: dict[str, Any]) -> None:
    """strict must be a boolean, description and question text."""
    if not isinstance(data.get("strict", False), bool):
        raise _spec_error(path, "strict", "must be true or false.")
    for key in ("description", "question"):
        if not isinstance(data.get(key, ""), str):
            raise _spec_error(path, key, "must be text in quotes.")


def _where_set(spec: StudySpec, arm: Any, message: str) -> str:
    """ "key 'arms.b.lr': " for a refused value the arm sets, "key 'settings.lr': " for one of
    [settings], else the arm; RunConfig's refusals start with the setting's name."""
    setting = message.split(" ", 1)[0].strip("'\":,.")
    if setting in arm.settings:
        return f"key 'arms.{arm.name}.{setting}': "
    if setting in spec.settings:
        return f"key 'settings.{setting}': "
    return f"arm {arm.name}: "


def _check_whole_spec(path: Path, spec: StudySpec, own: Any, stored: bool) -> None:
    """Checks that need the assembled spec: its runs, recipes, data sizes, nets, names, size."""
    for arm in spec.arms:
        try:
            config = spec.arm_config(arm, spec.seeds[0])
            if not stored:  # a stored spec was checked when first read, and needs no torch now
                check_recipe(config)
        except ConfigError as error:  # impossible values, e.g. batch_size = 0
            raise ConfigError(f"{path}: {_where_set(spec, arm, str(error))}{error}") from None
    spec.planned_runs()
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


def parse_spec(data: dict[str, Any], path: Path, stored: bool = False) -> StudySpec:
    """Validate a parsed TOML document; every error names the file, the key and the reason.

    stored: the document is a stored spec (spec_from_record): its user nets' files and hashes
    were resolved when it was first read, and are taken as stored.
    """
    _check_top_level(path, data)
    arms, baseline = _parse_arms(path, data, stored)
    seeds = _parse_seeds(path, data["seeds"])
    settings = _check_settings(path, "settings", data.get("settings", {}))
    own_data, own = resolve_dataset(path, data, settings, stored)
    thresholds, primary = _parse_thresholds(path, data)
    claims = (
        _parse_claims(path, data["claims"]) if "claims" in data else paper_claims(float(primary))
    )
    _check_flag_and_texts(path, data)
    adaptive = (
        _parse_adaptive(path, data["adaptive"], data["seeds"]) if "adaptive" in data else None
    )
    spec = StudySpec(
        name=data["name"],
        arms=tuple(arms),
        seeds=seeds,
        baseline=baseline,
        claims=claims,
        dataset=data.get("dataset", "mnist"),
        settings=settings,
        thresholds=tuple(sorted(float(t) for t in thresholds)),
        primary_threshold=float(primary),
        question=data.get("question", ""),
        description=data.get("description", ""),
        source=str(path),
        adaptive=adaptive,
        strict=data.get("strict", False),
        **own_data,
        ranking=parse_ranking(path, data, [arm.name for arm in arms], claims),
    )
    _check_whole_spec(path, spec, own, stored)
    return spec


def read_toml(path: Path) -> dict[str, Any]:
    """A spec file's TOML document. Read as UTF-8 with or without a byte-order mark (editors on
    Windows write one, and TOML's parser takes it for a stray character at line 1)."""
    try:
        return tomllib.loads(Path(path).read_text(encoding="utf-8-sig"))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error}). Fix the syntax and retry.") from None
    except UnicodeDecodeError:
        raise ConfigError(
            f"{path}: not a text file (not UTF-8). A study spec is TOML text: save it as UTF-8."
        ) from None


def load_spec(path: Path) -> StudySpec:
    """Read and validate a study spec; a missing file lists the specs that do exist."""
    path = Path(path)
    if path.is_dir():
        found = sorted(str(p) for p in path.glob("*.toml"))
        raise ConfigError(
            f"{path} is a folder, not a spec file. Specs in it: {', '.join(found) or 'none'}."
        )
    if not path.is_file():
        # The spec meant: the name with .toml, or experiments/NAME.toml (the Makefile's form).
        for meant in (path.with_name(path.name + ".toml"), Path("experiments") / f"{path}.toml"):
            if path.suffix != ".toml" and meant.is_file():
                raise ConfigError(f"No study spec at {path}. Did you mean {meant}?")
        folder = path.parent if path.parent.is_dir() else Path("experiments")
        found = sorted(str(p) for p in folder.glob("*.toml"))
        near = difflib.get_close_matches(str(path), found, n=1, cutoff=0.6)
        listing = ", ".join(found[:12]) + (
            f" and {len(found) - 12} more" if len(found) > 12 else ""
        )
        raise ConfigError(
            f"No study spec at {path}."
            + (f" Did you mean {near[0]}?" if near else "")
            + f" Specs in {folder}/: {listing or 'none'}."
        )
    spec = parse_spec(read_toml(path), path)
    # A new design that can never decide is refused; a stored one (spec_from_record) still reads.
    if spec.adaptive is not None and spec.design().problem():
        raise _spec_error(path, "adaptive", spec.design().problem())
    return spec


def spec_from_record(record: dict[str, Any]) -> StudySpec:
    """Read a stored spec (spec.record.to_record) back, whatever version of mnistlab stored it."""
    source = Path(str(record.get("source") or "stored spec"))
    return parse_spec(record_document(record), source, stored=True)
