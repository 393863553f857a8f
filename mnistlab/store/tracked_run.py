"""One training run as it is tracked: created at once (its claim), then written through a
background writer with heartbeats and contention checks, spooled if the store stays away."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT, MLFLOW_RUN_NAME

from mnistlab.errors import first_line
from mnistlab.names import (
    CONTENDED_TAG,
    FAILURE_REASON_TAG,
    HEARTBEAT_TAG,
    HOST_TAG,
    MODEL_ARTIFACTS,
)
from mnistlab.store.batches import batched_writes
from mnistlab.store.connect import TrackingError, _is_lock_error, say_store_busy, with_lock_retry
from mnistlab.store.liveness import HEARTBEAT_SECONDS, death, overlapping, process_alive
from mnistlab.store.records import StoredRun, stored_run
from mnistlab.store.spool import RunRecord, write_spool
from mnistlab.store.store import Store
from mnistlab.store.writer import Writer


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


def _say_if_locked(error: BaseException, waited: float) -> None:
    if _is_lock_error(error):
        say_store_busy(waited)


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
        tags = {**self.tags, HEARTBEAT_TAG: str(int(time.time() * 1000))}
        run = with_lock_retry(
            lambda: self.client.create_run(
                self.experiment_id, tags={**tags, MLFLOW_RUN_NAME: self.run_name}
            )
        )
        self.run_id = run.info.run_id
        self.stored = stored_run(run)
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
        self._writer = Writer(is_outage, self._beat, HEARTBEAT_SECONDS, on_retry=_say_if_locked)
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
            self.log_file(path, MODEL_ARTIFACTS)

    def log_array(self, array: Any, name: str) -> None:
        """A numpy array as model/<name> (.npy)."""
        import numpy as np

        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / name
            np.save(path, array, allow_pickle=False)
            self.log_file(path, MODEL_ARTIFACTS)

    def _beat(self) -> None:
        """On the writer's thread: refresh the heartbeat, and tag contention once seen."""

        now = int(time.time() * 1000)
        beat = [RunTag(HEARTBEAT_TAG, str(now))]
        if not self.contended and self._overlapped(now, live_only=True):
            self.contended = True
            beat.append(RunTag(CONTENDED_TAG, "true"))
        with_lock_retry(lambda: self.client.log_batch(self.run_id, tags=beat))

    def _overlapped(self, now: int, live_only: bool) -> bool:
        host = self.stored.tags.get(HOST_TAG)
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
        self.set_tags({CONTENDED_TAG: str(self.contended).lower()})

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
                # Ctrl-C, SIGTERM (interrupts.Terminated, a KeyboardInterrupt) or an exit.
                killed = issubclass(exc_type, (KeyboardInterrupt, SystemExit))
                status = "KILLED" if killed else "FAILED"
                reason = "interrupted" if killed else f"{exc_type.__name__}: {exc}"
                self.set_tags({FAILURE_REASON_TAG: reason[:4000]})
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
