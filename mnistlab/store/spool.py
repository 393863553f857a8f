"""A run's complete record on local disk, for when the tracking store cannot take it.

A training run keeps its record in memory as it goes (tracked_run.TrackedRun): params, tags,
every metric point, its artifact files, its final status. When the store is still
unreachable after the retry window, the record is written here, one folder per run:

    mnistlab-spool/<run_id>/record.json      params, tags, metrics, status, times
    mnistlab-spool/<run_id>/files/<path>/..   the artifacts (weights, predictions)

`mnistlab sync` replays each folder into the store (store.Store.replay) and removes it:
the run ends up as if the store had never gone away. The folder is MNISTLAB_SPOOL, else
./mnistlab-spool beside the default store.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mnistlab.errors import MnistlabError, first_line

SPOOL_ENV = "MNISTLAB_SPOOL"
RECORD_FILE = "record.json"


@dataclass
class RunRecord:
    tracking_uri: str
    experiment_id: str
    run_id: str
    run_name: str
    start_time: int
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    metrics: list[tuple[str, float, int, int]] = field(default_factory=list)  # key, value, ms, step
    artifacts: list[tuple[str, str]] = field(default_factory=list)  # (file under files/, path)
    status: str = "RUNNING"
    end_time: int | None = None


def spool_root() -> Path:
    return Path(os.environ.get(SPOOL_ENV) or "mnistlab-spool").resolve()


def write_spool(record: RunRecord, files: Path) -> Path:
    """The record and its files as spool_root()/<run_id>/, written whole or not at all."""
    target = spool_root() / record.run_id
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "files").mkdir(parents=True)
    for relative, _ in record.artifacts:
        destination = partial / "files" / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(files / relative, destination)
    (partial / RECORD_FILE).write_text(json.dumps(asdict(record)))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target


def spooled_runs(root: Path | None = None) -> list[Path]:
    """Complete spool folders (a .partial one was cut short while being written)."""
    root = root or spool_root()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if (p / RECORD_FILE).is_file())


class SpoolError(MnistlabError):
    """A spooled run's record that cannot be read back (damaged or edited by hand)."""


def read_spool(folder: Path) -> RunRecord:
    """The run record spooled in folder; SpoolError naming the folder if it is damaged."""
    try:
        data: dict[str, Any] = json.loads((folder / RECORD_FILE).read_text())
        data["metrics"] = [tuple(m) for m in data["metrics"]]
        data["artifacts"] = [tuple(a) for a in data["artifacts"]]
        return RunRecord(**data)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise SpoolError(
            f"{folder / RECORD_FILE} cannot be read back ({type(error).__name__}: "
            f"{first_line(error)})"
        ) from None
