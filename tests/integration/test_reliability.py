"""Reliability with real processes, servers and Ray (slow): concurrent studies and readers,\nserver restarts and outages, killed workers, a diverging arm on real MNIST."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import (
    MNISTLAB,
    SMOKE,
    TWO_ARM_SPEC,
    ray_refused_here,
    statuses,
    training_runs,
)

# A reader as `make ui` starts one: the store opened (created if need be) under mnistlab's
# lock, then read with the MLflow client. Raw MLflow processes creating one file together
# race inside MLflow itself (alembic), which no lock of ours can reach.
READER = (
    "import sys; from mnistlab.store.store import open_store; client = open_store(sys.argv[1]).client; "
    "client.search_experiments(); client.search_runs(['0'])"
)


@pytest.mark.slow
def test_a_study_and_three_readers_start_together_on_a_store_that_does_not_exist(
    tmp_path, real_data_dir
):
    spec = tmp_path / "tiny.toml"
    spec.write_text(
        TWO_ARM_SPEC.replace("seeds = 2", "seeds = 1").replace(
            '[arms.deeper]\nmodel = "cnn3"\n', ""
        )
    )
    env = {**os.environ, "MNISTLAB_DATA": str(real_data_dir)}
    for attempt in range(10):
        uri = f"sqlite:///{tmp_path / f'store{attempt}.db'}"
        processes = [
            subprocess.Popen(
                [MNISTLAB, "study", str(spec), "--tracking-uri", uri],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                env=env,
            ),
            *(
                subprocess.Popen(
                    [sys.executable, "-c", READER, uri],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                for _ in range(3)
            ),
        ]
        outputs = [p.communicate(timeout=300)[0] for p in processes]
        for process, output in zip(processes, outputs, strict=True):
            assert "Traceback" not in output, output
            assert process.returncode == 0, output
        assert statuses(uri) == {"base-s0": ["FINISHED"]}


SMOKE_GRID = {"cnn2-s0", "cnn2-s1", "cnn3-s0", "cnn3-s1"}


def start(*args: str, cwd: Path, data: Path, **env: str) -> subprocess.Popen:
    environment = {
        **os.environ,
        "MNISTLAB_DATA": str(data),
        "PYTHONUNBUFFERED": "1",
        "MNISTLAB_FLUSH_SECONDS": "1",  # metrics in the store while the run trains
        **env,
    }
    environment.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [MNISTLAB, *args],
        cwd=cwd,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(process: subprocess.Popen, timeout: float = 600) -> str:
    output, _ = process.communicate(timeout=timeout)
    return output


def overlaps(run, others) -> bool:
    return any(
        o.info.run_id != run.info.run_id
        and o.info.start_time < run.info.end_time
        and o.info.end_time > run.info.start_time
        for o in others
    )


@pytest.mark.slow
@pytest.mark.parametrize("where", ["sqlite", "server"])
def test_two_studies_started_together_train_each_config_once(
    tmp_path, real_data_dir, where, request
):
    uri = (
        f"sqlite:///{tmp_path / 'mlflow.db'}"
        if where == "sqlite"
        else request.getfixturevalue("mlflow_server")
    )
    studies = [
        start("study", SMOKE, "--tracking-uri", uri, cwd=tmp_path, data=real_data_dir)
        for _ in range(2)
    ]
    outputs = [finish(p) for p in studies]
    for process, output in zip(studies, outputs, strict=True):
        assert process.returncode == 0, output
        assert "locked" not in output and "Traceback" not in output, output
    runs = training_runs(uri, "smoke")
    assert sorted(r.info.run_name for r in runs) == sorted(SMOKE_GRID)  # once each, nothing else
    assert {r.info.status for r in runs} == {"FINISHED"}
    overlapping = [r for r in runs if overlaps(r, runs)]
    assert overlapping, "the two studies should have trained side by side"
    for run in runs:
        assert run.data.tags["contended"] == str(run in overlapping).lower(), run.info.run_name


def wait_for(condition, timeout: float = 300, every: float = 0.2):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    pytest.fail("timed out waiting")


def a_running_run(uri: str, process: subprocess.Popen, experiment: str = "train"):  # noqa: ANN201
    """A RUNNING run that has written some losses, once there is one."""

    def look():
        if process.poll() is not None:
            pytest.fail(f"the command ended first:\n{process.stdout.read()}")
        try:
            client = MlflowClient(uri)
            found = client.get_experiment_by_name(experiment)
            runs = client.search_runs([found.experiment_id]) if found else []
            return next(
                (r for r in runs if r.info.status == "RUNNING" and "train_loss" in r.data.metrics),
                None,
            )
        except Exception:
            return None

    return wait_for(look)


TRAIN = ["train", "--train-size", "30000", "--eval-every", "25", "--threads", "1"]


def loss_values(uri: str, run_id: str) -> list[float]:
    history = MlflowClient(uri).get_metric_history(run_id, "train_loss")
    return [m.value for m in sorted(history, key=lambda m: m.step)]


@pytest.mark.slow
def test_a_server_restarted_within_the_retry_window_loses_nothing(
    tmp_path, real_data_dir, mlflow_server_control
):
    uri = mlflow_server_control.uri
    process = start(*TRAIN, "--tracking-uri", uri, cwd=tmp_path, data=real_data_dir)
    run = a_running_run(uri, process)
    mlflow_server_control.stop()
    time.sleep(5)
    mlflow_server_control.start()
    output = finish(process)
    assert process.returncode == 0, output
    done = MlflowClient(uri).get_run(run.info.run_id)
    assert done.info.status == "FINISHED"
    assert len(loss_values(uri, run.info.run_id)) == 600  # every step of 30,000 / 50
    assert "test_accuracy" in done.data.metrics


@pytest.mark.slow
def test_a_server_away_too_long_gets_the_run_spooled_and_sync_replays_it_whole(
    tmp_path, real_data_dir, mlflow_server_control
):
    uri = mlflow_server_control.uri
    short_window = {"MNISTLAB_STORE_RETRY_SECONDS": "3"}
    process = start(*TRAIN, "--tracking-uri", uri, cwd=tmp_path, data=real_data_dir, **short_window)
    run = a_running_run(uri, process)
    mlflow_server_control.stop()
    output = finish(process)
    assert process.returncode != 0 and "mnistlab sync" in output and "Traceback" not in output
    assert (tmp_path / "mnistlab-spool" / run.info.run_id / "record.json").is_file()
    mlflow_server_control.start()
    synced = finish(start("sync", cwd=tmp_path, data=real_data_dir))
    assert "Synced 1 run(s)" in synced, synced
    # The same seed, never interrupted: the same losses, bit for bit.
    again = start(*TRAIN, "--tracking-uri", uri, cwd=tmp_path, data=real_data_dir)
    assert finish(again) and again.returncode == 0
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("train").experiment_id])
    assert {r.info.status for r in runs} == {"FINISHED"} and len(runs) == 2
    reference = next(r for r in runs if r.info.run_id != run.info.run_id)
    assert loss_values(uri, run.info.run_id) == loss_values(uri, reference.info.run_id)
    assert len(loss_values(uri, run.info.run_id)) == 600


@pytest.mark.slow
def test_a_ray_task_whose_worker_is_killed_ends_with_one_finished_run(
    tmp_path, real_data_dir, mlflow_server
):
    if ray_refused_here("study", SMOKE, "--executor", "ray", cwd=tmp_path, data=real_data_dir):
        return  # this Python's path holds a space: Ray cannot run here, and says so
    process = start(
        "study", SMOKE, "--executor", "ray", "--tracking-uri", mlflow_server,
        cwd=tmp_path, data=real_data_dir,
    )  # fmt: skip
    victim = a_running_run(mlflow_server, process, "smoke")
    os.kill(int(victim.data.tags["pid"]), signal.SIGKILL)
    output = finish(process)
    assert process.returncode == 0, output
    runs = training_runs(mlflow_server, "smoke")
    assert sorted(r.info.run_name for r in runs) == sorted(SMOKE_GRID)
    assert {r.info.status for r in runs} == {"FINISHED"}
    retried = next(r for r in runs if r.info.run_name == victim.info.run_name)
    assert retried.data.tags["attempts"] == "2"


@pytest.mark.slow
def test_a_diverging_arm_on_real_mnist_trains_beside_the_rest_and_is_named(tmp_path, real_data_dir):
    spec = tmp_path / "hot.toml"
    spec.write_text(
        'name = "hot"\nseeds = 2\nthresholds = [0.5]\n'
        "[settings]\ntrain_size = 2000\neval_every = 10\neval_subset = 500\n"
        '[arms.base]\nmodel = "cnn2"\n[arms.hot]\nmodel = "cnn2"\nlr = 10.0\n'
    )
    process = start("study", str(spec), cwd=tmp_path, data=real_data_dir)
    output = finish(process)
    assert process.returncode == 1, output
    assert "2 run(s) diverged" in output and "hot-s0" in output and "hot-s1" in output
    assert "Traceback" not in output
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert statuses(uri, "hot") == {
        name: ["FINISHED"] for name in ("base-s0", "base-s1", "hot-s0", "hot-s1")
    }
