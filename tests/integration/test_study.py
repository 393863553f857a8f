"""The study runner end to end on real MNIST: processes, Ray, a tracking server, kill -9."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient

from tests.conftest import SMOKE, ray_refused_here

pytestmark = pytest.mark.slow
GRID = [("cnn2", 0), ("cnn2", 1), ("cnn3", 0), ("cnn3", 1)]


def study_cli(*args: str, cwd: Path, env_data: Path, **popen) -> subprocess.Popen:
    env = {**os.environ, "MNISTLAB_DATA": str(env_data), "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen(
        [sys.executable, "-m", "mnistlab", "study", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def run_study_cli(*args: str, cwd: Path, env_data: Path, timeout: float = 600) -> str:
    process = study_cli(*args, cwd=cwd, env_data=env_data)
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output
    return output


def runs_by_status(uri: str, study: str = "smoke") -> dict[str, list]:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(study)
    if experiment is None:
        return {}
    grouped: dict[str, list] = {}
    for run in client.search_runs([experiment.experiment_id]):
        if run.data.tags.get("mnistlab.role") != "study":  # training runs only
            grouped.setdefault(run.info.status, []).append(run)
    return grouped


def grid_of(runs) -> list[tuple[str, int]]:
    return sorted((r.data.tags["model"], int(r.data.tags["seed"])) for r in runs)


def test_rerunning_the_smoke_study_trains_nothing_and_says_so(tmp_path, real_data_dir):
    first = run_study_cli(SMOKE, cwd=tmp_path, env_data=real_data_dir)
    assert "4 trained" in first
    second = run_study_cli(SMOKE, cwd=tmp_path, env_data=real_data_dir)
    assert "nothing to train" in second and "0 trained" in second
    runs = runs_by_status(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert list(runs) == ["FINISHED"] and grid_of(runs["FINISHED"]) == GRID


def test_two_workers_share_one_sqlite_store_without_locking_errors(tmp_path, real_data_dir):
    output = run_study_cli(SMOKE, "--workers", "2", cwd=tmp_path, env_data=real_data_dir)
    assert "locked" not in output
    runs = runs_by_status(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert list(runs) == ["FINISHED"] and grid_of(runs["FINISHED"]) == GRID
    assert {r.data.tags["contended"] for r in runs["FINISHED"]} == {"true"}
    assert {r.data.tags["threads"] for r in runs["FINISHED"]} == {str(max(1, os.cpu_count() // 2))}


def test_ray_with_a_tracking_server_gives_the_same_runs(tmp_path, real_data_dir, mlflow_server):
    if ray_refused_here("study", SMOKE, "--executor", "ray", cwd=tmp_path, data=real_data_dir):
        return  # this Python's path holds a space: Ray cannot run here, and says so
    output = run_study_cli(
        SMOKE,
        "--executor",
        "ray",
        "--tracking-uri",
        mlflow_server,
        cwd=tmp_path,
        env_data=real_data_dir,
    )
    assert "4 trained" in output
    runs = runs_by_status(mlflow_server)
    assert list(runs) == ["FINISHED"] and grid_of(runs["FINISHED"]) == GRID
    assert {r.data.tags["executor"] for r in runs["FINISHED"]} == {"ray"}
    assert not (tmp_path / "mlflow.db").exists()  # nothing went to the local default store


def start_and_wait_for_first_finished(tmp_path, real_data_dir):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    process = study_cli(SMOKE, cwd=tmp_path, env_data=real_data_dir, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        runs = runs_by_status(uri)
        if runs.get("FINISHED") and runs.get("RUNNING"):
            return process, uri, [r.info.run_id for r in runs["FINISHED"]]
        assert process.poll() is None, process.stdout.read()
        time.sleep(0.2)
    process.kill()
    pytest.fail("the study never had a finished and a running run at once")


def test_a_study_killed_with_sigkill_is_completed_by_the_next_invocation(tmp_path, real_data_dir):
    process, uri, finished_before = start_and_wait_for_first_finished(tmp_path, real_data_dir)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(30)
    assert runs_by_status(uri).get("RUNNING")  # the dead run is left RUNNING by kill -9
    output = run_study_cli(SMOKE, cwd=tmp_path, env_data=real_data_dir)
    assert "whose process had died as FAILED" in output
    runs = runs_by_status(uri)
    assert grid_of(runs["FINISHED"]) == GRID  # each (model, seed) exactly once
    assert set(finished_before) <= {r.info.run_id for r in runs["FINISHED"]}
    assert len(runs["FAILED"]) == 1 and "RUNNING" not in runs


def test_sigterm_marks_the_current_run_killed_and_keeps_finished_ones(tmp_path, real_data_dir):
    process, uri, finished_before = start_and_wait_for_first_finished(tmp_path, real_data_dir)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 143 and "Terminated." in output and "Traceback" not in output
    runs = runs_by_status(uri)
    assert len(runs["KILLED"]) == 1 and "RUNNING" not in runs
    assert set(finished_before) <= {r.info.run_id for r in runs["FINISHED"]}


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_two_worker_study_marks_its_runs_killed_in_one_line(
    tmp_path, real_data_dir, how
):
    """Ctrl-C reaches the whole process group (as a terminal sends it); SIGTERM only the
    command (as `timeout` or a scheduler sends it). Either way each run in progress ends
    KILLED, finished runs stay, and the command prints one line, no worker's traceback."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    spec = tmp_path / "long.toml"  # runs long enough that the signal finds them training
    spec.write_text(
        'name = "smoke"\nseeds = 2\n[settings]\ntrain_size = 60000\neval_every = 50\n'
        'eval_subset = 500\n[arms.cnn2]\nmodel = "cnn2"\n[arms.cnn3]\nmodel = "cnn3"\n'
    )
    process = study_cli(
        str(spec), "--workers", "2", cwd=tmp_path, env_data=real_data_dir, start_new_session=True
    )
    deadline = time.monotonic() + 300
    while len(runs_by_status(uri).get("RUNNING", [])) < 2:
        assert process.poll() is None and time.monotonic() < deadline, process.stdout.read()
        time.sleep(0.2)
    time.sleep(3)  # into training: a 60,000-image epoch takes far longer
    os.killpg(process.pid, how) if how == signal.SIGINT else process.send_signal(how)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 128 + how, output
    assert "Traceback" not in output and "Error" not in output, output
    runs = runs_by_status(uri)
    assert "RUNNING" not in runs and "FAILED" not in runs, {s: len(r) for s, r in runs.items()}
    assert runs.get("KILLED")
    assert {r.data.tags["failure_reason"] for r in runs["KILLED"]} == {"interrupted"}
