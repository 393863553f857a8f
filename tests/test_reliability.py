"""Reliability: failed runs, concurrent invocations, claims, heartbeats, outages, retries."""

from __future__ import annotations

from pathlib import Path

from mlflow import MlflowClient
from typer.testing import CliRunner

from mnistlab import models
from mnistlab.cli import app
from tests.conftest import Exploding

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
