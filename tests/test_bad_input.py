"""The twelve careless-user defects (issue 17), each reproduced: one paragraph, a non-zero
exit, no traceback, nothing created or half-written."""

import json
import signal
import time
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient
from torch import nn
from typer.testing import CliRunner

from mnistlab.cli.app import app, main
from mnistlab.results.evidence import analyse
from mnistlab.spec.parse import load_spec, parse_spec
from mnistlab.spec.run import ConfigError, PlannedRun, RunConfig
from mnistlab.store.store import open_store
from mnistlab.study.run import plan_study, run_study
from mnistlab.study.runner import tracked_train
from mnistlab.training import models
from mnistlab.training.divergence import diverged
from tests.conftest import TINY_ARGS

SMALL = {"train_size": 200, "batch_size": 40, "eval_every": 2, "eval_subset": 100}


def invoke(*args: str, **kwargs):
    return CliRunner().invoke(app, list(args), catch_exceptions=False, **kwargs)


def refused(result, *phrases: str) -> str:
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and text.startswith("Error:")  # one paragraph
    for phrase in phrases:
        assert phrase in text, text
    return text


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


# 1. Unusable stores: refused at once, never retried for minutes.
@pytest.mark.parametrize(
    ("make", "uri", "phrase"),
    [
        (lambda p: (p / "dir.db").mkdir(), "sqlite:///{p}/dir.db", "is a folder, not a SQLite file"),
        (lambda p: (p / "bad.db").write_text("not a db"), "sqlite:///{p}/bad.db", "is not a SQLite database"),
        (lambda p: None, "notascheme://x", "cannot be reached"),
        (lambda p: None, "./mlruns", "folder store"),
    ],
)  # fmt: skip
def test_unusable_stores_fail_fast_with_the_fix(
    in_tmp, tiny_mnist_dir, unverified, make, uri, phrase
):
    make(in_tmp)
    start = time.monotonic()
    result = invoke(
        "train",
        "--data-dir",
        str(tiny_mnist_dir),
        "--tracking-uri",
        uri.format(p=in_tmp),
        *TINY_ARGS,
    )
    assert time.monotonic() - start < 30
    refused(result, phrase, "--tracking-uri")
    assert not (in_tmp / "mlruns").exists()


# 2. A deleted experiment, and an empty experiment name.
def test_a_deleted_experiment_is_refused_with_how_to_restore_it(
    in_tmp, tiny_mnist_dir, unverified, store_uri
):
    store = open_store(store_uri)
    store.client.delete_experiment(store.experiment_id("train"))
    result = invoke(
        "train", "--data-dir", str(tiny_mnist_dir), "--tracking-uri", store_uri, *TINY_ARGS
    )
    refused(result, "was deleted", "mlflow experiments restore --experiment-id")
    empty = invoke(
        "train",
        "--experiment",
        "",
        "--data-dir",
        str(tiny_mnist_dir),
        "--tracking-uri",
        store_uri,
        *TINY_ARGS,
    )
    refused(empty, "needs a name")


# 3. A study name must be one safe path component.
@pytest.mark.parametrize("name", ["..", ".", "a/b"])
def test_report_refuses_a_name_that_is_not_a_folder_name(in_tmp, store_uri, name):
    refused(invoke("report", name, "--tracking-uri", store_uri), "is not a study name")
    assert sorted(p.name for p in in_tmp.iterdir()) == []


# 4. Large grids: no list of hashes in a tag; a spec too large to store is refused up front.
def test_a_thousand_seeds_plan_without_hitting_a_tag_limit(tmp_path, store_uri):
    spec = parse_spec(
        {"name": "big", "models": ["cnn2", "cnn3"], "seeds": 1000}, tmp_path / "b.toml"
    )
    plan = plan_study(open_store(store_uri), spec)
    assert len(plan.todo) == 2000
    stored = MlflowClient(store_uri).get_experiment_by_name("big").tags["spec"]
    assert json.loads(stored)["seeds"] == 1000 and len(stored) < 2000


def test_a_spec_too_large_to_store_is_refused_with_the_number(tmp_path):
    seeds = list(range(1, 6001))  # listed by hand, not 0..n-1
    with pytest.raises(ConfigError, match=r"characters once stored, more than the 20,000"):
        parse_spec({"name": "big", "models": ["cnn2"], "seeds": seeds}, tmp_path / "b.toml")


