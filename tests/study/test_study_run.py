"""MLflow as the study's home: one study run per study holding the spec and the report, the
training runs nested under it, and the report fetched back from the store alone."""

import json
import shlex
from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from mnistlab.cli.app import app
from mnistlab.training import models
from tests.conftest import (
    TWO_ARM_SPEC,
    Exploding,
    flat,
    statuses,
)

SPEC = """
name = "tiny"
models = ["cnn2", "cnn3"]
seeds = 2
thresholds = [0.2, 0.5]
[settings]
train_size = 200
batch_size = 40
eval_every = 2
eval_subset = 100
"""


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def study_and_report(tmp_path, data_dir, uri):
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC)
    common = ("--tracking-uri", uri)
    invoke("study", str(spec), "--data-dir", str(data_dir), *common)
    invoke(
        "report", "tiny", "--out", str(tmp_path / "reports"), "--data-dir", str(data_dir), *common
    )


def check_study_run(client: MlflowClient, tmp_path) -> str:
    """Everything the study run must hold; returns its id."""
    experiment = client.get_experiment_by_name("tiny")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    runs = client.search_runs([experiment.experiment_id])
    (study,) = [r for r in runs if r.data.tags.get("mnistlab.role") == "study"]
    training = [r for r in runs if r is not study and r.info.run_id != study.info.run_id]
    assert len(training) == 4
    for run in training:
        assert run.data.tags["mlflow.parentRunId"] == study.info.run_id
        assert run.data.tags["mlflow.note.content"].startswith(f"Arm **{run.data.tags['arm']}**")
        assert {"arm", "model", "seed", "dataset"} <= set(run.data.tags)
    tags, metrics = study.data.tags, study.data.metrics
    assert tags["verdict/cnn3/steps_to_0.2"] == "inconclusive"
    assert {"cnn3/epoch_train_seconds/estimate", "cnn3/steps_to_0.2/p_holm", "n/cnn2"} <= set(tags)
    assert float(tags["cnn3/epoch_train_seconds/estimate"]) > 0
    assert tags["n/cnn3"] == "2"
    # No verdict statistic is a metric: the Chart view opens on the training curves.
    assert metrics == {}
    note = tags["mlflow.note.content"]
    assert "| claim |" in note and "mnistlab fetch-report tiny" in note
    lines = note.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| claim |"))
    assert set(lines[header + 1].replace("|", "").split()) == {"---"}  # a Markdown table
    assert str(tmp_path) not in note  # no absolute local path
    assert study.data.params["dataset"] == "mnist" and study.data.params["arms"] == "cnn2, cnn3"
    assert study.info.end_time >= max(r.info.end_time for r in training)
    described = client.get_experiment(experiment.experiment_id).tags["mlflow.note.content"]
    assert "tiny (study)" in described and "study `tiny`" in described
    verdicts = json.loads(
        Path(
            client.download_artifacts(study.info.run_id, "verdicts.json", str(tmp_path / "v"))
        ).read_text()
    )
    assert {v["verdict"] for v in verdicts} <= {"inconclusive", "supported", "contradicted"}
    assert len(tags["spec_hash"]) == 16
    spec_files = {a.path for a in client.list_artifacts(study.info.run_id, "spec")}
    assert spec_files == {"spec/spec.json", "spec/spec.toml"}
    local = tmp_path / "reports" / "tiny"
    stored = {a.path.split("/")[-1] for a in client.list_artifacts(study.info.run_id, "report")}
    assert stored == {p.name for p in local.iterdir()}
    for name in ("index.html", "report.pdf", "verdicts.csv"):
        copy = client.download_artifacts(study.info.run_id, f"report/{name}", str(tmp_path / "dl"))
        assert Path(copy).read_bytes() == (local / name).read_bytes()
    return study.info.run_id


