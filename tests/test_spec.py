from pathlib import Path

import pytest

from mnistlab.config import ConfigError, load_spec

REPO = Path(__file__).resolve().parents[1]

GOOD = """
name = "tiny"
models = ["cnn2", "cnn3"]
seeds = 3
[settings]
batch_size = 20
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(text)
    return path


def test_a_spec_expands_into_a_grid_interleaved_by_seed(tmp_path):
    spec = load_spec(write(tmp_path, GOOD))
    grid = [(c.model, c.seed, c.batch_size) for c in spec.run_configs()]
    assert grid == [
        ("cnn2", 0, 20), ("cnn3", 0, 20), ("cnn2", 1, 20),
        ("cnn3", 1, 20), ("cnn2", 2, 20), ("cnn3", 2, 20),
    ]  # fmt: skip


def test_per_model_overrides_apply_to_that_model_only(tmp_path):
    spec = load_spec(write(tmp_path, GOOD + "[overrides.cnn3]\nlr = 0.0005\n"))
    assert {c.model: c.lr for c in spec.run_configs()} == {"cnn2": 0.001, "cnn3": 0.0005}


def test_shipped_specs_are_valid():
    paper = load_spec(REPO / "experiments" / "paper.toml")
    assert paper.arm_names == ["cnn2", "cnn3"] and len(paper.seeds) == 10
    assert {(c.batch_size, c.lr, c.eval_every, c.eval_subset) for c in paper.run_configs()} == {
        (50, 0.001, 50, 2000)
    }
    smoke = load_spec(REPO / "experiments" / "smoke.toml")
    assert len(smoke.seeds) == 2 and smoke.run_configs()[0].train_size < 60000


@pytest.mark.parametrize(
    ("edit", "key", "reason"),
    [
        ("colour = 'red'\n" + GOOD, "colour", "unknown key"),
        (GOOD.replace('"cnn3"', '"vgg"'), "models", "unknown model 'vgg'"),
        (GOOD.replace("seeds = 3", "seeds = []"), "seeds", "give a count"),
        (GOOD.replace("seeds = 3", "seeds = 0"), "seeds", "1 or more"),
        (GOOD.replace("seeds = 3", "seeds = [1, 2, 1]"), "seeds", "duplicate seed"),
        (
            GOOD.replace("batch_size = 20", 'batch_size = "20"'),
            "settings.batch_size",
            "must be int",
        ),
        (
            GOOD.replace("batch_size = 20", "batch_sise = 20"),
            "settings.batch_sise",
            "unknown setting",
        ),
        (GOOD.replace("seeds = 3\n", ""), "seeds", "is required"),
        (GOOD + "[overrides.cnn9]\nlr = 0.1\n", "overrides.cnn9", "not one of the study's models"),
    ],
)
def test_bad_specs_name_the_file_the_key_and_the_reason(tmp_path, edit, key, reason):
    path = write(tmp_path, edit)
    with pytest.raises(ConfigError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message and f"'{key}'" in message and reason in message


def test_impossible_values_are_refused_before_anything_runs(tmp_path):
    with pytest.raises(ConfigError, match=r"spec.toml: batch_size must be a whole number"):
        load_spec(write(tmp_path, GOOD.replace("batch_size = 20", "batch_size = 0")))


def test_a_missing_spec_lists_the_specs_that_exist(tmp_path):
    (tmp_path / "paper.toml").write_text(GOOD)
    with pytest.raises(ConfigError, match=r"No study spec at .*nope.toml.*paper.toml"):
        load_spec(tmp_path / "nope.toml")


def test_invalid_toml_is_reported_with_the_file(tmp_path):
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_spec(write(tmp_path, "name = \n"))
