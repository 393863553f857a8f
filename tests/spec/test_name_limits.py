"""Names longer than MLflow or the file system allow are refused when the spec is read, with
the limit and the name (issue 27); publishing writes the verdicts and report together or neither."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from mnistlab.cli.app import app
from mnistlab.report import publish
from mnistlab.spec import limits
from mnistlab.spec.parse import load_spec
from mnistlab.spec.run import ConfigError
from mnistlab.store.connect import TrackingError, check_loggable
from tests.conftest import TINY_ARGS, flat

ARMS = '[arms.base]\nmodel = "cnn2"\n[arms."{arm}"]\nmodel = "cnn3"\n'


def write_spec(tmp_path: Path, name: str = "tiny", arm: str = "deeper") -> Path:
    spec = tmp_path / "spec.toml"
    spec.write_text(f'name = "{name}"\nseeds = 2\n' + ARMS.format(arm=arm), encoding="utf-8")
    return spec


def test_mnistlabs_limits_are_mlflows():
    from mlflow.utils.validation import MAX_ENTITY_KEY_LENGTH

    assert limits.MLFLOW_KEY_LIMIT == MAX_ENTITY_KEY_LENGTH


def test_an_arm_name_too_long_for_mlflows_keys_is_refused_with_the_limit(tmp_path):
    arm = "a" * 240
    with pytest.raises(ConfigError) as info:
        load_spec(write_spec(tmp_path, arm=arm))
    message = str(info.value)
    assert f"key 'arms.{arm}'" in message and "limit of 250" in message
    assert "at most 221 characters" in message  # ARM/epoch_train_seconds/estimate


def test_the_longest_arm_name_that_fits_is_accepted(tmp_path):
    spec = load_spec(write_spec(tmp_path, arm="a" * 221))
    assert spec.variants == ["a" * 221]


@pytest.mark.parametrize("name", ["s" * 300, "研" * 86], ids=["ascii", "cjk"])
def test_a_study_name_too_long_for_a_folder_is_refused_in_bytes(tmp_path, name):
    with pytest.raises(ConfigError) as info:
        load_spec(write_spec(tmp_path, name=name))
    message = str(info.value)
    assert f"is {len(name.encode())} bytes in UTF-8" in message and "255 bytes" in message


def test_study_with_a_too_long_name_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = write_spec(tmp_path, name="s" * 300)
    result = CliRunner().invoke(app, ["study", str(spec)], catch_exceptions=False)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "the study name is 300 bytes" in flat(result.output)
    assert not (tmp_path / "mlflow.db").exists()


def test_train_refuses_an_experiment_name_too_long_for_a_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        app, ["train", "--experiment", "e" * 256, *TINY_ARGS], catch_exceptions=False
    )
    assert result.exit_code == 2, result.output
    assert "--experiment: the experiment name is 256 bytes" in flat(result.output)
    assert not (tmp_path / "mlflow.db").exists()


def test_check_loggable_refuses_a_long_key_and_a_long_tag_value():
    check_loggable({"k" * 250: 1.0}, {"t": "v" * 8000})
    with pytest.raises(TrackingError, match="251 characters, more than the 250"):
        check_loggable({"k" * 251: 1.0}, {})
    with pytest.raises(TrackingError, match="8001 characters long"):
        check_loggable({}, {"t": "v" * 8001})


class RecordingStore:
    """Stands in for tracking.Store: records every write."""

    def __init__(self):
        self.writes = []

    def find_experiment(self, name):
        return type("Experiment", (), {"experiment_id": "1"})()

    def study_run(self, experiment_id, study):
        return "run"

    def log_files(self, *args):
        self.writes.append("files")

    def log_run_metrics(self, *args, **kwargs):
        self.writes.append("metrics")

    def set_run_tags(self, *args):
        self.writes.append("tags")


def test_publishing_a_record_mlflow_would_refuse_writes_nothing(tmp_path, monkeypatch):
    results = type("Results", (), {"study": "tiny"})()
    monkeypatch.setattr(publish, "verdict_record", lambda r: ({"x" * 260: "1"}, []))
    monkeypatch.setattr(publish, "description", lambda r: "a description")
    store = RecordingStore()
    with pytest.raises(TrackingError):
        publish.publish_report(store, results, tmp_path)
    assert store.writes == []


@pytest.mark.parametrize(
    ("where", "name", "named"),
    [
        ("name", "my study", "holds a space"),
        ("arms", "deep 😀", "holds a space, '😀' (U+1F600)"),
        ("arms", "a/b", "holds '/'"),
        ("name", "..", "is only dots"),
    ],
)
def test_a_name_with_a_character_it_cannot_hold_is_refused_naming_it_and_a_name_that_would_do(
    tmp_path, where, name, named
):
    spec = write_spec(tmp_path, name=name) if where == "name" else write_spec(tmp_path, arm=name)
    with pytest.raises(ConfigError) as info:
        load_spec(spec)
    message = str(info.value)
    assert named in message
    if "e.g." in message:  # the suggested name is one the spec accepts
        suggested = message.split("(e.g. '")[1].split("')")[0]
        assert limits.valid_name(suggested) and suggested != name


def test_names_in_any_script_are_accepted(tmp_path):
    spec = load_spec(write_spec(tmp_path, name="研究", arm="三层"))
    assert spec.name == "研究" and [arm.name for arm in spec.arms] == ["base", "三层"]
