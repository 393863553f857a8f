"""Runs and experiments as read back from the store: plain records, no mlflow types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StoredExperiment:
    experiment_id: str
    name: str
    tags: dict[str, str]


@dataclass(frozen=True)
class StoredRun:
    """A run as read back: its identity, status and tags (no mlflow types leave this module)."""

    run_id: str
    run_name: str
    status: str
    start_time: int
    tags: dict[str, str]
    metrics: dict[str, float]  # the latest value of each metric
    end_time: int | None = None  # ms; None while it runs


def stored_run(run: Any) -> StoredRun:
    return StoredRun(
        run.info.run_id,
        run.info.run_name,
        run.info.status,
        run.info.start_time,
        dict(run.data.tags),
        dict(run.data.metrics),
        run.info.end_time,
    )
