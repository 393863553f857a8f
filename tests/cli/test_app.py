"""The command line: clear one-paragraph errors, non-zero exits, no tracebacks."""

from pathlib import Path

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from mnistlab.cli.app import app
from tests.conftest import TINY_ARGS

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--batch-size", "0"], "batch_size must be a whole number of 1 or more"),
        (["--lr", "-1"], "lr must be a positive finite number"),
        (["--eval-every", "0"], "eval_every must be"),
        (["--model", "resnet"], "Known models: cnn2, cnn3"),
    ],
)
def test_nonsense_options_are_refused_before_anything_runs(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("train", *args)
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())
    assert "Traceback" not in result.output
    assert not (tmp_path / "mlflow.db").exists()  # nothing half-written


def test_missing_data_offline_says_which_files_and_where(tmp_path, monkeypatch):
    import torchvision.datasets

    monkeypatch.setattr(
        torchvision.datasets, "MNIST", lambda *a, **k: (_ for _ in ()).throw(OSError())
    )
    (tmp_path / "empty").mkdir()  # there, but without the dataset
    result = invoke("data", "--data-dir", str(tmp_path / "empty"))
    assert result.exit_code == 2
    assert "train-images-idx3-ubyte" in result.output and "MNISTLAB_DATA" in result.output


def test_unreachable_tracking_uri_is_a_clear_error(tmp_path: Path, tiny_mnist_dir, monkeypatch):
    import mnistlab.training.datasets

    monkeypatch.setattr(mnistlab.training.datasets, "verify_files", lambda root, dataset: None)
    result = invoke(
        "train", "--data-dir", str(tiny_mnist_dir), "--tracking-uri", "http://127.0.0.1:9"
    )
    assert result.exit_code == 2
    assert "cannot be reached" in result.output and "Traceback" not in result.output


def test_train_runs_end_to_end_and_prints_the_run_id(tmp_path, monkeypatch, tiny_mnist_dir):
    import mnistlab.training.datasets

    monkeypatch.setattr(mnistlab.training.datasets, "verify_files", lambda root, dataset: None)
    monkeypatch.chdir(tmp_path)
    result = invoke("train", "--data-dir", str(tiny_mnist_dir), *TINY_ARGS)
    assert result.exit_code == 0, result.output
    assert "MLflow run" in result.output and (tmp_path / "mlflow.db").exists()


def test_a_study_without_data_fails_before_writing_anything(tmp_path, monkeypatch):
    import torchvision.datasets

    monkeypatch.setattr(
        torchvision.datasets, "MNIST", lambda *a, **k: (_ for _ in ()).throw(OSError())
    )
    monkeypatch.chdir(tmp_path)
    spec = Path(__file__).resolve().parents[2] / "experiments" / "smoke.toml"
    (tmp_path / "empty").mkdir()  # there, but without the dataset
    result = invoke("study", str(spec), "--data-dir", str(tmp_path / "empty"))
    assert result.exit_code == 2 and "t10k-labels-idx1-ubyte" in result.output
    assert not (tmp_path / "mlflow.db").exists()


def test_a_missing_spec_lists_the_shipped_ones(tmp_path):
    spec = Path(__file__).resolve().parents[2] / "experiments" / "nope.toml"
    result = invoke("study", str(spec))
    assert result.exit_code == 2
    assert "paper.toml" in result.output and "smoke.toml" in result.output


def test_train_tags_its_experiment_as_model_training_and_prints_the_ui_link(
    tmp_path, monkeypatch, tiny_mnist_dir, unverified
):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = invoke("train", "--data-dir", str(tiny_mnist_dir), "--tracking-uri", uri, *TINY_ARGS)
    assert result.exit_code == 0, result.output
    experiment = MlflowClient(uri).get_experiment_by_name("train")
    assert experiment.tags.get("mlflow.experimentKind") == "custom_model_development"
    link = f"http://127.0.0.1:5000/#/experiments/{experiment.experiment_id}"
    assert f"{link}?workflowType=machine_learning" in result.output
