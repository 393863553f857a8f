import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from mnistlab.results.evidence import analyse
from mnistlab.spec.parse import parse_spec, spec_from_record
from mnistlab.spec.record import to_record
from mnistlab.spec.run import RunConfig
from mnistlab.store.store import open_store
from mnistlab.study.run import StudyError, plan_study, run_study
from tests.conftest import TINY_SETTINGS


def tiny_spec(tmp_path, **settings):
    data = {
        "name": "tiny",
        "models": ["cnn2", "cnn3"],
        "seeds": 2,
        "settings": {**TINY_SETTINGS, **settings},
    }
    return parse_spec(data, tmp_path / "tiny.toml")


def finished_runs(store_uri):
    client = MlflowClient(store_uri)
    experiment_id = client.get_experiment_by_name("tiny").experiment_id
    runs = client.search_runs([experiment_id])
    return sorted(
        (r.data.tags["model"], int(r.data.tags["seed"]), r.info.run_id)
        for r in runs
        if r.info.status == "FINISHED" and "config_hash" in r.data.tags  # not the study run
    )


def test_a_second_invocation_trains_nothing(tiny_mnist, store_uri, tmp_path):
    spec = tiny_spec(tmp_path)
    first = run_study(spec, store_uri, data=tiny_mnist)
    assert (first.planned, first.skipped, len(first.outcomes)) == (4, 0, 4)
    second = run_study(spec, store_uri, data=tiny_mnist)
    assert (second.skipped, second.outcomes) == (4, [])
    runs = finished_runs(store_uri)
    assert [(m, s) for m, s, _ in runs] == [("cnn2", 0), ("cnn2", 1), ("cnn3", 0), ("cnn3", 1)]


def test_changing_a_setting_changes_the_runs_and_keeps_the_old_ones(
    tiny_mnist, store_uri, tmp_path
):
    run_study(tiny_spec(tmp_path), store_uri, data=tiny_mnist)
    changed = run_study(tiny_spec(tmp_path, lr=0.002), store_uri, data=tiny_mnist)
    assert len(changed.outcomes) == 4
    assert len(finished_runs(store_uri)) == 8


def test_force_reruns_everything(tiny_mnist, store_uri, tmp_path):
    run_study(tiny_spec(tmp_path), store_uri, data=tiny_mnist)
    assert len(run_study(tiny_spec(tmp_path), store_uri, data=tiny_mnist, force=True).outcomes) == 4


def test_failed_and_dead_runs_are_redone(tiny_mnist, store_uri, tmp_path):
    spec = tiny_spec(tmp_path)
    run_study(spec, store_uri, data=tiny_mnist)
    store = open_store(store_uri)
    client = store.client
    experiment_id = store.experiment_id("tiny")
    cnn2_s0 = next(r for r in client.search_runs([experiment_id]) if r.info.run_name == "cnn2-s0")
    client.set_terminated(cnn2_s0.info.run_id, "FAILED")
    # A run left RUNNING by a process that no longer exists, as after kill -9.
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    ghost = client.create_run(
        experiment_id,
        tags={"host": socket.gethostname(), "pid": dead.stdout.strip(), "config_hash": "x"},
    )
    report = run_study(spec, store_uri, data=tiny_mnist)
    assert [o.run.name for o in report.outcomes] == ["cnn2-s0"]
    assert report.orphaned == [ghost.info.run_id]
    assert client.get_run(ghost.info.run_id).info.status == "FAILED"