def test_a_study_lives_in_one_study_run_with_its_report(
    tmp_path, tiny_mnist_dir, store_uri, unverified
):
    study_and_report(tmp_path, tiny_mnist_dir, store_uri)
    client = MlflowClient(store_uri)
    first = check_study_run(client, tmp_path)
    again = invoke(
        "report", "tiny", "--out", str(tmp_path / "reports"), "--tracking-uri", store_uri
    )
    # The UI's runs page, on the saved view that the study's experiment holds.
    view = "#/experiments/1/runs?workflowType=machine_learning&viewStateShareKey=mnistlab-arms"
    assert view in again.output
    assert "mlflow.sharedViewState.mnistlab-arms" in client.get_experiment("1").tags
    assert check_study_run(client, tmp_path) == first  # the second report replaced the first
    # Whoever has only the store gets the last report back, byte for byte.
    invoke("fetch-report", "tiny", "--out", str(tmp_path / "fetched"), "--tracking-uri", store_uri)
    for path in (tmp_path / "reports" / "tiny").iterdir():
        assert (tmp_path / "fetched" / "tiny" / path.name).read_bytes() == path.read_bytes()


def test_fetching_a_report_that_was_never_rendered_says_how_in_a_command_that_pastes(
    tmp_path, tiny_mnist_dir, unverified
):
    folder = tmp_path / "my studies [draft]"  # a store whose path a shell would split
    folder.mkdir()
    store_uri = f"sqlite:///{folder / 'mlflow.db'}"
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC)
    invoke("study", str(spec), "--data-dir", str(tiny_mnist_dir), "--tracking-uri", store_uri)
    result = CliRunner().invoke(app, ["fetch-report", "tiny", "--tracking-uri", store_uri])
    output = flat(result.output)
    assert result.exit_code == 2 and "no rendered report" in output
    hint = output.split("Run `")[1].split("`")[0]
    assert shlex.split(hint) == ["mnistlab", "report", "tiny", "--tracking-uri", store_uri]


@pytest.mark.slow
def test_the_study_run_on_a_real_tracking_server(
    tmp_path, tiny_mnist_dir, mlflow_server, unverified
):
    study_and_report(tmp_path, tiny_mnist_dir, mlflow_server)
    client = MlflowClient(mlflow_server)  # the REST API, as the UI uses it
    first = check_study_run(client, tmp_path)
    invoke("report", "tiny", "--out", str(tmp_path / "reports"), "--tracking-uri", mlflow_server)
    assert check_study_run(client, tmp_path) == first
    invoke(
        "fetch-report", "tiny", "--out", str(tmp_path / "fetched"), "--tracking-uri", mlflow_server
    )
    assert (tmp_path / "fetched" / "tiny" / "report.pdf").read_bytes() == (
        tmp_path / "reports" / "tiny" / "report.pdf"
    ).read_bytes()


def test_a_diverging_arm_fails_its_runs_the_rest_trains_and_a_rerun_retries_only_those(
    tmp_path: Path, tiny_mnist_dir, unverified, monkeypatch
):
    spec = tmp_path / "tiny.toml"
    spec.write_text(TWO_ARM_SPEC)
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


def test_an_interrupted_study_shows_its_study_run_killed_until_a_rerun_completes_it(
    tmp_path, tiny_mnist_dir, store_uri, unverified, monkeypatch
):
    from mnistlab.study import executors

    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC)
    trained = executors.train_one

    def second_run_interrupted(planned, *args, **kwargs):
        if planned.name != "cnn2-s0":
            raise KeyboardInterrupt
        return trained(planned, *args, **kwargs)

    monkeypatch.setattr(executors, "train_one", second_run_interrupted)
    common = ("study", str(spec), "--data-dir", str(tiny_mnist_dir), "--tracking-uri", store_uri)
    interrupted = CliRunner().invoke(app, list(common))
    assert interrupted.exit_code == 130, interrupted.output

    def study_run_status() -> str:
        client = MlflowClient(store_uri)
        experiment = client.get_experiment_by_name("tiny")
        (study,) = client.search_runs(
            [experiment.experiment_id], filter_string="tags.`mnistlab.role` = 'study'"
        )
        return study.info.status

    assert study_run_status() == "KILLED"
    invoke(
        "report", "tiny", "--out", str(tmp_path / "reports"), "--tracking-uri", store_uri
    )  # a report of what there is does not pretend the study completed
    assert study_run_status() == "KILLED"
    monkeypatch.setattr(executors, "train_one", trained)
    invoke(*common)
    assert study_run_status() == "FINISHED"
