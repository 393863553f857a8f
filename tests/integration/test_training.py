"""Real MNIST from ../shared/data (or $MNISTLAB_DATA): one real epoch of each net."""

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from mnistlab.cli.app import app

pytestmark = pytest.mark.slow


def train_cli(*args: str) -> str:
    result = CliRunner().invoke(app, ["train", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output.split("MLflow run ")[1].split()[0]


@pytest.mark.parametrize("model", ["cnn2", "cnn3"])
def test_one_paper_epoch_is_tracked_in_full_and_learns(model, real_data_dir, store_uri):
    run_id = train_cli(
        "--model",
        model,
        "--seed",
        "0",
        "--data-dir",
        str(real_data_dir),
        "--tracking-uri",
        store_uri,
    )
    client = MlflowClient(store_uri)
    assert len(client.get_metric_history(run_id, "train_loss")) == 1200
    assert len(client.get_metric_history(run_id, "eval_accuracy")) == 24
    (test_accuracy,) = client.get_metric_history(run_id, "test_accuracy")
    assert test_accuracy.value >= 0.97
    assert client.get_run(run_id).info.status == "FINISHED"


def test_two_runs_with_the_same_settings_have_identical_loss_histories(real_data_dir, store_uri):
    args = (
        "--model",
        "cnn3",
        "--seed",
        "4",
        "--train-size",
        "3000",
        "--data-dir",
        str(real_data_dir),
        "--tracking-uri",
        store_uri,
    )
    client = MlflowClient(store_uri)
    first, second = (
        [m.value for m in client.get_metric_history(train_cli(*args), "train_loss")]
        for _ in range(2)
    )
    assert len(first) == 60 and first == second


def test_fashion_mnist_is_verified_and_trains_from_the_shared_folder(real_data_dir, store_uri):
    result = CliRunner().invoke(
        app, ["data", "--dataset", "fashion-mnist", "--data-dir", str(real_data_dir)]
    )
    assert result.exit_code == 0 and "Fashion-MNIST verified" in result.output
    run_id = train_cli(
        "--dataset",
        "fashion-mnist",
        "--train-size",
        "12000",
        "--data-dir",
        str(real_data_dir),
        "--tracking-uri",
        store_uri,
    )
    run = MlflowClient(store_uri).get_run(run_id)
    assert (
        run.data.tags["dataset"] == "fashion-mnist"
        and run.data.params["dataset"] == "fashion-mnist"
    )
    assert run.inputs.dataset_inputs[0].dataset.name == "fashion-mnist-train"
    assert run.data.metrics["test_accuracy"] > 0.7  # clothing: well above chance, below MNIST