def test_the_spec_is_recorded_on_the_study_run_not_the_experiment(tiny_mnist, store_uri, tmp_path):
    run_study(tiny_spec(tmp_path), store_uri, data=tiny_mnist)
    client = MlflowClient(store_uri)
    experiment = client.get_experiment_by_name("tiny")
    (study_run,) = client.search_runs([experiment.experiment_id], "tags.`mnistlab.role` = 'study'")
    text = Path(
        client.download_artifacts(study_run.info.run_id, "spec/spec.json", str(tmp_path))
    ).read_text()
    record = json.loads(text)
    assert record["version"] == 2 and list(record["arms"]) == ["cnn2", "cnn3"]
    assert spec_from_record(record) == tiny_spec(tmp_path)
    assert study_run.data.tags["spec_hash"] == hashlib.sha256(text.encode()).hexdigest()[:16]
    # The experiment list shows experiment tags: no JSON there, nor run lists.
    assert "spec" not in experiment.tags and "config_hashes" not in experiment.tags
    # Its start is the study's: before every training run's.
    runs = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.info.run_id != study_run.info.run_id
    ]
    assert runs and study_run.info.start_time <= min(r.info.start_time for r in runs)


def test_an_older_stores_experiment_tag_is_read_and_then_moved(tiny_mnist, store_uri, tmp_path):
    spec = tiny_spec(tmp_path)
    client = MlflowClient(store_uri)
    experiment_id = client.create_experiment("tiny")
    client.set_experiment_tag(experiment_id, "spec", json.dumps(to_record(spec)))
    older = client.create_run(experiment_id, start_time=1_000, tags={"config_hash": "x"})
    store = open_store(store_uri)
    assert store.spec_record(store.find_experiment("tiny")) == to_record(spec)
    plan_study(store, spec)  # records the spec on a new study run, starting with the oldest run
    assert "spec" not in client.get_experiment(experiment_id).tags
    assert store.spec_record(store.find_experiment("tiny")) == json.loads(
        json.dumps(to_record(spec))
    )
    study = client.get_run(store.study_run(experiment_id, "tiny", create=False))
    assert study.info.start_time == older.info.start_time == 1_000


def test_a_remote_ray_cluster_with_a_local_store_is_refused(tmp_path, store_uri):
    with pytest.raises(StudyError, match="cannot write to the local store"):
        run_study(tiny_spec(tmp_path), store_uri, executor="ray", ray_address="10.0.0.1:6379")


def test_a_local_ray_cluster_from_a_python_under_a_path_with_spaces_is_refused_first(
    tmp_path, store_uri, monkeypatch
):
    """Ray would fail after five retries with no word of why (its raylet does not quote the
    interpreter's path); refused before the store is opened, with the two ways out."""
    from mnistlab.study import executors

    monkeypatch.setattr(executors.sys, "executable", "/home/me/my projects/.venv/bin/python")
    with pytest.raises(StudyError) as refused:
        run_study(tiny_spec(tmp_path), store_uri, executor="ray")
    message = str(refused.value)
    assert "(/home/me/my projects/.venv/bin/python)" in message
    assert "a folder without spaces" in message and "--workers N" in message
    assert not (tmp_path / "mlflow.db").exists()
    assert executors.local_ray_problem("/usr/bin/python3") is None


def test_zero_workers_is_refused(tmp_path, store_uri):
    with pytest.raises(StudyError, match="--workers must be 1 or more"):
        run_study(tiny_spec(tmp_path), store_uri, workers=0)


def test_mlflow_http_retries_are_bounded_unless_the_user_set_them(store_uri, monkeypatch):
    """mnistlab retries a run's writes itself (writer.py); MLflow's own retries per call
    (minutes by default) would stretch the stated window, so they are capped."""
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "unset")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "42")
    open_store(store_uri)
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "42"


def test_an_adaptive_study_trains_look_by_look_and_resumes_under_the_same_rule(
    tiny_mnist, store_uri, tmp_path
):
    data = {"name": "tiny", "models": ["cnn2", "cnn3"], "seeds": 2,
            "settings": TINY_SETTINGS, "adaptive": {"max_seeds": 4, "block": 1}}  # fmt: skip
    spec = parse_spec(data, tmp_path / "tiny.toml")
    report = run_study(spec, store_uri, data=tiny_mnist)
    # Four seeds can never decide three claims (seven are needed), so every look is taken.
    assert len(report.looks) == 3 and report.looks[-1].startswith("look 3 of 3 (4 seeds)")
    assert [(m, s) for m, s, _ in finished_runs(store_uri)] == [
        (m, s) for m in ("cnn2", "cnn3") for s in range(4)
    ]
    again = run_study(spec, store_uri, data=tiny_mnist)
    assert again.outcomes == [] and again.looks[-1] == report.looks[-1]
    changed = parse_spec({**data, "adaptive": {"max_seeds": 6, "block": 2}}, tmp_path / "t.toml")
    with pytest.raises(StudyError, match="Changing the stopping rule after looking"):
        run_study(changed, store_uri, data=tiny_mnist)


