"""MLflow's limits per log_batch call, and the calls that write a run's params, tags and metrics
within them (used by the Store, a TrackedRun's writer and a spooled run's replay)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

BATCH_LIMIT = 1000  # MLflow's maximum number of metrics per log_batch call
PARAMS_TAGS_LIMIT = 100  # and of params, and of tags


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
