"""Reliability: failed runs, concurrent invocations, claims, heartbeats, outages, retries."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_RUN_NAME
from typer.testing import CliRunner

from mnistlab.cli.app import app
from mnistlab.names import HEARTBEAT_TAG
from mnistlab.results.evidence import analyse
from mnistlab.spec.parse import load_spec
from mnistlab.spec.run import PlannedRun, RunConfig
from mnistlab.spec.study import StudySpec
from mnistlab.store import writer
from mnistlab.store.liveness import STALE_AFTER_SECONDS, claim_holder, death, overlapping
from mnistlab.store.records import StoredRun
from mnistlab.store.store import open_store
from mnistlab.store.tracked_run import StoreUnreachable, TrackedRun
from mnistlab.study.run import run_study
from mnistlab.study.runner import ClaimedElsewhere, tracked_train
from mnistlab.training import models
from tests.conftest import Exploding, flat

MNISTLAB = str(Path(sys.executable).with_name("mnistlab"))
TINY_SPEC = """
name = "tiny"
seeds = 2
thresholds = [0.2]
[settings]
train_size = 200
batch_size = 20
eval_every = 3
eval_subset = 100
threads = 1
[arms.base]
model = "cnn2"
[arms.deeper]
model = "cnn3"
"""


def training_runs(uri: str, experiment: str) -> list:
    """The experiment's runs, its study run left out."""
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return [r for r in runs if r.data.tags.get("mnistlab.role") != "study"]


def statuses(uri: str, experiment: str = "tiny") -> dict[str, list[str]]:
    """Run name -> statuses of its training runs."""
    found: dict[str, list[str]] = {}
    for run in training_runs(uri, experiment):
        found.setdefault(run.info.run_name, []).append(run.info.status)
    return found


