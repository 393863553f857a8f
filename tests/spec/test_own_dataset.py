"""A spec's own .npz dataset: resolved at spec read, hashed into every run, refused when unfit."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from mnistlab.names import DATASET_FILE_TAG, DATASET_SHA256_TAG
from mnistlab.spec.parse import load_spec, spec_from_record
from mnistlab.spec.record import to_record
from mnistlab.spec.run import ConfigError, RunConfig
from mnistlab.store.store import open_store
from mnistlab.study.run import check_nets, run_study
from mnistlab.training.dataset_registry import DataError
from mnistlab.training.models import UnknownModelError
from tests.conftest import invoke, refused

NET = """
from torch import nn

class Flat(nn.Module):
    def __init__(self, pixels=64, classes=3):
        super().__init__()
        self.out = nn.Linear(pixels, classes)

    def forward(self, x):
        return self.out(x.flatten(1))
"""

SPEC = """
name = "own-data"
dataset = "data/own.npz"
seeds = 2
thresholds = [0.3]
[settings]
batch_size = 10
eval_every = 2
threads = 1
[arms.flat]
model = "nets.py:Flat"
[arms.fast]
model = "nets.py:Flat"
lr = 0.01
"""


def write_data(path: Path, n_train=40, n_test=12, shape=(8, 8), classes=3, seed=0) -> Path:
    """Learnable tiny images: the label sets the brightness of one row, plus noise."""
    rng = np.random.default_rng(seed)

    def split(n):
        labels = np.arange(n) % classes
        images = rng.integers(0, 60, (n, *shape)).astype(np.uint8)
        images[np.arange(n), ..., labels, :] = 250
        return images, labels

    (x_train, y_train), (x_test, y_test) = split(n_train), split(n_test)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def write_study(tmp_path: Path, spec: str = SPEC, **data) -> Path:
    write_data(tmp_path / "data" / "own.npz", **data)
    (tmp_path / "nets.py").write_text(NET)
    path = tmp_path / "own.toml"
    path.write_text(spec)
    return path


def test_the_file_is_resolved_beside_the_spec_and_its_hash_joins_every_run(tmp_path):
    spec = load_spec(write_study(tmp_path))
    file = tmp_path / "data" / "own.npz"
    assert spec.dataset == "data/own.npz" and spec.dataset_source == str(file.resolve())
    assert spec.dataset_sha256 == hashlib.sha256(file.read_bytes()).hexdigest()
    config = spec.arm_config(spec.arm("flat"), 1)
    assert config.dataset_sha256 == spec.dataset_sha256
    assert config.identity()["dataset_sha256"] == spec.dataset_sha256
    assert "dataset_source" not in config.identity()  # moving the folder keeps the runs
    # train_size defaults to every train image, eval_subset to every test image (< 2000).
    assert (config.train_size, config.eval_subset) == (40, 12)


def test_a_changed_file_makes_new_runs(tmp_path):
    path = write_study(tmp_path)
    before = load_spec(path).arm_by_hash()
    write_data(tmp_path / "data" / "own.npz", seed=1)  # same sizes, other pixels
    after = load_spec(path).arm_by_hash()
    assert set(before).isdisjoint(after) and sorted(before.values()) == sorted(after.values())
    write_data(tmp_path / "data" / "own.npz", seed=0)  # the first file again: the first runs
    assert load_spec(path).arm_by_hash() == before


def test_built_in_datasets_hash_as_before():
    # The dataset fields are hashed only when set: a built-in run's identity lacks them.
    assert "dataset_sha256" not in RunConfig().identity()
    assert RunConfig(dataset_sha256="ab" * 32).config_hash() != RunConfig().config_hash()


def test_a_stored_spec_reads_back_without_the_file(tmp_path):
    spec = load_spec(write_study(tmp_path))
    record = to_record(spec)
    (tmp_path / "data" / "own.npz").unlink()
    again = spec_from_record(record)
    assert again.arm_by_hash() == spec.arm_by_hash()
    assert again.dataset_source == spec.dataset_source


@pytest.mark.parametrize(
    "setting, phrases",
    [
        ("train_size = 41", ["arm 'flat'", "train_size is 41", "holds 40 train images"]),
        ("eval_subset = 13", ["eval_subset is 13", "holds 12 test images", "12 or less"]),
    ],
)
def test_sizes_beyond_the_file_are_refused_at_spec_read(tmp_path, setting, phrases):
    path = write_study(tmp_path, SPEC.replace("threads = 1", f"threads = 1\n{setting}"))
    with pytest.raises(ConfigError) as error:
        load_spec(path)
    for phrase in [str(path), *phrases]:
        assert phrase in str(error.value)


def test_a_missing_or_damaged_file_is_refused_before_the_store(tmp_path):
    path = write_study(tmp_path)
    file = tmp_path / "data" / "own.npz"
    np.savez(file, x_train=np.zeros((4, 8, 8), np.uint8), y_train=np.zeros(4, int))
    store = tmp_path / "m.db"
    result = invoke("study", str(path), "--tracking-uri", f"sqlite:///{store}")
    refused(result, "key 'dataset'", "missing x_test, y_test", "np.savez")
    file.unlink()
    result = invoke("study", str(path), "--tracking-uri", f"sqlite:///{store}")
    refused(result, "key 'dataset'", "no such file", "relative to the spec")
    assert not store.exists()


def test_the_resolved_keys_are_mnistlabs_own(tmp_path):
    path = write_study(tmp_path, 'dataset_sha256 = "abc"\n' + SPEC)
    with pytest.raises(ConfigError, match="key 'dataset_sha256': set by mnistlab"):
        load_spec(path)


def test_nets_are_probed_on_the_files_shape_and_classes(tmp_path):
    check_nets(load_spec(write_study(tmp_path)))  # Flat: 64 pixels, 3 classes
    spec = load_spec(write_study(tmp_path, SPEC.replace("nets.py:Flat", "cnn2")))
    with pytest.raises(UnknownModelError, match=r"images \(1, 8, 8\) and 3 classes"):
        check_nets(spec)
    spec = load_spec(write_study(tmp_path, shape=(3, 8, 8)))
    with pytest.raises(UnknownModelError, match=r"one batch of images \(2, 3, 8, 8\)"):
        check_nets(spec)  # Flat expects 64 pixels, gets 192


def test_a_study_trains_on_the_file_tags_it_and_refuses_it_once_changed(tmp_path):
    path = write_study(tmp_path)
    uri = f"sqlite:///{tmp_path / 'm.db'}"
    spec = load_spec(path)
    report = run_study(spec, uri)
    assert len(report.outcomes) == 4 and all(o.trained for o in report.outcomes)
    store = open_store(uri)
    runs = store.runs(report.experiment_id)  # the study run too
    assert len(runs) == 5
    assert {r.tags[DATASET_SHA256_TAG] for r in runs} == {spec.dataset_sha256}
    assert {r.tags[DATASET_FILE_TAG] for r in runs} == {spec.dataset_source}
    # The file changed after the spec was read: refused, not trained on the new file.
    write_data(tmp_path / "data" / "own.npz", seed=1)
    with pytest.raises(DataError, match="has changed since the spec used it"):
        run_study(spec, uri, force=True)


def test_a_dataset_in_settings_or_an_arm_is_sent_to_the_top_of_the_spec(tmp_path):
    text = SPEC.replace('dataset = "data/own.npz"\n', "")
    for where, key in (("threads = 1", "settings"), ("lr = 0.01", "arms.fast")):
        path = write_study(tmp_path, text.replace(where, f'{where}\ndataset = "data/own.npz"'))
        with pytest.raises(ConfigError) as error:
            load_spec(path)
        assert f"key '{key}.dataset': the dataset is the study's" in str(error.value)
        assert "at the top of the spec" in str(error.value)
        (tmp_path / "data" / "own.npz").unlink()
