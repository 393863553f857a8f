"""Where a study's runs train: in this process, in local processes, or on Ray.

One contract: an executor has `tags` (recorded on every run it trains: which executor, how
many workers; whether timings were contended is a fact each run finds out itself, see
store.liveness), `execution(config)`, the (device, threads) a run of config will have there,
and `run(todo, target, observer)`, which trains each planned run into the target and returns
the outcomes. Every executor trains a run through `train_one`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import signal
import sys
import uuid
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from mnistlab.errors import MnistlabError, NonFiniteLossError
from mnistlab.names import CLAIM_TAG, EXECUTOR_TAG, PARENT_TAG, WORKERS_TAG
from mnistlab.spec.run import PlannedRun, RunConfig
from mnistlab.store.connect import is_local_store
from mnistlab.store.store import open_store
from mnistlab.study.runner import ClaimedElsewhere, tracked_train
from mnistlab.training.datasets import ImageData, load_dataset
from mnistlab.training.divergence import diverged
from mnistlab.training.interrupts import Terminated, stop_on_sigterm
from mnistlab.training.loop import EvalPoint

EXECUTORS = ("local", "ray")


class StudyError(MnistlabError):
    """The study cannot run as asked; the message says why and what to do."""


@dataclass(frozen=True)
class RunTarget:
    """Where a study's runs go and where their data comes from: the same for every run."""

    tracking_uri: str
    experiment_id: str
    study: str
    data_root: str
    dataset: str
    parent_run_id: str = ""  # the study run the runs nest under in the MLflow UI
    claim_since: int | None = None  # when the study planned (ms): each run claims its config


@dataclass
class RunOutcome:
    run: PlannedRun
    run_id: str
    test_accuracy: float
    train_seconds: float
    diverged: bool = False  # finished, but its loss ended above where it started
    failure: str = ""  # why the run is FAILED (its loss became NaN); "" when it finished
    claimed_by: str = ""  # not trained: this run owns the config (another invocation's)

    @property
    def failed(self) -> bool:
        return bool(self.failure)

    @property
    def trained(self) -> bool:
        return not self.failure and not self.claimed_by


class StudyObserver:
    """Hooks for a progress display; the default does nothing."""

    def planned(self, todo: int, skipped: int, busy: int = 0) -> None:
        """Before training: runs to train, finished ones skipped, and ones another live
        invocation is training (left to it)."""

    def started(self, run: PlannedRun) -> None: ...

    def evaluated(self, point: EvalPoint) -> None: ...

    def finished(self, outcome: RunOutcome) -> None: ...

    def warned(self, message: str) -> None:
        """A problem worth a line before training (e.g. a study name reused by another spec)."""


@functools.cache
def _worker_data(root: str, dataset: str) -> ImageData:
    """A worker process loads (and verifies) its data once, for every run it trains."""
    return load_dataset(root, dataset)


def train_one(
    planned: PlannedRun,
    target: RunTarget,
    tags: dict[str, str],
    data: ImageData | None = None,
    on_eval=None,  # noqa: ANN001 - Callable[[EvalPoint], None]
) -> RunOutcome:
    """Train and track one run; without data, this process's copy is loaded once."""
    data = data or _worker_data(target.data_root, target.dataset)
    store = open_store(target.tracking_uri)
    if target.parent_run_id:
        tags = {**tags, PARENT_TAG: target.parent_run_id}
    try:
        run_id, result = tracked_train(
            planned,
            data,
            store,
            target.experiment_id,
            target.study,
            tags,
            on_eval,
            claim_since=target.claim_since,
        )
    except NonFiniteLossError as error:  # this run is lost, the study's other runs are not
        return RunOutcome(planned, error.run_id, math.nan, 0.0, failure=str(error))
    except ClaimedElsewhere as claimed:  # another invocation trains it: not ours to repeat
        return RunOutcome(planned, "", math.nan, 0.0, claimed_by=claimed.holder)
    return RunOutcome(
        planned,
        run_id,
        result.test_accuracy[-1],
        sum(result.epoch_train_seconds),
        diverged(result.train_loss),
    )


def _with_threads(planned: PlannedRun, threads: int) -> PlannedRun:
    return dataclasses.replace(planned, config=dataclasses.replace(planned.config, threads=threads))


def _device_of(config: RunConfig) -> str:
    from mnistlab.training.loop import resolve_device

    return str(resolve_device(config.device))


class InProcess:
    """One run at a time in this process: the default, and the one that gives clean timings
    (unless another study trains on this host meanwhile: the runs find that out)."""

    tags = {EXECUTOR_TAG: "local", WORKERS_TAG: "1"}

    def __init__(self, data: ImageData | None = None) -> None:
        self.data = data

    def execution(self, config: RunConfig) -> tuple[str, str]:
        """(device, threads) a run of config will have here, as its tags will record them."""
        import torch

        return _device_of(config), str(config.threads or torch.get_num_threads())

    def run(
        self, todo: list[PlannedRun], target: RunTarget, observer: StudyObserver
    ) -> list[RunOutcome]:
        if todo and self.data is None:  # run_study verified the files just before
            self.data = load_dataset(target.data_root, target.dataset, download=False, verify=False)
        outcomes = []
        for planned in todo:
            observer.started(planned)
            outcome = train_one(planned, target, self.tags, self.data, observer.evaluated)
            outcomes.append(outcome)
            observer.finished(outcome)
        return outcomes


