"""A study: expand a spec into runs, skip finished ones, hand the rest to an executor.

Executors: in process (the default, clean timings), local processes (--workers K, the
cores split between them) and Ray (--executor ray, local or an existing cluster).
Every run is identified by its config hash, so a rerun of the same spec only trains
what is missing, failed or killed.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from mlflow import MlflowClient

from mnistlab.config import RunConfig, StudySpec
from mnistlab.data import Mnist, ensure_mnist, load_mnist, resolve_data_dir
from mnistlab.errors import MnistlabError
from mnistlab.runner import run_name, stop_on_sigterm, tracked_train
from mnistlab.tracking import (
    experiment_id_for,
    fail_orphaned_runs,
    is_local_store,
    open_store,
    resolve_tracking_uri,
    study_runs,
    with_lock_retry,
)
from mnistlab.train import EvalPoint

EXECUTORS = ("local", "ray")


class StudyError(MnistlabError):
    """The study cannot run as asked; the message says why and what to do."""


@dataclass
class StudyPlan:
    experiment_id: str
    todo: list[RunConfig]
    orphaned: list[str] = field(default_factory=list)  # runs found dead and marked FAILED


@dataclass
class RunOutcome:
    config: RunConfig
    run_id: str
    test_accuracy: float
    train_seconds: float


def plan_study(client: MlflowClient, spec: StudySpec, force: bool = False) -> StudyPlan:
    """Which runs of the grid still need training; records the spec on the experiment."""
    experiment_id = experiment_id_for(client, spec.name)
    configs = spec.run_configs()
    for key, value in (
        ("spec", json.dumps(spec_record(spec))),
        ("config_hashes", json.dumps([c.config_hash() for c in configs])),
    ):
        with_lock_retry(lambda k=key, v=value: client.set_experiment_tag(experiment_id, k, v))
    runs = study_runs(client, experiment_id)
    orphaned = fail_orphaned_runs(client, runs)
    if force:
        return StudyPlan(experiment_id, configs, orphaned)
    finished = {run.data.tags.get("config_hash") for run in runs if run.info.status == "FINISHED"}
    todo = [c for c in configs if c.config_hash() not in finished]
    return StudyPlan(experiment_id, todo, orphaned)


def spec_record(spec: StudySpec) -> dict[str, Any]:
    """The spec as stored on the MLflow experiment, so analysis needs only the store."""
    record = dataclasses.asdict(spec)
    record["baseline"] = spec.baseline
    return record


def check_executor(executor: str, tracking_uri: str, ray_address: str | None) -> None:
    if executor not in EXECUTORS:
        raise StudyError(f"Unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}.")
    if (
        executor == "ray"
        and ray_address
        and ray_address != "local"
        and is_local_store(tracking_uri)
    ):
        raise StudyError(
            f"Ray cluster {ray_address} cannot write to the local store {tracking_uri}: its "
            "workers run on other machines. Start an MLflow server (mlflow server --host 0.0.0.0 "
            "--backend-store-uri sqlite:///mlflow.db) and pass --tracking-uri http://HOST:5000."
        )


# --- workers ------------------------------------------------------------------------------

_worker_data: dict[str, Mnist] = {}


def run_one(
    config: RunConfig,
    tracking_uri: str,
    experiment_id: str,
    study: str,
    data_dir: str,
    extra_tags: dict[str, str],
    on_eval: Callable[[EvalPoint], None] | None = None,
) -> RunOutcome:
    """Train and track one run; the data is loaded once per process."""
    if data_dir not in _worker_data:
        _worker_data[data_dir] = load_mnist(data_dir)
    client = open_store(tracking_uri)
    run_id, result = tracked_train(
        config, _worker_data[data_dir], client, experiment_id, study, extra_tags, on_eval
    )
    return RunOutcome(config, run_id, result.test_accuracy[-1], sum(result.epoch_train_seconds))


# --- the study ----------------------------------------------------------------------------


class StudyObserver:
    """Hooks for a progress display; the default does nothing."""

    def planned(self, todo: int, skipped: int) -> None: ...

    def started(self, config: RunConfig) -> None: ...

    def evaluated(self, point: EvalPoint) -> None: ...

    def finished(self, outcome: RunOutcome) -> None: ...


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
    data: Mnist | None = None,
    observer: StudyObserver | None = None,
) -> StudyReport:
    """Run what is missing of the grid and return what happened."""
    tracking_uri = resolve_tracking_uri(tracking_uri)
    if isinstance(workers, bool) or workers < 1:
        raise StudyError(f"--workers must be 1 or more, got {workers}.")
    check_executor(executor, tracking_uri, ray_address)
    data_root = str(Path(data.root if data else resolve_data_dir(data_dir)).resolve())
    if data is None:
        ensure_mnist(Path(data_root), download=True)  # missing data: fail before any write
    client = open_store(tracking_uri)  # creates (migrates) the store once, before any worker
    observer = observer or StudyObserver()
    plan = plan_study(client, spec, force)
    total = len(spec.run_configs())
    observer.planned(len(plan.todo), total - len(plan.todo))
    common = dict(tracking_uri=tracking_uri, experiment_id=plan.experiment_id, study=spec.name)
    if executor == "ray":
        outcomes = _run_on_ray(plan.todo, common, data_root, ray_address, observer)
    elif workers == 1:
        # Workers load their own copy; in process, load once (verified just above).
        _worker_data[data_root] = data or load_mnist(data_root, download=False, verify=False)
        tags = {"contended": "false", "executor": "local", "workers": "1"}
        outcomes = []
        for config in plan.todo:
            observer.started(config)
            outcome = run_one(
                config, data_dir=data_root, extra_tags=tags, on_eval=observer.evaluated, **common
            )
            outcomes.append(outcome)
            observer.finished(outcome)
    else:
        outcomes = _run_in_processes(plan.todo, common, data_root, workers, observer)
    return StudyReport(total, total - len(plan.todo), outcomes, plan.orphaned, plan.experiment_id)


def _run_in_processes(
    todo: list[RunConfig],
    common: dict[str, str],
    data_root: str,
    workers: int,
    observer: StudyObserver,
) -> list[RunOutcome]:
    threads = max(1, (os.cpu_count() or 1) // workers)
    tags = {"contended": "true", "executor": "processes", "workers": str(workers)}
    outcomes: list[RunOutcome] = []
    pool = ProcessPoolExecutor(
        workers, mp_context=get_context("spawn"), initializer=stop_on_sigterm
    )
    try:
        pending = set()
        for config in todo:
            config = dataclasses.replace(config, threads=threads)
            pending.add(pool.submit(run_one, config, data_dir=data_root, extra_tags=tags, **common))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                outcome = future.result()
                outcomes.append(outcome)
                observer.finished(outcome)
    except BaseException:
        for process in list(pool._processes.values()):  # let each worker mark its run KILLED
            process.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    return outcomes


def _run_on_ray(
    todo: list[RunConfig],
    common: dict[str, str],
    data_root: str,
    ray_address: str | None,
    observer: StudyObserver,
) -> list[RunOutcome]:
    try:
        import ray
    except ImportError:
        raise StudyError(
            "--executor ray needs Ray: pip install 'mnistlab[ray]' (make install does)."
        ) from None
    remote_cluster = bool(ray_address) and ray_address != "local"
    runtime_env: dict[str, Any] = {"env_vars": {"MNISTLAB_DATA": data_root}}
    if remote_cluster:  # ship this package to the cluster's workers
        runtime_env["py_modules"] = [str(Path(__file__).parent)]
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(
            address=ray_address if remote_cluster else None,
            runtime_env=runtime_env,
            include_dashboard=False,
            log_to_driver=False,
        )
    cpus_per_run = (
        1 if remote_cluster else max(1, int(ray.available_resources().get("CPU", 1)) // 2)
    )
    task = ray.remote(num_cpus=cpus_per_run, max_retries=2)(run_one)
    tags = {"contended": "true", "executor": "ray", "workers": "ray"}
    refs = [
        task.remote(
            dataclasses.replace(config, threads=cpus_per_run),
            data_dir=data_root,
            extra_tags=tags,
            **common,
        )
        for config in todo
    ]
    outcomes = []
    try:
        pending = refs
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            outcome = ray.get(done[0])
            outcomes.append(outcome)
            observer.finished(outcome)
    except BaseException:
        for ref in refs:
            ray.cancel(ref, force=True)
        raise
    finally:
        if started_here:
            ray.shutdown()
    return outcomes


def describe(outcome: RunOutcome) -> str:
    return (
        f"{run_name(outcome.config)}: test accuracy {outcome.test_accuracy:.4f}, "
        f"{outcome.train_seconds:.1f} s training, run {outcome.run_id}"
    )
