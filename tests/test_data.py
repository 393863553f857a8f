from pathlib import Path

import numpy as np
import pytest

from mnistlab.data import (
    DATA_ENV,
    MNIST_FILES,
    DataError,
    load_mnist,
    resolve_data_dir,
    to_float_images,
)
from tests.conftest import tiny_arrays


def test_loads_hand_made_idx_files_into_tensors(tiny_mnist_dir: Path):
    mnist = load_mnist(tiny_mnist_dir, download=False, verify=False)
    train_x, train_y, _, test_y = tiny_arrays()
    assert mnist.train_images.shape == (200, 28, 28)
    assert np.array_equal(mnist.train_images.numpy(), train_x)
    assert np.array_equal(mnist.train_labels.numpy(), train_y)
    assert np.array_equal(mnist.test_labels.numpy(), test_y)


def test_float_images_are_scaled_like_to_tensor(tiny_mnist_dir: Path):
    images = to_float_images(load_mnist(tiny_mnist_dir, download=False, verify=False).test_images)
    assert images.shape == (100, 1, 28, 28)
    assert float(images.max()) == 1.0 and float(images.min()) >= 0.0


def test_wrong_size_file_is_named_with_the_fix(tiny_mnist_dir: Path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte is damaged") as info:
        load_mnist(tiny_mnist_dir, download=False)
    assert "expected 47040016" in str(info.value) and "mnistlab data" in str(info.value)


def test_right_size_but_corrupted_file_fails_the_md5(tmp_path: Path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name, (size, _) in MNIST_FILES.items():
        with open(raw / name, "wb") as handle:
            handle.truncate(size)  # zeros: the right size, the wrong content
    with pytest.raises(DataError, match="has MD5"):
        load_mnist(tmp_path, download=False)


def test_missing_data_offline_lists_the_four_files_and_where_they_go(tmp_path: Path):
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path / "nowhere", download=False)
    message = str(info.value)
    for name in MNIST_FILES:
        assert name in message
    assert str(tmp_path / "nowhere" / "MNIST" / "raw") in message and DATA_ENV in message


def test_failed_download_reports_the_files_instead_of_a_traceback(tmp_path: Path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets, "MNIST", offline)
    with pytest.raises(DataError, match="could not be downloaded"):
        load_mnist(tmp_path, download=True)


def test_data_dir_option_beats_environment_beats_default(monkeypatch, tmp_path: Path):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    assert resolve_data_dir(tmp_path / "opt") == tmp_path / "opt"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv(DATA_ENV)
    assert resolve_data_dir(None) == Path("data")
