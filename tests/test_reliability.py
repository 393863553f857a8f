"""Reliability: failed runs, concurrent invocations, claims, heartbeats, outages, retries."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from mnistlab import models
from mnistlab.cli import app
from tests.conftest import Exploding

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


def statuses(uri: str, experiment: str = "tiny") -> dict[str, list[str]]:
    """Run name -> statuses of its training runs (the study run left out)."""
    client = MlflowClient(uri)
    found: dict[str, list[str]] = {}
    for run in client.search_runs([client.get_experiment_by_name(experiment).experiment_id]):
        if run.data.tags.get("mnistlab.role") != "study":
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
    assert "2 trained, 2 FAILED" in first.output
    assert "deeper-s0" in first.output and "deeper-s1" in first.output
    assert "retrains only the failed ones" in first.output and "Traceback" not in first.output
    assert statuses(uri) == {
        "base-s0": ["FINISHED"],
        "base-s1": ["FINISHED"],
        "deeper-s0": ["FAILED"],
        "deeper-s1": ["FAILED"],
    }
    monkeypatch.setitem(models.MODELS, "cnn3", working)  # the arm is fixed
    second = CliRunner().invoke(app, args, catch_exceptions=False)
    assert second.exit_code == 0, second.output
    assert "2 skipped as finished, 2 trained" in second.output
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
    "import sys; from mnistlab.tracking import open_store; client = open_store(sys.argv[1]).client; "
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