# 5. The report's destination is checked first, and the set is replaced whole.
def test_report_checks_its_destination_before_rendering(in_tmp, store_uri):
    (in_tmp / "afile").write_text("x")
    start = time.monotonic()
    refused(
        invoke("report", "paper", "--out", str(in_tmp / "afile"), "--tracking-uri", store_uri),
        "is a file",
    )
    assert time.monotonic() - start < 10


def test_a_report_replaces_the_whole_set_never_leaving_old_files(tmp_path, tiny_mnist, store_uri):
    from mnistlab.report.render import write_report

    spec = parse_spec(
        {"name": "tiny", "models": ["cnn2", "cnn3"], "seeds": 2, "settings": SMALL},
        tmp_path / "t.toml",
    )
    run_study(spec, store_uri, data=tiny_mnist)
    folder = tmp_path / "reports" / "tiny"
    (folder / "report.pdf").mkdir(parents=True)  # in the way of the new file
    (folder / "stale.csv").write_text("old")
    paths = write_report(analyse(open_store(store_uri), "tiny"), None, "", tmp_path / "reports")
    assert paths.pdf.is_file() and not (folder / "stale.csv").exists()
    assert [p.name for p in (tmp_path / "reports").iterdir()] == ["tiny"]  # no staging left


# 6. Device problems surface with the other settings, before anything is written.
def test_a_malformed_device_is_refused_like_any_setting(in_tmp):
    refused(invoke("train", "--device", "cuda:abc"), "device must be auto, cpu or cuda[:N]")


def test_cuda_without_a_gpu_is_refused_before_the_store(
    in_tmp, tiny_mnist_dir, unverified, monkeypatch
):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    refused(invoke("train", "--device", "cuda", "--data-dir", str(tiny_mnist_dir)), "no CUDA GPU")
    spec = in_tmp / "gpu.toml"
    spec.write_text('name = "gpu"\nmodels = ["cnn2"]\nseeds = 1\n[settings]\ndevice = "cuda"\n')
    refused(invoke("study", str(spec), "--data-dir", str(tiny_mnist_dir)), "no CUDA GPU")
    assert not (in_tmp / "mlflow.db").exists()


# 7. A data folder that does not exist is named, never created; the raw folder is not the root.
def test_a_missing_data_folder_is_named_and_not_created(in_tmp, monkeypatch):
    missing = in_tmp / "nonexistent" / "folder"
    refused(invoke("data", "--data-dir", str(missing)), "does not exist", "--data-dir")
    monkeypatch.setenv("MNISTLAB_DATA", str(in_tmp / "garbage"))
    refused(invoke("data"), "does not exist", "$MNISTLAB_DATA")
    assert not missing.parent.exists() and not (in_tmp / "garbage").exists()


def test_pointing_at_the_raw_folder_itself_says_where_to_point(in_tmp, tiny_mnist_dir):
    raw = tiny_mnist_dir / "MNIST" / "raw"
    refused(
        invoke("data", "--data-dir", str(raw)),
        "holds the data files themselves",
        str(tiny_mnist_dir),
    )
    assert not (raw / "MNIST").exists()


def test_an_offline_download_says_the_machine_may_be_offline(in_tmp, monkeypatch):
    import torchvision.datasets

    monkeypatch.setattr(
        torchvision.datasets,
        "MNIST",
        lambda *a, **k: (_ for _ in ()).throw(RuntimeError("no route")),
    )
    (in_tmp / "data").mkdir()
    refused(
        invoke("data", "--data-dir", str(in_tmp / "data")), "may be offline: RuntimeError: no route"
    )


