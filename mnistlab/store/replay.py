"""A spooled run (spool.RunRecord) written into a store after an outage: the run itself if the
store has it, else a new run; everything is written again, so replaying twice changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

from mnistlab.store.batches import batched_writes
from mnistlab.store.connect import with_lock_retry


def replay_record(client: MlflowClient, record: Any, files: Path) -> str:
    """Write a run's whole record (spool.RunRecord) into the store behind client; returns the
    run id.

    The run itself if the store has it (a run cut off by an outage: what it already
    holds is written again, which MLflow deduplicates), else a new run in the record's
    experiment. Everything is written again, so replaying twice changes nothing.
    """
    try:
        run_id = with_lock_retry(lambda: client.get_run(record.run_id)).info.run_id
    except MlflowException as error:
        if error.get_http_status_code() != 404:
            raise
        run_id = with_lock_retry(
            lambda: client.create_run(
                record.experiment_id,
                start_time=record.start_time,
                tags={**record.tags, MLFLOW_RUN_NAME: record.run_name},
            )
        ).info.run_id
    for call in batched_writes(
        client,
        run_id,
        params=[Param(k, v) for k, v in record.params.items()],
        tags=[RunTag(k, v) for k, v in record.tags.items()],
        metrics=[Metric(k, float(v), int(t), int(s)) for k, v, t, s in record.metrics],
    ):
        with_lock_retry(call)
    for relative, artifact_path in record.artifacts:
        local = str(files / relative)
        with_lock_retry(lambda p=local, a=artifact_path: client.log_artifact(run_id, p, a))
    with_lock_retry(
        lambda: client.set_terminated(run_id, status=record.status, end_time=record.end_time)
    )
    return run_id
