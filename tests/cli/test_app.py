"""The command line: clear one-paragraph errors, non-zero exits, no tracebacks."""

import signal
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient
from typer.testing import CliRunner

from mnistlab.cli.app import app, main
from mnistlab.store.store import open_store
from tests.conftest import (
    REPO,
    TINY_ARGS,
    invoke,
    refused,
)


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
    import mnistlab.training.data_files

    monkeypatch.setattr(mnistlab.training.data_files, "verify_files", lambda root, dataset: None)
    result = invoke(
        "train", "--data-dir", str(tiny_mnist_dir), "--tracking-uri", "http://127.0.0.1:9"
    )
    assert result.exit_code == 2
    assert "cannot be reached" in result.output and "Traceback" not in result.output


def test_train_runs_end_to_end_and_prints_the_run_id(tmp_path, monkeypatch, tiny_mnist_dir):
    import mnistlab.training.data_files

    monkeypatch.setattr(mnistlab.training.data_files, "verify_files", lambda root, dataset: None)
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


@pytest.mark.parametrize("name", ["..", ".", "a/b"])
def test_report_refuses_a_name_that_is_not_a_folder_name(in_tmp, store_uri, name):
    refused(invoke("report", name, "--tracking-uri", store_uri), "Not a study name:")
    assert sorted(p.name for p in in_tmp.iterdir()) == []


def test_cuda_without_a_gpu_is_refused_before_the_store(
    in_tmp, tiny_mnist_dir, unverified, monkeypatch
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    refused(invoke("train", "--device", "cuda", "--data-dir", str(tiny_mnist_dir)), "no CUDA GPU")
    spec = in_tmp / "gpu.toml"
    spec.write_text('name = "gpu"\nmodels = ["cnn2"]\nseeds = 1\n[settings]\ndevice = "cuda"\n')
    refused(invoke("study", str(spec), "--data-dir", str(tiny_mnist_dir)), "no CUDA GPU")
    assert not (in_tmp / "mlflow.db").exists()


@pytest.mark.parametrize("command", ["analyze", "report", "power"])
def test_read_only_commands_do_not_create_a_store(in_tmp, command):
    refused(invoke(command, "paper"), "There is no tracking store", "mnistlab study")
    assert not (in_tmp / "mlflow.db").exists()


def test_an_interrupt_before_any_run_does_not_claim_a_killed_run(in_tmp, monkeypatch):
    import mnistlab.study.run

    monkeypatch.setattr(
        mnistlab.study.run, "run_study", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    spec = REPO / "experiments" / "smoke.toml"
    result = invoke("study", str(spec))
    assert result.exit_code == 130 and "a run in progress is marked KILLED" in result.output


def test_after_the_command_a_late_ctrl_c_is_ignored(monkeypatch):
    before = signal.getsignal(signal.SIGINT)
    monkeypatch.setattr("sys.argv", ["mnistlab", "--help"])
    try:
        with pytest.raises(SystemExit):
            main()
        assert signal.getsignal(signal.SIGINT) == signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


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


@pytest.mark.parametrize(
    "args, phrases",
    [
        (["--optimizer", "LBFGS"], ["LBFGS is not supported", "needs a closure"]),
        (["--optimizer", "SparseAdam"], ["SparseAdam", "sparse gradients"]),
    ],
)
def test_train_refuses_an_optimizer_that_cannot_step(in_tmp, tiny_mnist_dir, args, phrases):
    refused(invoke("train", "--data-dir", str(tiny_mnist_dir), *TINY_ARGS, *args), *phrases)
    assert not (in_tmp / "mlflow.db").exists()


@pytest.mark.parametrize("command", ["analyze", "report", "power", "fetch-report"])
def test_a_spec_path_where_a_study_name_belongs_names_the_study(in_tmp, command):
    (in_tmp / "specs").mkdir()
    (in_tmp / "specs" / "digits.toml").write_text('name = "digits"\nmodels = ["cnn2"]\nseeds = 2\n')
    (in_tmp / "notes.toml").write_text("just = [notes\n")
    refused(
        invoke(command, "specs/digits.toml"),
        "specs/digits.toml is a spec file; its study is called 'digits': "
        f"mnistlab {command} digits.",
        "mnistlab study specs/digits.toml",
    )
    refused(invoke(command, "notes.toml"), "notes.toml is a file, not a study name")
    assert sorted(p.name for p in in_tmp.iterdir()) == ["notes.toml", "specs"]  # no store


def test_the_run_first_hint_names_a_spec_that_exists(in_tmp):
    from mnistlab.store.store import open_store

    uri = f"sqlite:///{in_tmp / 'mlflow.db'}"
    open_store(uri).experiment_id("other")
    missing = refused(invoke("analyze", "digits.toml", "--tracking-uri", uri), "No study called")
    assert ".toml.toml" not in missing and "experiments/" not in missing
    assert "on the spec whose name = 'digits'" in missing
    (in_tmp / "experiments").mkdir()
    (in_tmp / "experiments" / "digits.toml").write_text('name = "digits"\n')
    found = refused(invoke("analyze", "digits", "--tracking-uri", uri), "No study called")
    assert "Run `mnistlab study experiments/digits.toml` first" in found
