"""The only module that imports mlflow: writing runs and reading them back.

Per-step metrics are buffered and written with log_batch (up to 1,000 metrics a call);
one call per step would cost seconds per run on SQLite.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric, Param, Run, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_RUN_NAME

from mnistlab.errors import MnistlabError

DEFAULT_STORE_FILE = "mlflow.db"
BATCH_LIMIT = 1000  # MLflow's maximum number of metrics per log_batch call
LOCK_RETRY_SECONDS = 120.0
T = TypeVar("T")


class TrackingError(MnistlabError):
    """The tracking store cannot be used; the message says why and what to do."""


def default_tracking_uri() -> str:
    return f"sqlite:///{Path(DEFAULT_STORE_FILE).resolve()}"


def resolve_tracking_uri(uri: str | None = None) -> str:
    """--tracking-uri, else $MLFLOW_TRACKING_URI, else a SQLite file in the working directory."""
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        # Absolute, so that worker processes started elsewhere write to the same file.
        uri = f"sqlite:///{Path(uri.removeprefix('sqlite:///')).resolve()}"
    return uri


def is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:", "/", ".")) or "://" not in uri


def sqlite_path(uri: str) -> Path | None:
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def _is_lock_error(error: Exception) -> bool:
    return "database is locked" in str(error) or "database table is locked" in str(error)


def with_lock_retry(call: Callable[[], T]) -> T:
    """Retry a store call while SQLite reports a lock held by another writer process."""
    deadline = time.monotonic() + LOCK_RETRY_SECONDS
    delay = 0.05
    while True:
        try:
            return call()
        except (MlflowException, sqlite3.OperationalError) as error:
            if not _is_lock_error(error) or time.monotonic() > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def open_store(uri: str | None = None) -> MlflowClient:
    """A client for the store, checked to answer; for SQLite also created and put in WAL mode."""
    uri = resolve_tracking_uri(uri)
    path = sqlite_path(uri)
    if path is not None and not path.parent.is_dir():
        raise TrackingError(
            f"The tracking store {uri} cannot be created: folder {path.parent} does not exist. "
            "Create it, or pass another --tracking-uri."
        )
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # quiet table-creation chatter
    client = MlflowClient(uri)  # no mlflow.set_tracking_uri: it leaks into the environment
    # Fail fast on an unreachable server instead of MLflow's minutes of retries.
    saved = {
        k: os.environ.get(k)
        for k in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT")
    }
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = saved["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] or "1"
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = saved["MLFLOW_HTTP_REQUEST_TIMEOUT"] or "10"
    try:
        with_lock_retry(lambda: client.search_experiments(max_results=1))
    except Exception as error:  # connection, HTTP and database errors alike
        reason = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        raise TrackingError(
            f"The MLflow tracking store {uri} cannot be reached ({reason}). Start the server "
            "or fix the address (--tracking-uri or MLFLOW_TRACKING_URI); leave both unset to use "
            f"the local SQLite file ./{DEFAULT_STORE_FILE}."
        ) from None
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
    if path is not None:
        # WAL lets readers and one writer work at once; the setting is stored in the file.
        with sqlite3.connect(path, timeout=30) as connection:
            connection.execute("PRAGMA journal_mode=WAL")
    return client


def experiment_id_for(client: MlflowClient, name: str, create: bool = True) -> str | None:
    """The id of the experiment called name, created (with artifacts beside a SQLite store)."""
    experiment = with_lock_retry(lambda: client.get_experiment_by_name(name))
    if experiment is not None:
        return experiment.experiment_id
    if not create:
        return None
    path = sqlite_path(client.tracking_uri)
    location = (path.parent / "mlartifacts" / name).as_uri() if path else None
    try:
        return with_lock_retry(lambda: client.create_experiment(name, artifact_location=location))
    except MlflowException:  # another process created it first
        return client.get_experiment_by_name(name).experiment_id


class TrackedRun:
    """One MLflow run and the metric sink that training writes to.

    Use as a context manager: a clean exit marks the run FINISHED, Ctrl-C or SIGTERM
    marks it KILLED, any other error FAILED with the reason as the tag failure_reason.
    """

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        run_name: str,
        params: dict[str, Any],
        tags: dict[str, str],
    ) -> None:
        self.client = client
        self.experiment_id = experiment_id
        self.run_name = run_name
        self.params = params
        self.tags = tags
        self.run_id = ""
        self.status = ""
        self._buffer: list[Metric] = []

    def __enter__(self) -> TrackedRun:
        run = with_lock_retry(
            lambda: self.client.create_run(
                self.experiment_id, tags={**self.tags, MLFLOW_RUN_NAME: self.run_name}
            )
        )
        self.run_id = run.info.run_id
        params = [Param(key, str(value)) for key, value in self.params.items()]
        with_lock_retry(lambda: self.client.log_batch(self.run_id, params=params))
        return self

    def log(
        self,
        key: str,
        values: Sequence[float],
        steps: Sequence[int],
        timestamps_ms: Sequence[int] | None = None,
    ) -> None:
        now = int(time.time() * 1000)
        stamps = timestamps_ms if timestamps_ms is not None else [now] * len(values)
        self._buffer.extend(
            Metric(key, float(v), int(t), int(s))
            for v, s, t in zip(values, steps, stamps, strict=True)
        )

    def flush(self) -> None:
        buffer, self._buffer = self._buffer, []
        for start in range(0, len(buffer), BATCH_LIMIT):
            chunk = buffer[start : start + BATCH_LIMIT]
            with_lock_retry(lambda c=chunk: self.client.log_batch(self.run_id, metrics=c))

    def set_tags(self, tags: dict[str, str]) -> None:
        run_tags = [RunTag(k, str(v)) for k, v in tags.items()]
        with_lock_retry(lambda: self.client.log_batch(self.run_id, tags=run_tags))

    def log_dataset(
        self, name: str, digest: str, source: str, context: str, features: Any, targets: Any
    ) -> None:
        with warnings.catch_warnings():  # a local path matches two source types; either is right
            warnings.simplefilter("ignore", UserWarning)
            dataset = mlflow.data.from_numpy(
                features, source=source, targets=targets, name=name, digest=digest
            )
        entry = DatasetInput(
            dataset._to_mlflow_entity(), tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)]
        )
        with_lock_retry(lambda: self.client.log_inputs(self.run_id, datasets=[entry]))

    def log_file(self, local_path: Path, artifact_path: str) -> None:
        with_lock_retry(
            lambda: self.client.log_artifact(self.run_id, str(local_path), artifact_path)
        )

    def log_state_dict(self, state_dict: dict, name: str = "weights.pt") -> None:
        import torch

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            torch.save(state_dict, path)
            self.log_file(path, "model")

    def _terminate(self, status: str) -> None:
        self.status = status
        with_lock_retry(lambda: self.client.set_terminated(self.run_id, status=status))

    def __exit__(self, exc_type, exc, tb) -> bool:  # noqa: ANN001
        if not self.run_id:
            return False
        if exc_type is None:
            self.flush()
            self._terminate("FINISHED")
            return False
        try:  # keep what was measured before the failure
            self.flush()
        except Exception:  # noqa: BLE001 - the original error matters more
            self._buffer = []
        killed = exc_type in (KeyboardInterrupt, SystemExit)
        reason = "interrupted" if killed else f"{exc_type.__name__}: {exc}"
        self.set_tags({"failure_reason": reason[:4000]})
        self._terminate("KILLED" if killed else "FAILED")
        return False


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def study_runs(client: MlflowClient, experiment_id: str) -> list[Run]:
    """Every run of the experiment (all statuses), oldest first."""
    runs: list[Run] = []
    token = None
    while True:
        page = with_lock_retry(
            lambda t=token: client.search_runs(
                [experiment_id],
                max_results=1000,
                order_by=["attributes.start_time ASC"],
                page_token=t,
            )
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def fail_orphaned_runs(client: MlflowClient, runs: list[Run]) -> list[str]:
    """Mark RUNNING runs whose process on this host is gone (kill -9) as FAILED."""
    host = socket.gethostname()
    orphaned = []
    for run in runs:
        tags = run.data.tags
        if run.info.status != "RUNNING" or tags.get("host") != host:
            continue
        pid = int(tags.get("pid", "0") or 0)
        if pid and pid != os.getpid() and process_alive(pid):
            continue
        with_lock_retry(
            lambda r=run: client.log_batch(
                r.info.run_id, tags=[RunTag("failure_reason", "process died while running")]
            )
        )
        with_lock_retry(lambda r=run: client.set_terminated(r.info.run_id, status="FAILED"))
        orphaned.append(run.info.run_id)
    return orphaned


# --- reading back -------------------------------------------------------------------------

HISTORY_METRICS = (
    "train_loss",
    "eval_accuracy",
    "eval_loss",
    "train_seconds",
    "test_accuracy",
    "test_loss",
    "epoch_train_seconds",
    "epoch_seconds",
)


def runs_frame(runs: list[Run]) -> pd.DataFrame:
    """One row per run: ids, status, params (as logged), tags and final metrics."""
    rows = []
    for run in runs:
        row: dict[str, Any] = {
            "run_id": run.info.run_id,
            "run_name": run.info.run_name,
            "status": run.info.status,
            "start_time": run.info.start_time,
            "end_time": run.info.end_time,
        }
        row.update({f"param.{k}": v for k, v in run.data.params.items()})
        row.update({f"tag.{k}": v for k, v in run.data.tags.items() if not k.startswith("mlflow.")})
        row.update({f"metric.{k}": v for k, v in run.data.metrics.items()})
        rows.append(row)
    return pd.DataFrame(rows)


def history_frame(client: MlflowClient, run_ids: Sequence[str]) -> pd.DataFrame:
    """One row per (run, metric, step): columns run_id, key, step, value, timestamp."""
    frames = []
    for run_id in run_ids:
        for key in HISTORY_METRICS:
            history = with_lock_retry(lambda r=run_id, k=key: client.get_metric_history(r, k))
            if history:
                frames.append(
                    pd.DataFrame(
                        {
                            "run_id": run_id,
                            "key": key,
                            "step": [m.step for m in history],
                            "value": [m.value for m in history],
                            "timestamp": [m.timestamp for m in history],
                        }
                    )
                )
    if not frames:
        return pd.DataFrame(columns=["run_id", "key", "step", "value", "timestamp"])
    return pd.concat(frames, ignore_index=True).sort_values(["run_id", "key", "step"])


def download_weights(client: MlflowClient, run_id: str, folder: Path) -> Path:
    return Path(client.download_artifacts(run_id, "model/weights.pt", str(folder)))


class AnalysisError(MnistlabError):
    """A study cannot be analysed as asked; the message says why and what to do."""


def _tag_frame(runs: list[Run]) -> pd.DataFrame:
    """Tidy run rows: the tags analysis and the report need, typed."""
    rows = []
    for run in runs:
        tags = run.data.tags
        rows.append(
            {
                "run_id": run.info.run_id,
                "run_name": run.info.run_name,
                "model": tags.get("model", ""),
                "seed": int(tags.get("seed", -1)),
                "status": run.info.status,
                "config_hash": tags.get("config_hash", ""),
                "contended": tags.get("contended", "false") == "true",
                "executor": tags.get("executor", ""),
                "threads": tags.get("threads", ""),
                "device": tags.get("device", ""),
                "gpu": tags.get("gpu", ""),
                "cpu": tags.get("cpu", ""),
                "host": tags.get("host", ""),
                "git_commit": tags.get("git_commit", ""),
                "git_dirty": tags.get("git_dirty", ""),
                "torch_version": tags.get("torch_version", ""),
                "mlflow_version": tags.get("mlflow_version", ""),
                "python_version": tags.get("python_version", ""),
                "start_time": run.info.start_time,
            }
        )
    return pd.DataFrame(rows)


def load_study(
    client: MlflowClient, study: str
) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
    """(spec record, runs, history) of a study's current finished runs.

    Only runs whose config hash belongs to the spec last run under this name count, and of
    reruns (--force) the latest; older settings never mix with new ones.
    """
    experiment = with_lock_retry(lambda: client.get_experiment_by_name(study))
    if experiment is None:
        known = sorted(e.name for e in client.search_experiments() if e.name != "Default")
        raise AnalysisError(
            f"No study called {study!r} in {client.tracking_uri}. Known: "
            f"{', '.join(known) or 'none'}. Run `mnistlab study experiments/{study}.toml` first, "
            "or pass the --tracking-uri where it ran."
        )
    spec = json.loads(experiment.tags.get("spec", "{}"))
    hashes = set(json.loads(experiment.tags.get("config_hashes", "[]")))
    runs = _tag_frame(study_runs(client, experiment.experiment_id))
    if runs.empty or not (runs["status"] == "FINISHED").any():
        raise AnalysisError(
            f"Study {study!r} has no finished runs in {client.tracking_uri}. "
            f"Run `mnistlab study experiments/{study}.toml` to train them."
        )
    current = runs[(runs["status"] == "FINISHED") & runs["config_hash"].isin(hashes)]
    current = current.sort_values("start_time").drop_duplicates("config_hash", keep="last")
    history = history_frame(client, current["run_id"].tolist())
    return spec, current.reset_index(drop=True), history
