"""The tracking store: the only module that imports mlflow.

It owns every write (experiments and their tags, runs, metrics, datasets, artifacts, run
status) and every read (experiments, runs as plain records, metric histories, weights).
It does not decide which runs count as a study's evidence: that is results.py.

Per-step metrics are buffered and written with log_batch (up to 1,000 metrics a call);
one call per step would cost seconds per run on SQLite.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_RUN_NAME

from mnistlab.errors import MnistlabError, first_line
from mnistlab.names import EXPERIMENT_KIND, PREDICTIONS_FILE, ROLE_TAG, SPEC_TAG

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; creation is then not serialised
    fcntl = None

DEFAULT_STORE_FILE = "mlflow.db"
BATCH_LIMIT = 1000  # MLflow's maximum number of metrics per log_batch call
PARAMS_TAGS_LIMIT = 100  # and of params, and of tags
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


SQLITE_HEADER = b"SQLite format 3\x00"


def batched_writes(
    client: MlflowClient,
    run_id: str,
    params: Sequence[Param] = (),
    tags: Sequence[RunTag] = (),
    metrics: Sequence[Metric] = (),
) -> list[Callable[[], object]]:
    """The log_batch calls that write these to a run, each within MLflow's limits per call,
    params first, then tags, then metrics: for the caller to run now or hand to a writer."""
    calls: list[Callable[[], object]] = []
    for kind, items, size in (
        ("params", params, PARAMS_TAGS_LIMIT),
        ("tags", tags, PARAMS_TAGS_LIMIT),
        ("metrics", metrics, BATCH_LIMIT),
    ):
        for start in range(0, len(items), size):
            chunk = list(items[start : start + size])
            calls.append(lambda k=kind, c=chunk: client.log_batch(run_id, **{k: c}))
    return calls


def check_sqlite_path(uri: str, path: Path, create: bool) -> None:
    """Refuse at once what MLflow would retry for minutes or fail on with a traceback."""
    fix = "Pass another --tracking-uri (or MLFLOW_TRACKING_URI)"
    if path.is_dir():
        raise TrackingError(f"The tracking store {uri} is a folder, not a SQLite file. {fix}.")
    if not path.exists():
        if not create:
            raise TrackingError(
                f"There is no tracking store at {path}: nothing has been tracked there. Run "
                "`mnistlab study` or `mnistlab train` first, or pass the --tracking-uri where "
                "the runs are."
            )
        if not path.parent.is_dir():
            raise TrackingError(
                f"The tracking store {uri} cannot be created: folder {path.parent} does not "
                f"exist. Create it, or {fix[0].lower() + fix[1:]}."
            )
        if not os.access(path.parent, os.W_OK):
            raise TrackingError(
                f"The tracking store {uri} cannot be created: folder {path.parent} is not "
                f"writable. {fix}."
            )
        return
    with open(path, "rb") as handle:
        header = handle.read(len(SQLITE_HEADER))
    if header and header != SQLITE_HEADER:
        raise TrackingError(
            f"{path} is not a SQLite database, so it cannot be the tracking store. {fix}, or "
            "move that file away."
        )
    if not os.access(path, os.R_OK | (os.W_OK if create else 0)):
        raise TrackingError(f"The tracking store {path} cannot be opened: permission denied.")


def open_store(uri: str | None = None, create: bool = True) -> Store:
    """The store, checked to answer; for SQLite also created and put in WAL mode.

    create=False (commands that only read): a SQLite file that does not exist is an error,
    never created.
    """
    uri = resolve_tracking_uri(uri)
    path = sqlite_path(uri)
    if path is not None:
        check_sqlite_path(uri, path, create)
    elif "://" not in uri or uri.startswith("file:"):
        raise TrackingError(
            f"{uri} is a folder store, which MLflow no longer maintains. Use a SQLite file "
            f"(--tracking-uri sqlite:///{DEFAULT_STORE_FILE}) or a tracking server "
            "(--tracking-uri http://HOST:5000)."
        )
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # quiet table-creation chatter
    # Fail fast on an unreachable server instead of MLflow's minutes of retries per call:
    # a run's writes are retried by writer.Writer, within its stated window, instead.
    # Set for this process and the workers it starts, unless the user set them.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    try:
        with creation_lock(path):
            client = _connect(uri, path)
            if path is not None:
                # WAL lets readers and one writer work at once; the setting is in the file.
                with sqlite3.connect(path, timeout=30) as connection:
                    connection.execute("PRAGMA journal_mode=WAL")
    except Exception as error:  # connection, HTTP and database errors alike
        raise TrackingError(
            f"The MLflow tracking store {uri} cannot be reached ({first_line(error)}). Start "
            "the server or fix the address (--tracking-uri or MLFLOW_TRACKING_URI); leave both "
            f"unset to use the local SQLite file ./{DEFAULT_STORE_FILE}."
        ) from None
    return Store(client)


CREATION_RETRY_SECONDS = 60.0  # a store another process is creating is ready well within this


@contextlib.contextmanager
def creation_lock(path: Path | None) -> Iterator[None]:
    """Serialise opening (creating, upgrading) a SQLite store across mnistlab processes.

    MLflow creates and migrates the schema on first open; two processes doing it at once
    race (tables half made, `AttributeError: dimension_attributes`). An exclusive lock on
    <store>.lock beside the file lets one create while the others wait, then find it made.
    """
    if path is None or fcntl is None:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _being_created(path: Path | None) -> bool:
    """A SQLite store written to in the last minute: perhaps another process creating it. An
    old file that fails to open is unusable, and is reported at once."""
    if path is None:
        return False
    try:
        return time.time() - path.stat().st_mtime < CREATION_RETRY_SECONDS
    except OSError:
        return True  # not there (yet): the other process has not written it


def _connect(uri: str, path: Path | None) -> MlflowClient:
    """A client that has answered. On SQLite, a process outside mnistlab (the UI, a script)
    may be creating the schema right now, which the lock does not stop: its half-made
    tables fail our open, so that is retried until the schema is whole."""
    deadline = time.monotonic() + (CREATION_RETRY_SECONDS if path is not None else 0)
    delay = 0.1
    while True:
        try:
            client = MlflowClient(uri)  # no mlflow.set_tracking_uri: it leaks into the env
            with_lock_retry(lambda c=client: c.search_experiments(max_results=1))
            return client
        except Exception:
            if time.monotonic() > deadline or not _being_created(path):
                raise
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


@dataclass(frozen=True)
class StoredExperiment:
    experiment_id: str
    name: str
    tags: dict[str, str]

    @property
    def spec_record(self) -> dict[str, Any] | None:
        """The spec last run under this name, as stored; None for a non-study experiment."""
        return json.loads(self.tags[SPEC_TAG]) if SPEC_TAG in self.tags else None


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


def _stored(run: Any) -> StoredRun:
    return StoredRun(
        run.info.run_id,
        run.info.run_name,
        run.info.status,
        run.info.start_time,
        dict(run.data.tags),
        dict(run.data.metrics),
        run.info.end_time,
    )


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """One tracking store (a SQLite file or a server): every read and write mnistlab makes."""

    def __init__(self, client: MlflowClient) -> None:
        self.client = client

    @property
    def tracking_uri(self) -> str:
        return self.client.tracking_uri

    # --- experiments ------------------------------------------------------------------

    def experiment_id(self, name: str, create: bool = True) -> str | None:
        """The id of the experiment called name, created (artifacts beside a SQLite store).

        A deleted experiment is refused with the command that restores it: its runs are
        still in the store, and a new experiment cannot take its name.
        """
        if not name or not name.strip():
            raise TrackingError("An experiment needs a name; pass --experiment NAME.")
        experiment = with_lock_retry(lambda: self.client.get_experiment_by_name(name))
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                raise TrackingError(
                    f"Experiment {name!r} (id {experiment.experiment_id}) was deleted in "
                    f"{self.tracking_uri}; its runs are still there. Restore it with "
                    f"`MLFLOW_TRACKING_URI={self.tracking_uri} mlflow experiments restore "
                    f"--experiment-id {experiment.experiment_id}`, or use another name."
                )
            return experiment.experiment_id
        if not create:
            return None
        path = sqlite_path(self.tracking_uri)
        location = (path.parent / "mlartifacts" / name).as_uri() if path else None
        try:
            return with_lock_retry(
                lambda: self.client.create_experiment(name, artifact_location=location)
            )
        except MlflowException as error:
            raced = self.client.get_experiment_by_name(name)  # another process created it
            if raced is None:
                raise TrackingError(
                    f"Experiment {name!r} cannot be created in {self.tracking_uri}: "
                    f"{first_line(error)}"
                ) from None
            return raced.experiment_id

    def find_experiment(self, name: str) -> StoredExperiment | None:
        """The experiment called name with its tags, or None when there is none."""
        experiment = with_lock_retry(lambda: self.client.get_experiment_by_name(name))
        if experiment is None:
            return None
        return StoredExperiment(experiment.experiment_id, name, dict(experiment.tags))

    def record_spec(self, experiment_id: str, record: dict[str, Any]) -> None:
        """Store the study's spec on its experiment, so that analysis needs only the store.

        The runs that belong to it follow from the spec (their config hashes), so no list of
        them is stored: a large grid would not fit in a tag.
        """
        value = json.dumps(record)
        with_lock_retry(lambda: self.client.set_experiment_tag(experiment_id, SPEC_TAG, value))

    def mark_as_training(self, experiment_id: str) -> None:
        key, value = EXPERIMENT_KIND
        with_lock_retry(lambda: self.client.set_experiment_tag(experiment_id, key, value))

    def study_run(self, experiment_id: str, study: str, create: bool = True) -> str | None:
        """The id of the study's one study run (the oldest, should two invocations race)."""
        found = with_lock_retry(
            lambda: self.client.search_runs(
                [experiment_id],
                filter_string=f"tags.`{ROLE_TAG}` = 'study'",
                order_by=["attributes.start_time ASC"],
                max_results=1,
            )
        )
        if found:
            return found[0].info.run_id
        if not create:
            return None
        run = with_lock_retry(
            lambda: self.client.create_run(
                experiment_id, tags={ROLE_TAG: "study", MLFLOW_RUN_NAME: f"{study} (study)"}
            )
        )
        # FINISHED at once: it holds records, it does not run; writing to it later is allowed.
        with_lock_retry(lambda: self.client.set_terminated(run.info.run_id, "FINISHED"))
        return run.info.run_id

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        run_tags = [RunTag(k, str(v)) for k, v in tags.items()]
        for call in batched_writes(self.client, run_id, tags=run_tags):
            with_lock_retry(call)

    def log_run_metrics(self, run_id: str, values: dict[str, float], step: int) -> None:
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, step) for k, v in values.items()]
        for call in batched_writes(self.client, run_id, metrics=metrics):
            with_lock_retry(call)

    def log_files(self, run_id: str, folder: Path, artifact_path: str) -> None:
        """Upload every file of folder under artifact_path, replacing files of the same name."""
        with_lock_retry(lambda: self.client.log_artifacts(run_id, str(folder), artifact_path))

    def list_files(self, run_id: str, artifact_path: str) -> list[str]:
        return [
            a.path
            for a in with_lock_retry(lambda: self.client.list_artifacts(run_id, artifact_path))
        ]

    def download(self, run_id: str, artifact_path: str, folder: Path) -> Path:
        return Path(self.client.download_artifacts(run_id, artifact_path, str(folder)))

    def experiment_names(self) -> list[str]:
        experiments = with_lock_retry(lambda: self.client.search_experiments())
        return sorted(e.name for e in experiments if e.name != "Default")

    # --- runs -------------------------------------------------------------------------

    def start_run(
        self, experiment_id: str, run_name: str, params: dict[str, Any], tags: dict[str, str]
    ) -> TrackedRun:
        """A run to use as a context manager (see TrackedRun)."""
        return TrackedRun(self, experiment_id, run_name, params, tags)

    def runs(self, experiment_id: str, filter_string: str = "") -> list[StoredRun]:
        """Every run of the experiment (all statuses) that matches the filter, oldest first."""
        return self._search([experiment_id], filter_string)

    def runs_on_host(self, host: str, since_ms: int) -> list[StoredRun]:
        """Runs of any experiment on host that were RUNNING or ended after since_ms."""
        experiments = [
            e.experiment_id for e in with_lock_retry(lambda: self.client.search_experiments())
        ]
        quoted = host.replace("'", "")
        return self._search(
            experiments, f"tags.host = '{quoted}' and attributes.status = 'RUNNING'"
        ) + self._search(
            experiments, f"tags.host = '{quoted}' and attributes.end_time > {int(since_ms)}"
        )

    def runs_of_config(self, experiment_id: str, config_hash: str) -> list[StoredRun]:
        return self.runs(experiment_id, f"tags.config_hash = '{config_hash}'")

    def delete_run(self, run_id: str) -> None:
        """Soft delete (MLflow keeps it, restorable): a claim withdrawn before training."""
        with_lock_retry(lambda: self.client.delete_run(run_id))

    def _search(self, experiment_ids: list[str], filter_string: str) -> list[StoredRun]:
        runs: list[StoredRun] = []
        token = None
        while True:
            page = with_lock_retry(
                lambda t=token: self.client.search_runs(
                    experiment_ids,
                    filter_string=filter_string,
                    max_results=1000,
                    order_by=["attributes.start_time ASC"],
                    page_token=t,
                )
            )
            runs.extend(_stored(run) for run in page)
            token = page.token
            if not token:
                return runs

    def fail_orphaned_runs(self, runs: list[StoredRun]) -> list[str]:
        """Mark dead RUNNING runs FAILED: on this host its process is gone (kill -9); on any
        host its heartbeat is stale (liveness.death). Returns their ids."""
        from mnistlab.store.liveness import death

        now = int(time.time() * 1000)
        orphaned = []
        for run in runs:
            reason = death(run, now, process_alive)
            if reason is None:
                continue
            self.set_run_tags(run.run_id, {"failure_reason": reason})
            with_lock_retry(lambda r=run: self.client.set_terminated(r.run_id, status="FAILED"))
            orphaned.append(run.run_id)
        return orphaned

    def histories(self, run_ids: Sequence[str], keys: Sequence[str]) -> pd.DataFrame:
        """One row per (run, metric, step): columns run_id, key, step, value, timestamp.

        Read in bulk, so a study of hundreds of runs costs a few calls, not runs x metrics:
        on SQLite one query per 500 runs, on a server MLflow's bulk history endpoint (the
        one its UI charts use). Both equal histories_one_by_one, the per-run client API (tested).
        """
        run_ids = list(dict.fromkeys(run_ids))
        path = sqlite_path(self.tracking_uri)
        if not run_ids or not keys:
            rows = _empty_history()
        elif path is not None:
            rows = with_lock_retry(lambda: _sqlite_histories(path, run_ids, keys))
        elif self.tracking_uri.startswith(("http://", "https://")):
            rows = self._server_histories(run_ids, keys)
        else:
            return self.histories_one_by_one(run_ids, keys)
        return _tidy_history(rows)

    def histories_one_by_one(self, run_ids: Sequence[str], keys: Sequence[str]) -> pd.DataFrame:
        """The same frame from MLflow's per-run, per-metric client call: the reference."""
        frames = []
        for run_id in run_ids:
            for key in keys:
                frames.append(_history_frame(run_id, key, self._one_history(run_id, key)))
        return _tidy_history(_concat(frames))

    def _one_history(self, run_id: str, key: str) -> list[Metric]:
        return with_lock_retry(lambda: self.client.get_metric_history(run_id, key))

    def _server_histories(self, run_ids: list[str], keys: Sequence[str]) -> pd.DataFrame:
        """MLflow's bulk endpoint: up to 100 runs and 25,000 points per call, sorted by run.

        A truncated answer holds its last run in part: the runs before it are kept and the
        rest asked again. A single run longer than one answer is read with the paging API.
        """
        from mlflow.utils.credentials import get_default_host_creds
        from mlflow.utils.rest_utils import http_request, verify_rest_response

        creds = get_default_host_creds(self.tracking_uri)
        frames = []
        for key in keys:
            pending = sorted(run_ids)
            while pending:
                batch = pending[:SERVER_BULK_RUNS]
                response = http_request(
                    creds,
                    SERVER_BULK_ENDPOINT,
                    "GET",
                    params={"run_id": batch, "metric_key": key, "max_results": SERVER_BULK_POINTS},
                )
                points = verify_rest_response(response, SERVER_BULK_ENDPOINT).json()
                points = points.get("metrics", [])
                complete = set(batch)
                if len(points) >= SERVER_BULK_POINTS:  # truncated inside its last run
                    partial = points[-1]["run_id"]
                    points = [p for p in points if p["run_id"] != partial]
                    complete = {p["run_id"] for p in points}
                    if not points:  # one run is longer than an answer: page through it
                        frames.append(_history_frame(partial, key, self._one_history(partial, key)))
                        complete = {partial}
                if points:
                    frames.append(pd.DataFrame(points).drop(columns="key").assign(key=key))
                pending = [r for r in pending if r not in complete]
        return _concat(frames)

    def replay(self, record: Any, files: Path) -> str:
        """Write a run's whole record (spool.RunRecord) into this store; returns the run id.

        The run itself if the store has it (a run cut off by an outage: what it already
        holds is written again, which MLflow deduplicates), else a new run in the record's
        experiment. Everything is written again, so replaying twice changes nothing.
        """
        try:
            run_id = with_lock_retry(lambda: self.client.get_run(record.run_id)).info.run_id
        except MlflowException as error:
            if error.get_http_status_code() != 404:
                raise
            run_id = with_lock_retry(
                lambda: self.client.create_run(
                    record.experiment_id,
                    start_time=record.start_time,
                    tags={**record.tags, MLFLOW_RUN_NAME: record.run_name},
                )
            ).info.run_id
        for call in batched_writes(
            self.client,
            run_id,
            params=[Param(k, v) for k, v in record.params.items()],
            tags=[RunTag(k, v) for k, v in record.tags.items()],
            metrics=[Metric(k, float(v), int(t), int(s)) for k, v, t, s in record.metrics],
        ):
            with_lock_retry(call)
        for relative, artifact_path in record.artifacts:
            local = str(files / relative)
            with_lock_retry(lambda p=local, a=artifact_path: self.client.log_artifact(run_id, p, a))
        with_lock_retry(
            lambda: self.client.set_terminated(
                run_id, status=record.status, end_time=record.end_time
            )
        )
        return run_id

    def download_weights(self, run_id: str, folder: Path) -> Path:
        return Path(self.client.download_artifacts(run_id, "model/weights.pt", str(folder)))

    def download_predictions(self, run_id: str, folder: Path) -> Path | None:
        """The run's test-set predictions (model/test_predictions.npy); None for older runs."""
        if f"model/{PREDICTIONS_FILE}" not in self.list_files(run_id, "model"):
            return None
        return Path(
            self.client.download_artifacts(run_id, f"model/{PREDICTIONS_FILE}", str(folder))
        )