class LocalProcesses:
    """K worker processes on this machine, the cores split between them (timings contended)."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.tags = {EXECUTOR_TAG: "processes", WORKERS_TAG: str(workers)}
        self.threads = max(1, (os.cpu_count() or 1) // workers)

    def execution(self, config: RunConfig) -> tuple[str, str]:
        return _device_of(config), str(self.threads)

    def run(
        self, todo: list[PlannedRun], target: RunTarget, observer: StudyObserver
    ) -> list[RunOutcome]:
        jobs = [(_with_threads(planned, self.threads), target, self.tags) for planned in todo]
        outcomes: list[RunOutcome] = []
        pool = get_context("spawn").Pool(self.workers, initializer=_worker_signals)
        try:
            for outcome in pool.imap_unordered(_train_job, jobs):
                outcomes.append(outcome)
                observer.finished(outcome)
        except BaseException:
            pool.terminate()  # SIGTERM each worker: it marks its current run KILLED, then exits
            raise
        pool.close()
        pool.join()
        return outcomes


def _worker_signals() -> None:
    """A worker leaves Ctrl-C to the study: a terminal sends SIGINT to the whole process group,
    and a worker interrupted anywhere (inside a store write too) would print its traceback. The
    study answers Ctrl-C with pool.terminate(), whose SIGTERM each worker handles as the
    in-process study handles Ctrl-C: the run in progress ends KILLED."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stop_on_sigterm()


def _train_job(job: tuple[PlannedRun, RunTarget, dict[str, str]]) -> RunOutcome:
    try:
        return train_one(*job)
    except KeyboardInterrupt:  # SIGTERM: the run is marked KILLED; end without a traceback
        raise SystemExit(Terminated.exit_code) from None


class Ray:
    """Ray tasks, on a local Ray or an existing cluster (which needs a tracking server)."""

    tags = {EXECUTOR_TAG: "ray", WORKERS_TAG: "ray"}

    def __init__(self, address: str | None) -> None:
        self.address = address

    @property
    def remote_cluster(self) -> bool:
        return bool(self.address) and self.address != "local"

    def execution(self, config: RunConfig) -> tuple[str, str]:
        """As run() will set it: one CPU per run on a cluster, half this machine's locally."""
        threads = 1 if self.remote_cluster else max(1, (os.cpu_count() or 1) // 2)
        return _device_of(config), str(threads)

    def run(
        self, todo: list[PlannedRun], target: RunTarget, observer: StudyObserver
    ) -> list[RunOutcome]:
        try:
            import ray
        except ImportError:
            raise StudyError(
                "--executor ray needs Ray: pip install 'mnistlab[ray]' (make install does)."
            ) from None
        runtime_env: dict[str, Any] = {"env_vars": {"MNISTLAB_DATA": target.data_root}}
        if self.remote_cluster:  # ship this package to the cluster's workers
            runtime_env["py_modules"] = [str(Path(__file__).parents[1])]
        started_here = not ray.is_initialized()
        if started_here:
            ray.init(
                address=self.address if self.remote_cluster else None,
                runtime_env=runtime_env,
                include_dashboard=False,
                log_to_driver=False,
            )
        cpus_per_run = (
            1 if self.remote_cluster else max(1, int(ray.available_resources().get("CPU", 1)) // 2)
        )
        task = ray.remote(num_cpus=cpus_per_run, max_retries=2)(train_one)
        # One claim token per task: a retry after its worker died finds its own earlier
        # attempt by it (runner.claim), cleans it up and counts it.
        refs = [
            task.remote(
                _with_threads(planned, cpus_per_run),
                target,
                {**self.tags, CLAIM_TAG: uuid.uuid4().hex},
            )
            for planned in todo
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


Executor = InProcess | LocalProcesses | Ray


def local_ray_problem(python: str) -> str | None:
    """Why a local Ray cluster cannot start its workers with this Python, or None.

    Ray's raylet starts each worker through a shell command line with the interpreter's path
    unquoted (ray._private.runtime_env.context), so a path holding a space fails, after five
    retries, with "Failed to startup worker" and no word of why.
    """
    if not any(c.isspace() for c in python):
        return None
    return (
        f"Ray cannot start its workers from a Python whose path holds a space ({python}): Ray "
        "runs each worker through a shell command that does not quote it. Move the project "
        "and its .venv to a folder without spaces, or train with --workers N (local processes) "
        "instead of --executor ray."
    )


def choose_executor(
    executor: str,
    workers: int,
    ray_address: str | None,
    tracking_uri: str,
    data: ImageData | None = None,
) -> Executor:
    """The executor asked for, after checking that it can reach the store."""
    if executor not in EXECUTORS:
        raise StudyError(f"Unknown executor {executor!r}; use one of {', '.join(EXECUTORS)}.")
    if isinstance(workers, bool) or workers < 1:
        raise StudyError(f"--workers must be 1 or more, got {workers}.")
    if executor == "ray":
        ray = Ray(ray_address)
        if not ray.remote_cluster and (problem := local_ray_problem(sys.executable)):
            raise StudyError(problem)
        if ray.remote_cluster and is_local_store(tracking_uri):
            raise StudyError(
                f"Ray cluster {ray_address} cannot write to the local store {tracking_uri}: its "
                "workers run on other machines. Start an MLflow server (mlflow server --host "
                "0.0.0.0 --backend-store-uri sqlite:///mlflow.db) and pass --tracking-uri "
                "http://HOST:5000."
            )
        return ray
    return InProcess(data) if workers == 1 else LocalProcesses(workers)
