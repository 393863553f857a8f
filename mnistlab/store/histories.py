"""Metric histories read in bulk: one frame per (run, metric, step), from SQLite directly, a
server's bulk endpoint, or the per-run client API (the reference)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Metric

from mnistlab.store import sqlite_file
from mnistlab.store.connect import with_lock_retry

SERVER_BULK_ENDPOINT = "/ajax-api/2.0/mlflow/metrics/get-history-bulk"
SERVER_BULK_RUNS = 100  # the endpoint's limits
SERVER_BULK_POINTS = 25000
SQLITE_RUNS_PER_QUERY = 500  # well under SQLite's bound on query parameters
HISTORY_COLUMNS = ["run_id", "key", "step", "value", "timestamp"]


def empty_history() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype=object if c in ("run_id", "key") else float) for c in HISTORY_COLUMNS}
    )


def concat_histories(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else empty_history()


def history_frame(run_id: str, key: str, history: list[Metric]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "run_id": run_id,
            "key": key,
            "step": [m.step for m in history],
            "value": [m.value for m in history],
            "timestamp": [m.timestamp for m in history],
        }
    )


def tidy_history(rows: pd.DataFrame) -> pd.DataFrame:
    rows = rows[HISTORY_COLUMNS].astype({"step": "int64", "value": "float64", "timestamp": "int64"})
    return rows.sort_values(["run_id", "key", "step", "timestamp"], kind="stable").reset_index(
        drop=True
    )


def sqlite_histories(path: Path, run_ids: list[str], keys: Sequence[str]) -> pd.DataFrame:
    """The metric points of run_ids, straight from the store's `metrics` table, read-only.

    The table is MLflow's (one row per logged point; NaN stored as 0 with is_nan set, as
    SqlMetric.to_mlflow_entity reads it). Reading it directly is what makes a 500-run study
    one query instead of thousands of ORM round trips; the equality test with the client API
    guards against a change of schema.
    """
    frames = []
    key_marks = ",".join("?" * len(keys))
    with sqlite_file.read_only(path) as connection:
        for start in range(0, len(run_ids), SQLITE_RUNS_PER_QUERY):
            chunk = run_ids[start : start + SQLITE_RUNS_PER_QUERY]
            query = (
                "SELECT run_uuid AS run_id, key, step, "
                "CASE WHEN is_nan THEN NULL ELSE value END AS value, timestamp FROM metrics "
                f"WHERE key IN ({key_marks}) AND run_uuid IN ({','.join('?' * len(chunk))})"
            )
            frames.append(pd.read_sql_query(query, connection, params=[*keys, *chunk]))
    return concat_histories(frames)


def one_history(client: MlflowClient, run_id: str, key: str) -> list[Metric]:
    return with_lock_retry(lambda: client.get_metric_history(run_id, key))


def server_histories(client: MlflowClient, run_ids: list[str], keys: Sequence[str]) -> pd.DataFrame:
    """MLflow's bulk endpoint: up to 100 runs and 25,000 points per call, sorted by run.

    A truncated answer holds its last run in part: the runs before it are kept and the
    rest asked again. A single run longer than one answer is read with the paging API.
    """
    from mlflow.utils.credentials import get_default_host_creds
    from mlflow.utils.rest_utils import http_request, verify_rest_response

    creds = get_default_host_creds(client.tracking_uri)
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
                    frames.append(history_frame(partial, key, one_history(client, partial, key)))
                    complete = {partial}
            if points:
                frames.append(pd.DataFrame(points).drop(columns="key").assign(key=key))
            pending = [r for r in pending if r not in complete]
    return concat_histories(frames)