def test_a_diverging_arm_fails_its_runs_the_rest_trains_and_a_rerun_retries_only_those(
    tmp_path: Path, tiny_mnist_dir, unverified, monkeypatch
):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TINY_SPEC)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = ["study", str(spec), "--data-dir", str(tiny_mnist_dir), "--tracking-uri", uri]
    working = models.MODELS["cnn3"]
    monkeypatch.setitem(models.MODELS, "cnn3", Exploding)
    first = CliRunner().invoke(app, args, catch_exceptions=False)
    assert first.exit_code == 1
    text = flat(first.output)
    assert "2 trained, 2 FAILED" in text
    assert "deeper-s0" in text and "deeper-s1" in text
    assert "retrains only the failed ones" in text and "Traceback" not in text
    assert statuses(uri) == {
        "base-s0": ["FINISHED"],
        "base-s1": ["FINISHED"],
        "deeper-s0": ["FAILED"],
        "deeper-s1": ["FAILED"],
    }
    monkeypatch.setitem(models.MODELS, "cnn3", working)  # the arm is fixed
    second = CliRunner().invoke(app, args, catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert "2 skipped as finished, 2 trained" in flat(second.output)
    assert {name: sorted(s) for name, s in statuses(uri).items()} == {
        "base-s0": ["FINISHED"],
        "base-s1": ["FINISHED"],
        "deeper-s0": ["FAILED", "FINISHED"],
        "deeper-s1": ["FAILED", "FINISHED"],
    }


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
        TINY_SPEC.replace("seeds = 2", "seeds = 1").replace('[arms.deeper]\nmodel = "cnn3"\n', "")
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


# --- liveness rules, by hand -------------------------------------------------------------

NOW = 10_000_000


def stored(run_id="r", status="RUNNING", start=NOW - 1000, end=None, **tags) -> StoredRun:
    return StoredRun(run_id, run_id, status, start, {k: str(v) for k, v in tags.items()}, {}, end)


def test_a_run_is_dead_when_its_local_process_is_gone_or_its_heartbeat_is_stale():
    here = socket.gethostname()
    gone, alive = (lambda pid: False), (lambda pid: True)
    assert "process died" in death(stored(host=here, pid=999999), NOW, gone)
    assert death(stored(host=here, pid=999999), NOW, alive) is None
    stale = NOW - int(STALE_AFTER_SECONDS * 1000) - 1
    assert "no heartbeat" in death(stored(host="elsewhere", heartbeat=stale), NOW, alive)
    assert death(stored(host="elsewhere", heartbeat=NOW - 1000), NOW, alive) is None
    # A run from before heartbeats: its start counts as its last sign of life.
    assert death(stored(host="elsewhere", start=stale), NOW, alive) is not None
    assert death(stored(status="FINISHED", host="elsewhere", start=stale), NOW, alive) is None


def test_the_earliest_live_claim_owns_a_config_and_attempts_of_one_task_do_not_compete():
    ours = stored("b", start=NOW)
    earlier = stored("a", start=NOW - 5)
    assert claim_holder([ours, earlier], ours, since_ms=NOW - 100) == earlier
    assert claim_holder([ours, earlier], earlier, since_ms=NOW - 100) is None
    tie = stored("c", start=NOW)  # same millisecond: the run id decides, the same way for both
    assert (
        claim_holder([ours, tie], ours, NOW) is None and claim_holder([ours, tie], tie, NOW) == ours
    )
    finished_since = stored("f", status="FINISHED", start=NOW - 50, end=NOW - 10)
    assert claim_holder([ours, finished_since], ours, since_ms=NOW - 100) == finished_since
    assert claim_holder([ours, finished_since], ours, since_ms=NOW - 20) is None  # --force
    retry, first_attempt = stored("d", start=NOW, claim="t"), stored("e", start=NOW - 9, claim="t")
    assert claim_holder([retry, first_attempt], retry, NOW - 100) is None


def test_runs_overlap_on_one_host_only_while_both_ran():
    ours = stored("o", start=NOW - 100, host="h")
    runs = [
        stored("running", start=NOW - 500, host="h"),
        stored("ended-during", status="FINISHED", start=NOW - 500, end=NOW - 50, host="h"),
        stored("ended-before", status="FINISHED", start=NOW - 500, end=NOW - 200, host="h"),
        stored("other-host", start=NOW - 50, host="g"),
        stored("started-after", start=NOW + 10, host="h"),
    ]
    found = {r.run_id for r in overlapping(runs, ours, until_ms=NOW)}
    assert found == {"running", "ended-during"}


# --- liveness and claims in a study --------------------------------------------------------


def tiny_spec(tmp_path: Path) -> StudySpec:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_SPEC)
    return load_spec(path)


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
    spec = tiny_spec(tmp_path)
    stale = int(time.time() * 1000) - int(STALE_AFTER_SECONDS * 1000) - 60_000
    planted = planted_run(store_uri, spec, stale)
    report = run_study(spec, store_uri, data=tiny_mnist)
    assert report.orphaned == [planted] and not report.claimed
    run = MlflowClient(store_uri).get_run(planted)
    assert run.info.status == "FAILED" and "no heartbeat" in run.data.tags["failure_reason"]
    assert statuses(store_uri)["base-s0"] == ["FINISHED", "FAILED"]


def test_a_config_a_live_run_elsewhere_is_training_is_left_to_it(tmp_path, tiny_mnist, store_uri):
    spec = tiny_spec(tmp_path)
    planted = planted_run(store_uri, spec, int(time.time() * 1000))
    report = run_study(spec, store_uri, data=tiny_mnist)
    assert report.claimed == ["base-s0 (elsewhere)"] and not report.orphaned
    assert len(report.outcomes) == 3 and all(o.trained for o in report.outcomes)
    assert MlflowClient(store_uri).get_run(planted).info.status == "RUNNING"


def test_a_run_that_loses_its_claim_after_planning_withdraws_before_training(
    tmp_path, tiny_mnist, store_uri
):
    spec = tiny_spec(tmp_path)
    planned_at = int(time.time() * 1000) - 1000
    rival = planted_run(store_uri, spec, int(time.time() * 1000))  # claimed after we planned
    store = open_store(store_uri)
    with pytest.raises(ClaimedElsewhere, match=rival):
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


# --- a store that goes away ------------------------------------------------------------------


class Outage:
    """Makes the client's calls fail as a dead server does, for a while or for good."""

    def __init__(self, monkeypatch, client, failures: int | None) -> None:
        self.left = failures
        for name in ("log_batch", "log_artifact", "log_inputs", "set_terminated", "get_run"):
            monkeypatch.setattr(client, name, self.wrap(getattr(client, name)))

    def wrap(self, call):
        def failing(*args, **kwargs):
            if self.left is None or self.left > 0:
                self.left = None if self.left is None else self.left - 1
                raise ConnectionError("Connection refused")
            return call(*args, **kwargs)

        return failing