def test_thread_counts_change_the_numbers_or_at_least_the_tags():
    import warnings

    from mnistlab.training.datasets import ImageData
    from mnistlab.training.loop import train
    from tests.conftest import tiny_arrays

    # Large enough batches for oneDNN to split its reductions across threads.
    train_x, train_y, test_x, test_y = tiny_arrays(n_train=2000)
    data = ImageData(
        torch.from_numpy(train_x),
        torch.from_numpy(train_y).long(),
        torch.from_numpy(test_x),
        torch.from_numpy(test_y).long(),
        Path("."),
    )
    settings = dict(model="cnn3", train_size=2000, batch_size=50, eval_every=10, eval_subset=100)
    one = train(RunConfig(threads=1, device="cpu", **settings), data)
    two = train(RunConfig(threads=2, device="cpu", **settings), data)
    assert (one.threads, two.threads) == (1, 2)  # what the run tags record
    assert (
        RunConfig(threads=1, **settings).config_hash()
        == RunConfig(threads=2, **settings).config_hash()
    )
    if one.train_loss.tobytes() == two.train_loss.tobytes():
        warnings.warn(
            "On this platform 1 and 2 threads reduce in the same order for these shapes: the "
            "losses are equal, and only the recorded thread count tells the runs apart.",
            stacklevel=1,
        )
    else:
        assert np.abs(one.train_loss - two.train_loss).max() > 0


def test_strict_retrains_runs_from_another_thread_count_instead_of_reusing_them(
    tiny_mnist, store_uri, tmp_path
):
    run_study(tiny_spec(tmp_path, threads=1), store_uri, data=tiny_mnist)
    at_two = tiny_spec(tmp_path, threads=2)  # threads is not part of a run's identity
    assert run_study(at_two, store_uri, data=tiny_mnist).outcomes == []
    strict = run_study(at_two, store_uri, data=tiny_mnist, strict=True)
    assert len(strict.outcomes) == 4
    client = MlflowClient(store_uri)
    experiment_id = client.get_experiment_by_name("tiny").experiment_id
    threads = sorted(
        r.data.tags["threads"]
        for r in client.search_runs([experiment_id])
        if "threads" in r.data.tags
    )
    assert threads == ["1"] * 4 + ["2"] * 4
    assert run_study(at_two, store_uri, data=tiny_mnist, strict=True).outcomes == []


def test_a_study_whose_runs_mix_thread_counts_says_so(tiny_mnist, store_uri, tmp_path):
    from mnistlab.store.store import open_store

    run_study(tiny_spec(tmp_path, threads=1), store_uri, data=tiny_mnist)
    three = parse_spec(
        {"name": "tiny", "models": ["cnn2", "cnn3"], "seeds": 3,
         "settings": {**TINY_SETTINGS, "threads": 2}},
        tmp_path / "tiny.toml",
    )  # fmt: skip
    run_study(three, store_uri, data=tiny_mnist)
    notes = " ".join(analyse(open_store(store_uri), "tiny").notes)
    assert "different thread counts (1, 2)" in notes and "--strict" in notes


def test_a_thousand_seeds_plan_without_hitting_a_tag_limit(tmp_path, store_uri):
    spec = parse_spec(
        {"name": "big", "models": ["cnn2", "cnn3"], "seeds": 1000}, tmp_path / "b.toml"
    )
    plan = plan_study(open_store(store_uri), spec)
    assert len(plan.todo) == 2000
    store = open_store(store_uri)
    assert store.spec_record(store.find_experiment("big"))["seeds"] == 1000
