import os
import time

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from mnistlab.errors import NonFiniteLossError
from mnistlab.spec.run import PlannedRun, RunConfig
from mnistlab.store import histories
from mnistlab.store.connect import TrackingError
from mnistlab.store.store import open_store
from mnistlab.store.tracked_run import TrackedRun
from mnistlab.study.runner import tracked_train
from mnistlab.training import models
from mnistlab.training.datasets import to_float_images
from mnistlab.training.interrupts import Terminated
from mnistlab.training.loop import predict
from tests.conftest import TINY, TINY_ARGS, Exploding, invoke, refused


def metric_steps(client: MlflowClient, run_id: str, key: str) -> list[int]:
    return [m.step for m in client.get_metric_history(run_id, key)]


def test_a_tracked_run_holds_every_step_and_evaluation(tiny_mnist, store_uri, tmp_path):
    store = open_store(store_uri)
    client = store.client
    experiment_id = store.experiment_id("unit")
    config = RunConfig(seed=3, **TINY)
    run_id, result = tracked_train(
        PlannedRun("base", config), tiny_mnist, store, experiment_id, "unit"
    )
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED"
    assert metric_steps(client, run_id, "train_loss") == list(range(10))
    assert metric_steps(client, run_id, "eval_accuracy") == [0, 3, 6, 9]
    losses = [m.value for m in client.get_metric_history(run_id, "train_loss")]
    assert losses == pytest.approx(result.train_loss.tolist(), rel=1e-6)
    tags, params = run.data.tags, run.data.params
    assert tags["model"] == "cnn2" and tags["seed"] == "3" and tags["arm"] == "base"
    assert run.info.run_name == "base-s3" and tags["dataset"] == "mnist"
    assert tags["config_hash"] == RunConfig(seed=3, **TINY).config_hash()
    for key in ("git_commit", "torch_version", "mlflow_version", "device", "cpu", "threads"):
        assert tags[key]
    assert params["lr"] == "0.001" and params["batch_size"] == "20"
    assert run.inputs.dataset_inputs[0].dataset.name == "mnist-train"
    assert sorted(a.path for a in client.list_artifacts(run_id, "model")) == [
        "model/test_predictions.npy",
        "model/weights.pt",
    ]
    # The stored predictions are what the trained weights predict (the report's demo uses them).
    stored = np.load(store.download_predictions(run_id, tmp_path))
    images = to_float_images(tiny_mnist.test_images)
    assert np.array_equal(stored, predict(result.model, images).numpy())


def test_a_diverging_run_is_marked_failed_with_the_reason(tiny_mnist, store_uri, monkeypatch):
    monkeypatch.setitem(models.MODELS, "cnn2", Exploding)
    store = open_store(store_uri)
    client = store.client
    experiment_id = store.experiment_id("unit")
    with pytest.raises(NonFiniteLossError):
        tracked_train(PlannedRun("cnn2", RunConfig(**TINY)), tiny_mnist, store, experiment_id, "u")
    (run,) = client.search_runs([experiment_id])
    assert run.info.status == "FAILED"
    assert "NonFiniteLossError" in run.data.tags["failure_reason"]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, Terminated, SystemExit])
def test_an_interrupted_run_is_killed_and_keeps_its_metrics(store_uri, interrupt):
    """Ctrl-C, SIGTERM (a KeyboardInterrupt subclass) and an exit all end the run KILLED."""
    store = open_store(store_uri)
    client = store.client
    experiment_id = store.experiment_id("unit")
    with pytest.raises(interrupt), TrackedRun(store, experiment_id, "r", {}, {}) as run:
        run.log("train_loss", [1.0, 0.5], [0, 1])
        raise interrupt
    assert client.get_run(run.run_id).info.status == "KILLED"
    assert client.get_run(run.run_id).data.tags["failure_reason"] == "interrupted"
    assert metric_steps(client, run.run_id, "train_loss") == [0, 1]


def test_metrics_beyond_one_batch_are_split_into_several_calls(store_uri):
    store = open_store(store_uri)
    client = store.client
    experiment_id = store.experiment_id("unit")
    with TrackedRun(store, experiment_id, "r", {}, {}) as run:
        run.log("train_loss", [0.1] * 2500, range(2500))
    assert len(metric_steps(client, run.run_id, "train_loss")) == 2500