SERVER_BULK_ENDPOINT = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
SERVER_BULK_RUNS = 100  # the endpoint's limits
SERVER_BULK_POINTS = 25000
SQLITE_RUNS_PER_QUERY = 500  # well under SQLite's bound on query parameters
HISTORY_COLUMNS = ["run_id", "key", "step", "value", "timestamp"]


def _empty_history() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype=object if c in ("run_id", "key") else float) for c in HISTORY_COLUMNS}
    )


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else _empty_history()


def _history_frame(run_id: str, key: str, history: list[Metric]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": run_id,
            "key": key,
            "step": [m.step for m in history],
            "value": [m.value for m in history],
            "timestamp": [m.timestamp for m in history],
        }
    )


def _tidy_history(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows[HISTORY_COLUMNS].astype({"step": "int64", "value": "float64", "timestamp": "int64"})
    return rows.sort_values(["run_id", "key", "step", "timestamp"], kind="stable").reset_index(
        drop=True
    )


def _sqlite_histories(path: Path, run_ids: list[str], keys: Sequence[str]) -> pd.DataFrame:
    """The metric points of run_ids, straight from the store's `metrics` table, read-only.

    The table is MLflow's (one row per logged point; NaN stored as 0 with is_nan set, as
    SqlMetric.to_mlflow_entity reads it). Reading it directly is what makes a 500-run study
    one query instead of thousands of ORM round trips; the equality test with the client API
    guards against a change of schema.
    """
    frames = []
    key_marks = ",".join("?" * len(keys))
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=30)
    try:
        for start in range(0, len(run_ids), SQLITE_RUNS_PER_QUERY):
            chunk = run_ids[start : start + SQLITE_RUNS_PER_QUERY]
            query = (
                "SELECT run_uuid AS run_id, key, step, "
                "CASE WHEN is_nan THEN NULL ELSE value END AS value, timestamp FROM metrics "
                f"WHERE key IN ({key_marks}) AND run_uuid IN ({','.join('?' * len(chunk))})"
            )
            frames.append(pd.read_sql_query(query, connection, params=[*keys, *chunk]))
    finally:
        connection.close()
    return _concat(frames)


