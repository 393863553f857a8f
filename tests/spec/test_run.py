from pathlib import Path

import pytest

from mnistlab.spec.parse import load_spec
from mnistlab.spec.run import ConfigError, RunConfig
from tests.conftest import invoke, refused


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("batch_size", 0, "batch_size"),
        ("lr", -1e-3, "lr"),
        ("lr", float("nan"), "lr"),
        ("eval_every", 0, "eval_every"),
        ("epochs", -2, "epochs"),
        ("model", "vgg", "Known models: cnn2, cnn3"),
        ("eval_subset", 20000, "eval_subset"),
        ("device", "tpu", "device"),
    ],
)
def test_nonsense_settings_are_refused_with_the_setting_named(field, value, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig(**{field: value})


def test_config_hash_is_stable_and_tracks_only_what_changes_results():
    base = RunConfig()
    assert base.config_hash() == RunConfig().config_hash()
    assert base.config_hash() != RunConfig(lr=2e-3).config_hash()
    assert base.config_hash() != RunConfig(seed=1).config_hash()
    assert base.config_hash() != RunConfig(model="cnn3").config_hash()
    assert base.config_hash() == RunConfig(threads=1, device="cpu").config_hash()


def test_paper_defaults_give_1200_steps_per_epoch():
    assert RunConfig().steps_per_epoch() == 1200
    assert RunConfig(train_size=130, batch_size=50).steps_per_epoch() == 3


def test_hash_does_not_depend_on_the_working_directory(tmp_path: Path, monkeypatch):
    before = RunConfig().config_hash()
    monkeypatch.chdir(tmp_path)
    assert RunConfig().config_hash() == before


def test_a_malformed_device_is_refused_like_any_setting(in_tmp):
    refused(invoke("train", "--device", "cuda:abc"), "device must be auto, cpu or cuda[:N]")


def test_a_boolean_learning_rate_is_refused(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "s"\nmodels = ["cnn2"]\nseeds = 1\n[settings]\nlr = true\n')
    with pytest.raises(ConfigError, match="settings.lr.*must be float"):
        load_spec(path)
    with pytest.raises(ConfigError, match="lr must be a positive finite number"):
        RunConfig(lr=True)