def histories(uri: str, run_id: str) -> dict[str, list[tuple[int, float]]]:
    client = MlflowClient(uri)
    return {
        key: sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))
        for key in ("train_loss", "eval_accuracy", "test_accuracy", "epoch_train_seconds")
    }


SMALL = RunConfig(seed=4, train_size=200, batch_size=20, eval_every=3, eval_subset=100, threads=1)


def test_a_short_outage_costs_nothing(tiny_mnist, store_uri, monkeypatch):
    store = open_store(store_uri)
    Outage(monkeypatch, store.client, failures=3)
    run_id, result = tracked_train(
        PlannedRun("a", SMALL), tiny_mnist, store, store.experiment_id("u"), "u"
    )
    run = MlflowClient(store_uri).get_run(run_id)
    assert run.info.status == "FINISHED"
    losses = [v for _, v in histories(store_uri, run_id)["train_loss"]]
    assert losses == pytest.approx(result.train_loss.tolist(), rel=0, abs=0)


def test_a_long_outage_spools_the_run_and_sync_writes_it_as_if_nothing_happened(
    tiny_mnist, store_uri, monkeypatch, tmp_path
):
    monkeypatch.setenv("MNISTLAB_SPOOL", str(tmp_path / "spool"))
    monkeypatch.setattr(writer, "RETRY_SECONDS", 0.5)
    store = open_store(store_uri)
    experiment_id = store.experiment_id("u")
    reference, _ = tracked_train(PlannedRun("a", SMALL), tiny_mnist, store, experiment_id, "u")
    with monkeypatch.context() as down:
        Outage(down, store.client, failures=None)
        with pytest.raises(StoreUnreachable, match="mnistlab sync") as error:
            tracked_train(PlannedRun("a", SMALL), tiny_mnist, store, experiment_id, "u")
    (folder,) = (tmp_path / "spool").iterdir()
    assert str(folder) in str(error.value)
    spooled = folder.name
    assert MlflowClient(store_uri).get_run(spooled).info.status == "RUNNING"  # until synced
    synced = CliRunner().invoke(app, ["sync"], catch_exceptions=False)
    assert synced.exit_code == 0 and "Synced 1 run(s)" in synced.output
    run = MlflowClient(store_uri).get_run(spooled)
    assert run.info.status == "FINISHED" and run.data.tags["model"] == "cnn2"
    assert histories(store_uri, spooled) == {
        k: v for k, v in histories(store_uri, reference).items() if k != "epoch_train_seconds"
    } | {"epoch_train_seconds": histories(store_uri, spooled)["epoch_train_seconds"]}
    artifacts = {a.path for a in MlflowClient(store_uri).list_artifacts(spooled, "model")}
    assert artifacts == {"model/weights.pt", "model/test_predictions.npy"}
    assert not list((tmp_path / "spool").iterdir())


# --- real processes, servers and Ray (slow) --------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / "experiments" / "smoke.toml")
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


def test_timing_claims_use_only_runs_that_ran_alone(tmp_path, tiny_mnist, store_uri):
    spec = tiny_spec(tmp_path)
    run_study(spec, store_uri, data=tiny_mnist)
    store = open_store(store_uri)
    alone = analyse(store, "tiny")
    shared = next(r for r in alone.runs.itertuples() if r.run_name == "base-s0")
    store.set_run_tags(shared.run_id, {"contended": "true"})
    results = analyse(store, "tiny")
    n = dict(zip(results.verdicts["claim"], results.verdicts["n"], strict=True))
    assert n == {"steps_to:0.2": 2, "epoch_train_seconds": 1, "log_loss_spread": 2}
    assert any(
        "base-s0" in note and "left out of every timing claim" in note for note in results.notes
    )
    assert not any("left out" in note for note in alone.notes)


def test_a_store_error_mid_command_is_one_paragraph_not_a_traceback(store_uri, monkeypatch):
    from mlflow.exceptions import MlflowException

    from mnistlab.store.store import Store

    open_store(store_uri).experiment_id("paper")

    def broken(self, *args, **kwargs):
        raise MlflowException("(sqlite3.OperationalError) disk I/O error")

    monkeypatch.setattr(Store, "find_experiment", broken)
    result = CliRunner().invoke(app, ["analyze", "paper", "--tracking-uri", store_uri])
    assert result.exit_code == 2
    assert "the tracking store failed (MlflowException: (sqlite3.OperationalError)" in result.output
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # typer.Exit(2): no error escaped
