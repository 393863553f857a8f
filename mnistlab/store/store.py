"""The tracking store: open_store, and the Store it opens. The store package (this module,
connect, histories, tracked_run) is the only place that imports mlflow.

The Store owns every write (experiments and their tags, runs, metrics, datasets, artifacts, run
status) and every read (experiments, runs as plain records, metric histories, weights).
It does not decide which runs count as a study's evidence: that is results.evidence.

Per-step metrics are buffered and written with log_batch (up to 1,000 metrics a call);
one call per step would cost seconds per run on SQLite.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

from mnistlab.errors import first_line
from mnistlab.names import (
    CONFIG_HASH_TAG,
    EXPERIMENT_KIND,
    FAILURE_REASON_TAG,
    MODEL_ARTIFACTS,
    NOTE_TAG,
    PREDICTIONS_FILE,
    ROLE_TAG,
    SPEC_ARTIFACTS,
    SPEC_FILE,
    SPEC_HASH_TAG,
    SPEC_TAG,
    STUDY_ROLE,
)
from mnistlab.store import sqlite_file
from mnistlab.store.batches import batched_writes
from mnistlab.store.connect import (
    DEFAULT_STORE_FILE,
    TrackingError,
    check_plain_file,
    check_sqlite_path,
    connect_client,
    creation_lock,
    open_error,
    quiet_lock_waits,
    resolve_tracking_uri,
    sqlite_path,
    with_lock_retry,
)
from mnistlab.store.histories import (
    concat_histories,
    empty_history,
    history_frame,
    one_history,
    server_histories,
    sqlite_histories,
    tidy_history,
)
from mnistlab.store.liveness import death, process_alive
from mnistlab.store.records import StoredExperiment, StoredRun, stored_run
from mnistlab.store.replay import replay_record
from mnistlab.store.runs_view import runs_view_tag


def open_store(uri: str | None = None, create: bool = True) -> Store:
    """The store, checked to answer; for SQLite also created and put in WAL mode.

    create=False (commands that only read): a SQLite file that does not exist is an error,
    never created.
    """
    uri = resolve_tracking_uri(uri)
    if sqlite_file.is_in_memory(uri):
        raise TrackingError(
            f"{uri} is an in-memory SQLite database: it disappears when the command ends, and "
            "every run written to it with it. Use a file (--tracking-uri "
            f"sqlite:///{DEFAULT_STORE_FILE}) or a tracking server (--tracking-uri "
            "http://HOST:5000)."
        )
    path = sqlite_path(uri)
    if path is not None:
        check_sqlite_path(uri, path, create)
    elif "://" not in uri or uri.startswith("file:"):
        check_plain_file(uri)  # a file, not a folder: said as what it is
        raise TrackingError(
            f"{uri} is a folder store, which MLflow no longer maintains. Use a SQLite file "
            f"(--tracking-uri sqlite:///{DEFAULT_STORE_FILE}) or a tracking server "
            "(--tracking-uri http://HOST:5000)."
        )
    logging.getLogger("mlflow").setLevel(logging.WARNING)  # quiet table-creation chatter
    quiet_lock_waits()
    # Fail fast on an unreachable server instead of MLflow's minutes of retries per call:
    # a run's writes are retried by writer.Writer, within its stated window, instead.
    # Set for this process and the workers it starts, unless the user set them.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
    try:
        with creation_lock(path):
            client = connect_client(uri, path)
            if path is not None:
                sqlite_file.use_wal(path)
    except TrackingError:
        raise
    except Exception as error:  # connection, HTTP and database errors alike
        raise TrackingError(open_error(uri, path, error)) from None
    return Store(client)


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

    def record_spec(self, experiment_id: str, record: dict[str, Any]) -> str:
        """Store the study's spec on its study run (spec/spec.json, with its hash as a tag), so
        that analysis needs only the store; returns the study run's id.

        Not on the experiment: MLflow's experiment list shows an experiment's tags, and a
        JSON blob there hides the description. An older store's experiment tag is removed
        once the study run holds the record. The runs that belong to the study follow from
        the spec (their config hashes), so no list of them is stored.
        """
        run_id = self.study_run(experiment_id, record["name"])
        text = json.dumps(record, indent=2)  # key order kept: the arms are in the spec's order
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / SPEC_FILE).write_text(text)
            self.log_files(run_id, Path(folder), SPEC_ARTIFACTS)
        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        self.set_run_tags(run_id, {SPEC_HASH_TAG: digest})
        experiment = with_lock_retry(lambda: self.client.get_experiment(experiment_id))
        if SPEC_TAG in experiment.tags:
            with_lock_retry(lambda: self.client.delete_experiment_tag(experiment_id, SPEC_TAG))
        return run_id

    def spec_record(self, experiment: StoredExperiment) -> dict[str, Any] | None:
        """The spec last run under this experiment, as stored: the study run's spec.json, or an
        older store's experiment tag; None for an experiment that is not a study's."""
        run_id = self.study_run(experiment.experiment_id, experiment.name, create=False)
        path = f"{SPEC_ARTIFACTS}/{SPEC_FILE}"
        if run_id is not None and path in self.list_files(run_id, SPEC_ARTIFACTS):
            with tempfile.TemporaryDirectory() as folder:
                return json.loads(self.download(run_id, path, Path(folder)).read_text())
        if SPEC_TAG in experiment.tags:
            return json.loads(experiment.tags[SPEC_TAG])
        return None

    def mark_as_training(self, experiment_id: str) -> None:
        key, value = EXPERIMENT_KIND
        with_lock_retry(lambda: self.client.set_experiment_tag(experiment_id, key, value))

    def set_runs_view(self, experiment_id: str, arms: Sequence[str]) -> None:
        """Save the view mnistlab's links open in the UI: runs grouped by arm (runs_view)."""
        key, value = runs_view_tag(arms, int(time.time() * 1000))
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
        # Its start is the study's: now, for a new study; the first run's, for runs from
        # before study runs existed (MLflow cannot move a run's start once it is created).
        earlier = [run.start_time for run in self.runs(experiment_id)]
        run = with_lock_retry(
            lambda: self.client.create_run(
                experiment_id,
                start_time=min(earlier) if earlier else None,
                tags={ROLE_TAG: STUDY_ROLE, MLFLOW_RUN_NAME: f"{study} (study)"},
            )
        )
        # FINISHED at once: it holds records, it does not run; writing to it later is allowed.
        with_lock_retry(lambda: self.client.set_terminated(run.info.run_id, "FINISHED"))
        return run.info.run_id

    def set_run_tags(self, run_id: str, tags: dict[str, str]) -> None:
        run_tags = [RunTag(k, str(v)) for k, v in tags.items()]
        for call in batched_writes(self.client, run_id, tags=run_tags):
            with_lock_retry(call)

    def log_new_params(self, run_id: str, params: dict[str, str]) -> list[str]:
        """Log the params the run does not hold yet (MLflow refuses changing one); returns
        the keys whose stored value differs (a spec changed since: its record says how)."""
        held = with_lock_retry(lambda: self.client.get_run(run_id)).data.params
        new = [Param(k, v) for k, v in params.items() if k not in held]
        for call in batched_writes(self.client, run_id, params=new):
            with_lock_retry(call)
        return [k for k, v in params.items() if k in held and held[k] != v]

    def log_json(self, run_id: str, value: Any, artifact_file: str) -> None:
        with_lock_retry(lambda: self.client.log_dict(run_id, value, artifact_file))

    def set_study_status(self, run_id: str, status: str) -> None:
        """A study run's status, ending now: KILLED (interrupted) or FINISHED (completed)."""
        with_lock_retry(lambda: self.client.set_terminated(run_id, status))

    def set_run_end(self, run_id: str, end_time: int) -> None:
        """A study run's end: when its last run ended. Its status stays as the last invocation
        of the study left it (KILLED if interrupted, else FINISHED)."""
        status = with_lock_retry(lambda: self.client.get_run(run_id)).info.status
        with_lock_retry(lambda: self.client.set_terminated(run_id, status, end_time))

    def set_experiment_description(self, experiment_id: str, text: str) -> None:
        """The experiment's description on its page in the UI (Markdown)."""
        with_lock_retry(lambda: self.client.set_experiment_tag(experiment_id, NOTE_TAG, text))

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
        return self.runs(experiment_id, f"tags.{CONFIG_HASH_TAG} = '{config_hash}'")

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
            runs.extend(stored_run(run) for run in page)
            token = page.token
            if not token:
                return runs

    def fail_orphaned_runs(self, runs: list[StoredRun]) -> list[str]:
        """Mark dead RUNNING runs FAILED: on this host its process is gone (kill -9); on any
        host its heartbeat is stale (liveness.death). Returns their ids."""
        now = int(time.time() * 1000)
        orphaned = []
        for run in runs:
            reason = death(run, now, process_alive)
            if reason is None:
                continue
            self.set_run_tags(run.run_id, {FAILURE_REASON_TAG: reason})
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
            rows = empty_history()
        elif path is not None:
            rows = with_lock_retry(lambda: sqlite_histories(path, run_ids, keys))
        elif self.tracking_uri.startswith(("http://", "https://")):
            rows = server_histories(self.client, run_ids, keys)
        else:
            return self.histories_one_by_one(run_ids, keys)
        return tidy_history(rows)

    def histories_one_by_one(self, run_ids: Sequence[str], keys: Sequence[str]) -> pd.DataFrame:
        """The same frame from MLflow's per-run, per-metric client call: the reference."""
        frames = []
        for run_id in run_ids:
            for key in keys:
                frames.append(history_frame(run_id, key, one_history(self.client, run_id, key)))
        return tidy_history(concat_histories(frames))

    def replay(self, record: Any, files: Path) -> str:
        """Write a run's whole record (spool.RunRecord) into this store (store.replay)."""
        return replay_record(self.client, record, files)

    def download_weights(self, run_id: str, folder: Path) -> Path:
        return Path(self.client.download_artifacts(run_id, "model/weights.pt", str(folder)))

    def download_predictions(self, run_id: str, folder: Path) -> Path | None:
        """The run's test-set predictions (model/test_predictions.npy); None for older runs."""
        if f"{MODEL_ARTIFACTS}/{PREDICTIONS_FILE}" not in self.list_files(run_id, MODEL_ARTIFACTS):
            return None
        return Path(
            self.client.download_artifacts(run_id, f"model/{PREDICTIONS_FILE}", str(folder))
        )
