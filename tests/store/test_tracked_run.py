"""A tracked run while its store goes away: a short outage costs nothing, a long one spools the\nrun for `mnistlab sync`."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from mnistlab.cli.app import app
from mnistlab.spec.run import PlannedRun, RunConfig
from mnistlab.store import writer
from mnistlab.store.store import open_store
from mnistlab.store.tracked_run import StoreUnreachable
from mnistlab.study.runner import tracked_train
from tests.conftest import flat


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


@pytest.mark.parametrize(
    "damage",
    ['{"run_id": "x", "tracking', '{"run_id": "x"}', "[1, 2]"],
    ids=["cut", "keys", "list"],
)
def test_sync_writes_the_readable_spooled_runs_and_names_the_damaged_ones(
    tiny_mnist, store_uri, monkeypatch, tmp_path, damage
):
    monkeypatch.setenv("MNISTLAB_SPOOL", str(tmp_path / "spool"))
    monkeypatch.setattr(writer, "RETRY_SECONDS", 0.5)
    store = open_store(store_uri)
    with monkeypatch.context() as down:
        Outage(down, store.client, failures=None)
        with pytest.raises(StoreUnreachable):
            tracked_train(PlannedRun("a", SMALL), tiny_mnist, store, store.experiment_id("u"), "u")
    (good,) = (tmp_path / "spool").iterdir()
    bad = tmp_path / "spool" / "0-damaged"  # sorted first: sync must go on past it
    bad.mkdir()
    (bad / "record.json").write_text(damage)
    synced = CliRunner().invoke(app, ["sync"])
    output = flat(synced.output)
    assert synced.exit_code == 2 and "Traceback" not in output
    assert "Synced 1 run(s); 1 spooled run(s) were left" in output and str(bad) in output
    assert MlflowClient(store_uri).get_run(good.name).info.status == "FINISHED"
    assert sorted(p.name for p in (tmp_path / "spool").iterdir()) == ["0-damaged"]