def test_unreachable_server_fails_fast_with_the_fix(monkeypatch):
    """Fast because bounded: MLflow is told to retry a request once (not its default of
    minutes of backoff) with a 10 s timeout, and open_store asks the server once, so the
    refusal comes after exactly two connection attempts and no waiting between them."""
    import urllib3.util.connection

    for variable in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        monkeypatch.setenv(variable, "")  # so that the test's own values are undone after it
        monkeypatch.delenv(variable)
    attempts = []
    connect = urllib3.util.connection.create_connection

    def counted(address, *args, **kwargs):
        attempts.append(address)
        return connect(address, *args, **kwargs)

    def no_wait(seconds):
        if seconds > 0:
            raise AssertionError(f"waited {seconds} s to retry an unreachable server")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", counted)
    monkeypatch.setattr(time, "sleep", no_wait)
    with pytest.raises(TrackingError, match="cannot be reached.*--tracking-uri") as refused:
        open_store("http://127.0.0.1:9")
    # The reason in plain words, not urllib3's pool message cut mid-word (a new user's report).
    assert "(connection refused: nothing listens at that address)" in str(refused.value)
    assert "HTTPConnection" not in str(refused.value)
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "10"
    assert attempts == [("127.0.0.1", 9)] * 2  # the request and its one retry


def write_awkward_histories(store) -> list[str]:
    """Runs whose histories have what a bulk reader can get wrong: NaN, inf, a step logged
    twice, out-of-order steps, a metric only some runs have, a run with no metrics at all."""
    experiment_id = store.experiment_id("bulk")
    run_ids = []
    for index in range(4):
        with TrackedRun(store, experiment_id, f"r{index}", {}, {}) as run:
            if index < 3:
                steps = [3, 0, 1, 2, 2] if index == 0 else list(range(7 + index))
                values = [float(s) / (index + 1) for s in steps]
                values[1] = float("nan") if index == 1 else values[1]
                values[-1] = float("inf") if index == 2 else values[-1]
                run.log("train_loss", values, steps, [1000 + k for k in range(len(steps))])
            if index == 1:
                run.log("eval_accuracy", [0.5, 0.75], [0, 5])
        run_ids.append(run.run_id)
    return run_ids


def test_bulk_histories_equal_the_per_run_api(store_uri):
    store = open_store(store_uri)
    run_ids = write_awkward_histories(store)
    keys = ["train_loss", "eval_accuracy", "never_logged"]
    bulk = store.histories(run_ids, keys)
    pd.testing.assert_frame_equal(bulk, store.histories_one_by_one(run_ids, keys))
    assert len(bulk) == 5 + 8 + 9 + 2  # every point, the step logged twice included
    assert bulk["value"].isna().sum() == 1 and (bulk["value"] > 1e300).sum() == 1
    assert store.histories([], keys).empty and store.histories(run_ids[3:], keys).empty


@pytest.mark.slow
def test_bulk_histories_from_a_server_equal_the_per_run_api(mlflow_server, monkeypatch):
    store = open_store(mlflow_server)
    run_ids = write_awkward_histories(store)
    keys = ["train_loss", "eval_accuracy"]
    reference = store.histories_one_by_one(run_ids, keys)
    # Answers of at most 6 points: truncated answers, and a run (9 points) longer than one.
    monkeypatch.setattr(histories, "SERVER_BULK_POINTS", 6)
    pd.testing.assert_frame_equal(store.histories(run_ids, keys), reference)
    monkeypatch.setattr(histories, "SERVER_BULK_RUNS", 2)
    pd.testing.assert_frame_equal(store.histories(run_ids, keys), reference)


def test_a_deleted_experiment_is_refused_with_how_to_restore_it(
    in_tmp, tiny_mnist_dir, unverified, store_uri
):
    store = open_store(store_uri)
    store.client.delete_experiment(store.experiment_id("train"))
    result = invoke(
        "train", "--data-dir", str(tiny_mnist_dir), "--tracking-uri", store_uri, *TINY_ARGS
    )
    refused(result, "was deleted", "mlflow experiments restore --experiment-id")
    empty = invoke(
        "train",
        "--experiment",
        "",
        "--data-dir",
        str(tiny_mnist_dir),
        "--tracking-uri",
        store_uri,
        *TINY_ARGS,
    )
    refused(empty, "needs a name")
