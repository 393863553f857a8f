"""A study: expand a spec into planned runs, skip finished ones, hand the rest to an executor.

Every run is identified by its config hash, so a rerun of the same spec only trains what is
missing, failed or killed. The spec is stored on the study's MLflow experiment (a versioned
record, config.StudySpec.to_record) so that analysis needs nothing but the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mnistlab.config import PlannedRun, StudySpec
from mnistlab.data import ImageData, ensure_dataset, resolve_data_dir
from mnistlab.executors import (
    RunOutcome,
    RunTarget,
    StudyError,
    StudyObserver,
    choose_executor,
)
from mnistlab.tracking import Store, open_store, resolve_tracking_uri

__all__ = ["StudyError", "StudyObserver", "StudyReport", "plan_study", "run_study"]


@dataclass
class StudyPlan:
    experiment_id: str
    todo: list[PlannedRun]
    orphaned: list[str] = field(default_factory=list)  # runs found dead and marked FAILED


def plan_study(store: Store, spec: StudySpec, force: bool = False) -> StudyPlan:
    """Which runs of the grid still need training; records the spec on the experiment."""
    experiment_id = store.experiment_id(spec.name)
    planned = spec.planned_runs()
    store.record_spec(experiment_id, spec.to_record(), [p.config.config_hash() for p in planned])
    runs = store.runs(experiment_id)
    orphaned = store.fail_orphaned_runs(runs)
    if force:
        return StudyPlan(experiment_id, planned, orphaned)
    finished = {run.tags.get("config_hash") for run in runs if run.status == "FINISHED"}
    todo = [p for p in planned if p.config.config_hash() not in finished]
    return StudyPlan(experiment_id, todo, orphaned)


@dataclass
class StudyReport:
    planned: int
    skipped: int
    outcomes: list[RunOutcome]
    orphaned: list[str]
    experiment_id: str


def run_study(
    spec: StudySpec,
    tracking_uri: str | None = None,
    data_dir: Path | str | None = None,
    force: bool = False,
    workers: int = 1,
    executor: str = "local",
    ray_address: str | None = None,
    data: ImageData | None = None,
    observer: StudyObserver | None = None,
) -> StudyReport:
    """Run what is missing of the grid and return what happened."""
    tracking_uri = resolve_tracking_uri(tracking_uri)
    chosen = choose_executor(executor, workers, ray_address, tracking_uri, data)
    data_root = str(Path(data.root if data else resolve_data_dir(data_dir)).resolve())
    if data is None:  # missing or damaged data: fail before anything is written
        ensure_dataset(Path(data_root), spec.dataset, download=True)
    store = open_store(tracking_uri)  # creates (migrates) the store once, before any worker
    observer = observer or StudyObserver()
    plan = plan_study(store, spec, force)
    total = len(spec.planned_runs())
    observer.planned(len(plan.todo), total - len(plan.todo))
    target = RunTarget(tracking_uri, plan.experiment_id, spec.name, data_root, spec.dataset)
    outcomes = chosen.run(plan.todo, target, observer)
    return StudyReport(total, total - len(plan.todo), outcomes, plan.orphaned, plan.experiment_id)