# 8. Booleans are not numbers.
def test_a_boolean_learning_rate_is_refused(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\nmodels = ["cnn2"]\nseeds = 1\n[settings]\nlr = true\n')
    with pytest.raises(ConfigError, match="settings.lr.*must be float"):
        load_spec(path)
    with pytest.raises(ConfigError, match="lr must be a positive finite number"):
        RunConfig(lr=True)


# 9. A run whose loss ends above its start is flagged, not averaged in silently.
class Worsening(nn.Module):
    """Puts ever more weight on class 0 whatever it is shown: finite, and ever worse."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(28 * 28, 10)
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        push = torch.zeros(10, device=x.device)
        push[0] = float(self.calls)
        return 0 * self.out(x.flatten(1)) + push


def test_the_divergence_rule_on_hand_made_losses():
    assert diverged([2.3, 1.0, 0.5, 0.4]) is False
    assert diverged([2.3, 2.0, 3.0, 9.0]) is True  # the last 10% (one step) is above the first


def test_a_diverging_run_is_tagged_warned_and_named_in_the_report(
    tmp_path, tiny_mnist, store_uri, monkeypatch
):
    monkeypatch.setitem(models.MODELS, "cnn3", Worsening)
    store = open_store(store_uri)
    run_id, _ = tracked_train(
        PlannedRun("cnn3", RunConfig(model="cnn3", **SMALL)),
        tiny_mnist,
        store,
        store.experiment_id("u"),
        "u",
    )
    run = store.client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["diverged"] == "true"
    spec = parse_spec(
        {"name": "tiny", "models": ["cnn2", "cnn3"], "seeds": 1, "settings": SMALL},
        tmp_path / "t.toml",
    )
    run_study(spec, store_uri, data=tiny_mnist)
    notes = " ".join(analyse(store, "tiny").notes)
    assert (
        "Diverged runs (mean train loss over the last 10% of steps above" in notes
        and "cnn3-s0" in notes
    )


# 10. Commands that only read never create a store.
@pytest.mark.parametrize("command", ["analyze", "report", "power"])
def test_read_only_commands_do_not_create_a_store(in_tmp, command):
    refused(invoke(command, "paper"), "There is no tracking store", "mnistlab study")
    assert not (in_tmp / "mlflow.db").exists()


# 11. Hints that name the real cause.
def test_an_arm_whose_runs_all_failed_is_named_with_how_to_retry(tmp_path, tiny_mnist, store_uri):
    spec = parse_spec(
        {"name": "tiny", "models": ["cnn2", "cnn3"], "seeds": 2, "settings": SMALL},
        tmp_path / "t.toml",
    )
    run_study(spec, store_uri, data=tiny_mnist)
    client = MlflowClient(store_uri)
    for run in client.search_runs([client.get_experiment_by_name("tiny").experiment_id]):
        if run.data.tags.get("model") == "cnn3":
            client.set_terminated(run.info.run_id, "FAILED")
    notes = " ".join(analyse(open_store(store_uri), "tiny").notes)
    assert "Arm cnn3 has no usable runs: cnn3-s" in notes and "FAILED" in notes
    assert "mnistlab study" in notes and "Add a second" not in notes


def test_too_short_runs_are_blamed_on_their_length_not_on_the_seeds(
    tmp_path, tiny_mnist, store_uri
):
    short = {**SMALL, "batch_size": 50, "eval_every": 1}  # 4 steps: no loss noise to measure
    spec = parse_spec(
        {"name": "tiny", "models": ["cnn2", "cnn3"], "seeds": 2, "settings": short},
        tmp_path / "t.toml",
    )
    run_study(spec, store_uri, data=tiny_mnist)
    notes = " ".join(analyse(open_store(store_uri), "tiny").notes)
    assert "log_loss_spread could not be measured" in notes and "Lengthen the runs" in notes


# 12. The minor ones.
def test_a_spec_path_that_is_a_folder_says_so(tmp_path):
    (tmp_path / "a.toml").write_text("x")
    refused(invoke("study", str(tmp_path)), "is a folder, not a spec file", "a.toml")


def test_a_spec_of_random_bytes_is_refused(tmp_path):
    path = tmp_path / "noise.toml"
    path.write_bytes(bytes(range(256)) * 4)
    refused(invoke("study", str(path)), "not a text file")


def test_an_interrupt_before_any_run_does_not_claim_a_killed_run(in_tmp, monkeypatch):
    import mnistlab.study.run

    monkeypatch.setattr(
        mnistlab.study.run, "run_study", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    spec = Path(__file__).resolve().parents[1] / "experiments" / "smoke.toml"
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
