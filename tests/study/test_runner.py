"""One tracked run: the tags it is given by how it went."""

import torch
from torch import nn

from mnistlab.results.evidence import analyse
from mnistlab.spec.parse import parse_spec
from mnistlab.spec.run import PlannedRun, RunConfig
from mnistlab.store.store import open_store
from mnistlab.study.run import run_study
from mnistlab.study.runner import tracked_train
from mnistlab.training import models
from tests.conftest import TINY_SETTINGS


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


def test_a_diverging_run_is_tagged_warned_and_named_in_the_report(
    tmp_path, tiny_mnist, store_uri, monkeypatch
):
    monkeypatch.setitem(models.MODELS, "cnn3", Worsening)
    store = open_store(store_uri)
    run_id, _ = tracked_train(
        PlannedRun("cnn3", RunConfig(model="cnn3", **TINY_SETTINGS)),
        tiny_mnist,
        store,
        store.experiment_id("u"),
        "u",
    )
    run = store.client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.tags["diverged"] == "true"
    spec = parse_spec(
        {"name": "tiny", "models": ["cnn2", "cnn3"], "seeds": 1, "settings": TINY_SETTINGS},
        tmp_path / "t.toml",
    )
    run_study(spec, store_uri, data=tiny_mnist)
    notes = " ".join(analyse(store, "tiny").notes)
    assert (
        "Diverged runs (mean train loss over the last 10% of steps above" in notes
        and "cnn3-s0" in notes
    )
