"""Stress (slow): a study trains with two workers while readers look at it the whole time:
mnistlab analyze, power and report, a plain MlflowClient, and `mlflow server` on the same file
answering the UI's REST calls. The study must not notice."""

from __future__ import annotations

import itertools
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from mlflow import MlflowClient

from mnistlab.store.store import open_store
from tests.conftest import MNISTLAB, MlflowServer

SPEC = """
name = "peek"
seeds = {seeds}
thresholds = [0.9]
[settings]
train_size = 9000
eval_subset = 500
eval_every = 30
[arms.slow]
model = "cnn2"
[arms.fast]
model = "cnn2"
lr = 0.002
[[claims]]
metric = "test_accuracy"
direction = "higher"
"""
PLAIN_READER = (
    "import sys; from mlflow import MlflowClient; c = MlflowClient(sys.argv[1]);"
    "[c.search_runs([e.experiment_id]) for e in c.search_experiments()]"
)
BAD_WORDS = ("Traceback", "ERROR", "disk I/O", "locked", "malformed")


def _environment(data: Path) -> dict[str, str]:
    env = {**os.environ, "MNISTLAB_DATA": str(data), "MNISTLAB_FLUSH_SECONDS": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _readers(uri: str, folder: Path) -> itertools.cycle:
    """The looks a user takes, each a process that comes and goes; "ui" is `mlflow server` on
    the study's own file, opened, browsed through its REST calls and closed."""
    commands = [
        [MNISTLAB, "analyze", "peek", "--tracking-uri", uri],
        "ui",
        [MNISTLAB, "power", "peek", "--tracking-uri", uri],
        [sys.executable, "-c", PLAIN_READER, uri],
        [MNISTLAB, "report", "peek", "--tracking-uri", uri, "--out", str(folder / "reports")],
    ]
    return itertools.cycle(commands)


def _open_the_ui_on(db: Path, folder: Path) -> str:
    """Start `mlflow server` on the study's file (MlflowServer serves <folder>/server.db: a
    link to it), make the UI's calls, stop it; its log, for checking."""
    ui_folder = folder / "ui"
    ui_folder.mkdir(exist_ok=True)
    if not (ui_folder / "server.db").exists():
        (ui_folder / "server.db").symlink_to(db)
    server = MlflowServer(ui_folder)
    server.start()
    try:
        _ui_calls(server.uri)
    finally:
        server.stop()
    return "ui\n"


def _ui_calls(server: str) -> None:
    """What the MLflow UI asks when it opens the experiments page and the runs table."""
    experiments = requests.post(
        f"{server}/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 100}, timeout=30
    )
    experiments.raise_for_status()
    ids = [e["experiment_id"] for e in experiments.json().get("experiments", [])]
    requests.post(
        f"{server}/ajax-api/2.0/mlflow/runs/search",
        json={"experiment_ids": ids, "max_results": 100},
        timeout=30,
    ).raise_for_status()


def _look_while_it_trains(
    study: subprocess.Popen, uri: str, folder: Path, env: dict[str, str]
) -> tuple[int, list[str]]:
    """Run the readers one after another until the study ends; their outputs, for checking."""
    outputs, looks = [], 0
    db = Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None
    for command in _readers(uri, folder):
        if study.poll() is not None:
            break
        if command == "ui":
            if db is not None:
                outputs.append(_open_the_ui_on(db, folder))
            else:
                _ui_calls(uri)
        else:
            reader = subprocess.run(
                command, cwd=folder, env=env, capture_output=True, text=True, timeout=300
            )
            outputs.append(" ".join(command[1:3]) + "\n" + reader.stdout + reader.stderr)
        looks += 1
    return looks, outputs


# Readers the study must outlast, whatever the ratio of training speed to reader speed on the
# machine at hand (CI's machine once finished a study in three looks where this one took five).
LOOKS = 4
ROUNDS = 4


def _seeds_in_round(workers: int, round_: int) -> int:
    """Seeds of the spec in round 0, 1, 2, ...: each round adds as many seeds again, so the
    study trains only the new ones, as a user extending a study would."""
    return 3 * workers * (round_ + 1)


def _check_study(uri: str, study_output: str, outputs: list[str], folder: Path, seeds: int) -> None:
    for output in [study_output, *outputs]:
        for word in BAD_WORDS:
            assert word not in output, output
    assert not (folder / "mnistlab-spool").exists()
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("peek")
    runs = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get("mnistlab.role") != "study"
    ]
    assert sorted(r.info.run_name for r in runs) == sorted(
        f"{arm}-s{seed}" for arm in ("slow", "fast") for seed in range(seeds)
    )
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert len({r.data.tags["config_hash"] for r in runs}) == 2 * seeds


def _study_with_readers(uri: str, folder: Path, data: Path, workers: int) -> tuple[int, str]:
    """Train the study while the readers look, until they have looked LOOKS times while it
    trained; check what everyone printed and stored.

    The overlap is not left to the machine's speed: where the study ends before the readers
    have had their turns, the spec grows by more seeds and the study runs again (it trains the
    new seeds only), with the readers looking again, for at most ROUNDS rounds.
    """
    env = _environment(data)
    looks, outputs, study_outputs = 0, [], []
    for round_ in range(ROUNDS):
        seeds = _seeds_in_round(workers, round_)
        (folder / "peek.toml").write_text(SPEC.format(seeds=seeds))
        study = subprocess.Popen(
            [MNISTLAB, "study", "peek.toml", "--workers", str(workers), "--tracking-uri", uri],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(3)
        round_looks, round_outputs = _look_while_it_trains(study, uri, folder, env)
        study_output, _ = study.communicate(timeout=600)
        assert study.returncode == 0, study_output
        looks += round_looks
        outputs += round_outputs
        study_outputs.append(study_output)
        if looks >= LOOKS:
            break
    assert looks >= LOOKS, f"the readers looked only {looks} times in {ROUNDS} rounds of the study"
    _check_study(uri, "\n".join(study_outputs), outputs, folder, seeds)
    return looks, study_outputs[-1]


# Five tries in process (the default, and where a reader could once delete the WAL under the
# study: 5 of 5 studies died before the fix), one with two worker processes.
TRIES = [(1, attempt) for attempt in range(5)] + [(2, 0)]


@pytest.mark.slow
@pytest.mark.parametrize(("workers", "attempt"), TRIES, ids=[f"w{w}-{a}" for w, a in TRIES])
def test_readers_and_the_ui_on_the_file_never_hurt_a_study(
    tmp_path, real_data_dir, workers, attempt
):
    db = tmp_path / "mlflow.db"
    open_store(f"sqlite:///{db}")  # the store exists before the UI opens on it
    looks, _ = _study_with_readers(f"sqlite:///{db}", tmp_path, real_data_dir, workers)
    print(f"workers {workers}, try {attempt}: {looks} looks while the study trained")
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


@pytest.mark.slow
def test_readers_against_a_tracking_server_never_hurt_a_study(
    tmp_path, real_data_dir, mlflow_server
):
    _study_with_readers(mlflow_server, tmp_path, real_data_dir, workers=2)
