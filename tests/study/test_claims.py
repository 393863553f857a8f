"""Claims in a study: stale runs elsewhere retrained, live ones left to their owner, a lost claim\nwithdrawn, overlapping runs tagged contended."""

from __future__ import annotations

import os
import socket
import time

import pytest
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME

from mnistlab.names import HEARTBEAT_TAG
from mnistlab.spec.run import PlannedRun, RunConfig
from mnistlab.spec.study import StudySpec
from mnistlab.store.liveness import STALE_AFTER_SECONDS
from mnistlab.store.store import open_store
from mnistlab.store.tracked_run import TrackedRun
from mnistlab.study.executors import StudyObserver
from mnistlab.study.run import run_study
from mnistlab.study.runner import ClaimedElsewhere, tracked_train
from tests.conftest import (
    statuses,
    two_arm_spec,
)


def planted_run(uri: str, spec: StudySpec, heartbeat_ms: int, host: str = "elsewhere") -> str:
    """A RUNNING run of the spec's first config, as another host's invocation leaves one."""
    store = open_store(uri)
    planned = spec.planned_runs()[0]
    tags = {
        "config_hash": planned.config.config_hash(),
        "host": host,
        "pid": "1",
        HEARTBEAT_TAG: str(heartbeat_ms),
        MLFLOW_RUN_NAME: planned.name,
    }
    return store.client.create_run(store.experiment_id(spec.name), tags=tags).info.run_id


def test_a_stale_run_from_another_host_is_marked_failed_and_retrained(
    tmp_path, tiny_mnist, store_uri
):
    spec = two_arm_spec(tmp_path)
    stale = int(time.time() * 1000) - int(STALE_AFTER_SECONDS * 1000) - 60_000
    planted = planted_run(store_uri, spec, stale)
    report = run_study(spec, store_uri, data=tiny_mnist)
    assert report.orphaned == [planted] and not report.claimed
    run = MlflowClient(store_uri).get_run(planted)
    assert run.info.status == "FAILED" and "no heartbeat" in run.data.tags["failure_reason"]
    assert statuses(store_uri)["base-s0"] == ["FINISHED", "FAILED"]


def test_a_config_a_live_run_elsewhere_is_training_is_left_to_it(tmp_path, tiny_mnist, store_uri):
    spec = two_arm_spec(tmp_path)
    planted = planted_run(store_uri, spec, int(time.time() * 1000))
    seen = []

    class Planned(StudyObserver):
        def planned(self, todo: int, skipped: int, busy: int = 0) -> None:
            seen.append((todo, skipped, busy))

    report = run_study(spec, store_uri, data=tiny_mnist, observer=Planned())
    assert seen == [(3, 0, 1)]  # the live run is neither finished nor ours to train
    assert report.claimed == ["base-s0 (elsewhere)"] and not report.orphaned
    assert len(report.outcomes) == 3 and all(o.trained for o in report.outcomes)
    assert MlflowClient(store_uri).get_run(planted).info.status == "RUNNING"


def test_a_run_that_loses_its_claim_after_planning_withdraws_before_training(
    tmp_path, tiny_mnist, store_uri
):
    spec = two_arm_spec(tmp_path)
    planned_at = int(time.time() * 1000) - 1000
    rival = planted_run(store_uri, spec, int(time.time() * 1000))  # claimed after we planned
    store = open_store(store_uri)
    with pytest.raises(ClaimedElsewhere, match=f"^run {rival}, running on host "):
        tracked_train(
            spec.planned_runs()[0],
            tiny_mnist,
            store,
            store.experiment_id("tiny"),
            "tiny",
            claim_since=planned_at,
        )
    runs = MlflowClient(store_uri).search_runs([store.experiment_id("tiny")], run_view_type=3)
    withdrawn = [r for r in runs if r.info.run_id != rival]
    assert [r.info.lifecycle_stage for r in withdrawn] == ["deleted"]  # nothing trained, no FAILED


def test_runs_that_overlap_on_this_host_are_tagged_contended_and_later_ones_are_not(
    tiny_mnist, store_uri
):
    store = open_store(store_uri)
    experiment_id = store.experiment_id("unit")
    here = {"host": socket.gethostname(), "pid": str(os.getpid())}
    config = RunConfig(seed=0, train_size=200, batch_size=20, eval_every=3, eval_subset=100)
    with TrackedRun(store, experiment_id, "long", {}, here) as long_run:
        overlapped, _ = tracked_train(
            PlannedRun("a", config), tiny_mnist, store, experiment_id, "u"
        )
    time.sleep(0.01)
    alone, _ = tracked_train(PlannedRun("a", config), tiny_mnist, store, experiment_id, "u")
    client = MlflowClient(store_uri)
    tag = {
        r: client.get_run(r).data.tags["contended"] for r in (long_run.run_id, overlapped, alone)
    }
    assert tag == {long_run.run_id: "true", overlapped: "true", alone: "false"}