class Withdrawn(Exception):  # noqa: N818 - an outcome, not a failure
    """Raised inside a TrackedRun before it trains: the run is deleted, not marked FAILED."""


class StoreUnreachable(TrackingError):
    """The store stayed away past the retry window; the run is spooled, nothing is lost."""


def is_outage(error: BaseException) -> bool:
    """A store failure worth retrying: anything but the store refusing the request itself
    (HTTP 400, 404, 409: a bad value, a missing or deleted run, a clash)."""
    if isinstance(error, MlflowException):
        return error.get_http_status_code() not in (400, 404, 409)
    return True


class TrackedRun:
    """One MLflow run and the metric sink that training writes to.

    Use as a context manager: a clean exit marks the run FINISHED, Ctrl-C or SIGTERM
    marks it KILLED, any other error FAILED with the reason as the tag failure_reason.

    Creating the run is the one write made at once (it is the run's claim on its config);
    every later write goes through a background writer.Writer, so training never waits on
    the store and an outage shorter than the retry window costs nothing. The run keeps
    its whole record (spool.RunRecord) as it goes: if the store is still away at the
    end, the record is spooled and StoreUnreachable says how to replay it (`mnistlab sync`).
    A heartbeat tag refreshed by the writer's thread tells other invocations, on any host,
    that the run is alive; the same beat tags it contended once another live run on this
    host overlaps it (liveness.py).
    """

    def __init__(
        self,
        store: Store,
        experiment_id: str,
        run_name: str,
        params: dict[str, Any],
        tags: dict[str, str],
    ) -> None:
        self.store = store
        self.client = store.client
        self.experiment_id = experiment_id
        self.run_name = run_name
        self.params = params
        self.tags = tags
        self.run_id = ""
        self.status = ""
        self.stored: StoredRun | None = None  # as created: start time and tags, for claims
        self.contended = False
        self.spooled: Path | None = None
        self._buffer: list[Metric] = []
        self._writer = None
        self._files = tempfile.TemporaryDirectory(prefix="mnistlab-run-")
        self.record = None

    def __enter__(self) -> TrackedRun:
        from mnistlab.names import HEARTBEAT_TAG
        from mnistlab.store.liveness import HEARTBEAT_SECONDS
        from mnistlab.store.spool import RunRecord
        from mnistlab.store.writer import Writer

        tags = {**self.tags, HEARTBEAT_TAG: str(int(time.time() * 1000))}
        run = with_lock_retry(
            lambda: self.client.create_run(
                self.experiment_id, tags={**tags, MLFLOW_RUN_NAME: self.run_name}
            )
        )
        self.run_id = run.info.run_id
        self.stored = _stored(run)
        params = {key: str(value) for key, value in self.params.items()}
        self.record = RunRecord(
            self.store.tracking_uri,
            self.experiment_id,
            self.run_id,
            self.run_name,
            run.info.start_time,
            params=params,
            tags=dict(tags),
        )
        self._writer = Writer(is_outage, self._beat, HEARTBEAT_SECONDS)
        batch = [Param(key, value) for key, value in params.items()]
        for call in batched_writes(self.client, self.run_id, params=batch):
            self._write(call)
        return self

    def _write(self, call: Callable[[], object]) -> None:
        self._writer.submit(lambda: with_lock_retry(call))

    def log(
        self,
        key: str,
        values: Sequence[float],
        steps: Sequence[int],
        timestamps_ms: Sequence[int] | None = None,
    ) -> None:
        now = int(time.time() * 1000)
        stamps = timestamps_ms if timestamps_ms is not None else [now] * len(values)
        points = [
            Metric(key, float(v), int(t), int(s))
            for v, s, t in zip(values, steps, stamps, strict=True)
        ]
        self._buffer.extend(points)
        self.record.metrics.extend((m.key, m.value, m.timestamp, m.step) for m in points)

    def flush(self) -> None:
        """Hand the buffered metrics to the writer; returns at once."""
        buffer, self._buffer = self._buffer, []
        for call in batched_writes(self.client, self.run_id, metrics=buffer):
            self._write(call)

    def set_tags(self, tags: dict[str, str]) -> None:
        tags = {k: str(v) for k, v in tags.items()}
        self.record.tags.update(tags)
        run_tags = [RunTag(k, v) for k, v in tags.items()]
        for call in batched_writes(self.client, self.run_id, tags=run_tags):
            self._write(call)

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
        self._write(lambda: self.client.log_inputs(self.run_id, datasets=[entry]))

    def log_file(self, local_path: Path, artifact_path: str) -> None:
        """Kept with the run's record (copied) until the run ends, and uploaded meanwhile."""
        relative = f"{artifact_path}/{Path(local_path).name}"
        kept = Path(self._files.name) / relative
        kept.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(local_path, kept)
        self.record.artifacts.append((relative, artifact_path))
        self._write(lambda: self.client.log_artifact(self.run_id, str(kept), artifact_path))

    def log_state_dict(self, state_dict: dict, name: str = "weights.pt") -> None:
        import torch

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            torch.save(state_dict, path)
            self.log_file(path, "model")

    def log_array(self, array: Any, name: str) -> None:
        """A numpy array as model/<name> (.npy)."""
        import numpy as np

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            np.save(path, array, allow_pickle=False)
            self.log_file(path, "model")

    def _beat(self) -> None:
        """On the writer's thread: refresh the heartbeat, and tag contention once seen."""
        from mnistlab.names import HEARTBEAT_TAG

        now = int(time.time() * 1000)
        beat = [RunTag(HEARTBEAT_TAG, str(now))]
        if not self.contended and self._overlapped(now, live_only=True):
            self.contended = True
            beat.append(RunTag("contended", "true"))
        with_lock_retry(lambda: self.client.log_batch(self.run_id, tags=beat))

    def _overlapped(self, now: int, live_only: bool) -> bool:
        from mnistlab.store.liveness import death, overlapping

        host = self.stored.tags.get("host")
        if not host:
            return False
        others = overlapping(
            self.store.runs_on_host(host, self.stored.start_time), self.stored, now
        )
        if live_only:
            others = [r for r in others if death(r, now, process_alive) is None]
        return bool(others)

    def _final_contention(self) -> None:
        """The verdict, from the whole run's interval: runs that came and went between beats
        count, and a claim another invocation withdrew (deleted, it never trained) does not,
        though a beat may have seen it. Read at the end, when waiting costs training nothing."""
        now = int(time.time() * 1000)
        with contextlib.suppress(Exception):  # store away: what the beats saw stands
            self.contended = self._overlapped(now, live_only=False)
        self.set_tags({"contended": str(self.contended).lower()})

    def __exit__(self, exc_type, exc, tb) -> bool:  # noqa: ANN001
        if not self.run_id:
            return False
        if exc_type is not None and issubclass(exc_type, Withdrawn):
            self._writer.close()  # nothing was trained: the run is withdrawn, not failed
            self._files.cleanup()
            with_lock_retry(lambda: self.client.delete_run(self.run_id))
            return False
        try:
            if exc_type is None:
                status = "FINISHED"
            else:
                killed = exc_type in (KeyboardInterrupt, SystemExit)
                status = "KILLED" if killed else "FAILED"
                reason = "interrupted" if killed else f"{exc_type.__name__}: {exc}"
                self.set_tags({"failure_reason": reason[:4000]})
            self.flush()  # keep what was measured before any failure
            self._final_contention()
            self.status = self.record.status = status
            self.record.end_time = int(time.time() * 1000)
            self._write(
                lambda: self.client.set_terminated(
                    self.run_id, status=status, end_time=self.record.end_time
                )
            )
            self._writer.close()
            if self._writer.offline:
                self._recover_or_spool(exc_type is None)
            elif self._writer.refused is not None and exc_type is None:
                raise self._writer.refused
        finally:
            self._files.cleanup()
        return False

    def _recover_or_spool(self, raise_error: bool) -> None:
        """The store went away for longer than the retry window: one more try of the whole
        record (it may be back), else the record goes to the spool."""
        from mnistlab.store.spool import write_spool

        try:
            self.store.replay(self.record, Path(self._files.name))
            return
        except Exception:  # noqa: BLE001 - still away: spool below
            pass
        self.spooled = write_spool(self.record, Path(self._files.name))
        reason = first_line(self._writer.outage_error, 200)
        message = (
            f"The tracking store {self.store.tracking_uri} was unreachable for longer than the "
            f"retry window ({reason}). Run {self.run_name} ({self.status}) is complete on "
            f"disk: {self.spooled}. Once the store is back, run `mnistlab sync` (in this "
            "folder, or with MNISTLAB_SPOOL set to its parent) to write it there."
        )
        if raise_error:
            raise StoreUnreachable(message)
        warnings.warn(message, stacklevel=2)
