import dataclasses
import gzip
import os
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from mnistlab.training import data_files as data
from mnistlab.training.data_files import DATA_ENV, md5_of, read_idx, resolve_data_dir, verify_files
from mnistlab.training.dataset_registry import DATASETS, MNIST_FILES, DataError
from mnistlab.training.datasets import load_dataset, load_mnist, to_float_images
from tests.conftest import invoke, refused, tiny_arrays, write_idx


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


def test_verified_files_are_not_hashed_again_until_they_change(tiny_mnist_dir, monkeypatch):
    raw = tiny_mnist_dir / "MNIST" / "raw"
    tiny = {name: (None, md5_of(raw / name)) for name in MNIST_FILES}
    monkeypatch.setitem(DATASETS, "mnist", dataclasses.replace(DATASETS["mnist"], checksums=tiny))
    hashed = []
    monkeypatch.setattr(data, "md5_of", lambda path: hashed.append(path.name) or md5_of(path))
    verify_files(tiny_mnist_dir)
    assert len(hashed) == 4  # just written: too fresh to stamp (racy), so hashed again
    verify_files(tiny_mnist_dir)
    assert len(hashed) == 8
    old = time.time() - 60
    for name in MNIST_FILES:
        os.utime(raw / name, (old, old))
    verify_files(tiny_mnist_dir)
    verify_files(tiny_mnist_dir)
    assert len(hashed) == 12  # stamped once old enough, then trusted
    # The same size, other bytes: the stamp no longer fits, the MD5 is computed and fails.
    labels = raw / "t10k-labels-idx1-ubyte"
    content = labels.read_bytes()
    labels.write_bytes(content[:-1] + bytes([(content[-1] + 1) % 256]))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte is damaged: it has MD5"):
        verify_files(tiny_mnist_dir)
    assert hashed[-1] == "t10k-labels-idx1-ubyte"


def test_missing_data_offline_lists_the_four_files_and_where_they_go(tmp_path: Path):
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path, download=False)
    message = str(info.value)
    for name in MNIST_FILES:
        assert name in message
    assert str(tmp_path / "MNIST" / "raw") in message and DATA_ENV in message


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


def write_dataset(root: Path, folder: str, compress: bool = False) -> None:
    """Tiny IDX files in torchvision's layout root/<folder>/raw/, optionally only as .gz."""
    train_x, train_y, test_x, test_y = tiny_arrays()
    raw = root / folder / "raw"
    for name, array in (
        ("train-images-idx3-ubyte", train_x),
        ("train-labels-idx1-ubyte", train_y),
        ("t10k-images-idx3-ubyte", test_x),
        ("t10k-labels-idx1-ubyte", test_y),
    ):
        write_idx(raw / name, array)
        if compress:
            (raw / f"{name}.gz").write_bytes(gzip.compress((raw / name).read_bytes()))
            (raw / name).unlink()


@pytest.mark.parametrize(
    ("dataset", "folder"), [("fashion-mnist", "FashionMNIST"), ("kmnist", "KMNIST")]
)
def test_each_dataset_is_read_from_its_own_folder(tmp_path, dataset, folder):
    write_dataset(tmp_path, folder)
    if dataset == "kmnist":  # checked against its .gz files, which must be there too
        for path in (tmp_path / folder / "raw").iterdir():
            path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes()))
    loaded = load_dataset(tmp_path, dataset, download=False, verify=False)
    assert loaded.dataset == dataset and loaded.info.folder == folder
    assert np.array_equal(loaded.train_images.numpy(), tiny_arrays()[0])


def test_fashion_mnist_is_checked_against_its_own_checksums(tmp_path):
    write_dataset(tmp_path, "FashionMNIST")
    with pytest.raises(DataError, match=r"Fashion-MNIST file .*FashionMNIST/raw/train-images"):
        load_dataset(tmp_path, "fashion-mnist", download=False)
    assert (
        DATASETS["fashion-mnist"].checksums["train-images-idx3-ubyte"][1]
        != (MNIST_FILES["train-images-idx3-ubyte"][1])
    )


def test_kmnist_gz_files_are_verified_then_unpacked(tmp_path, monkeypatch):
    write_dataset(tmp_path, "KMNIST", compress=True)
    raw = tmp_path / "KMNIST" / "raw"
    with pytest.raises(DataError, match=r"KMNIST file .*\.gz is damaged: it has MD5"):
        load_dataset(tmp_path, "kmnist", download=False)
    assert not (raw / "train-images-idx3-ubyte").exists()  # nothing unpacked from a bad .gz
    # With checksums that match these tiny files, the same code unpacks and loads them.
    info = DATASETS["kmnist"]
    tiny = {name: (None, md5_of(raw / name)) for name in info.checksums}
    monkeypatch.setitem(DATASETS, "kmnist", dataclasses.replace(info, checksums=tiny))
    sizes = {n.removesuffix(".gz"): len(gzip.decompress((raw / n).read_bytes())) for n in tiny}
    monkeypatch.setattr(data, "IDX_SIZES", sizes)
    loaded = load_dataset(tmp_path, "kmnist", download=False)
    assert np.array_equal(loaded.test_labels.numpy(), tiny_arrays()[3])
    assert (raw / "t10k-labels-idx1-ubyte").is_file() and not list(raw.glob("*.partial"))


@pytest.mark.parametrize("dataset", ["fashion-mnist", "kmnist"])
def test_a_missing_dataset_names_itself_the_folder_the_files_and_the_fix(tmp_path, dataset):
    with pytest.raises(DataError) as info:
        load_dataset(tmp_path, dataset, download=False)
    message = str(info.value)
    title, folder = DATASETS[dataset].title, DATASETS[dataset].folder
    assert message.startswith(f"{title} is not in {tmp_path / folder / 'raw'}")
    assert "train-images-idx3-ubyte" in message and "--data-dir" in message and DATA_ENV in message


def test_a_file_that_is_not_idx_is_refused(tmp_path):
    path = tmp_path / "bad"
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(path)


# Old and partial layouts (issue 27): read what is usable, say what is not; never a traceback.
def _no_download(monkeypatch, wrote_nothing: bool = False):
    import torchvision.datasets

    def returns_early(*args, **kwargs):  # what torchvision does when it finds other files
        if not wrote_nothing:
            raise AssertionError("nothing should be downloaded")

    monkeypatch.setattr(torchvision.datasets, "MNIST", returns_early)


def _legacy_folder(root: Path) -> Path:

    train_x, train_y, test_x, test_y = tiny_arrays()
    processed = root / "MNIST" / "processed"
    processed.mkdir(parents=True)
    for name, images, labels in (("training.pt", train_x, train_y), ("test.pt", test_x, test_y)):
        torch.save((torch.from_numpy(images), torch.from_numpy(labels)), processed / name)
    return processed


def test_legacy_processed_files_are_read_into_raw_idx_files(tmp_path, monkeypatch):
    _no_download(monkeypatch)
    _legacy_folder(tmp_path)
    loaded = load_dataset(tmp_path, verify=False)
    train_x, train_y, test_x, test_y = tiny_arrays()
    assert np.array_equal(loaded.train_images.numpy(), train_x)
    assert np.array_equal(loaded.test_labels.numpy(), test_y)
    raw = tmp_path / "MNIST" / "raw"
    assert np.array_equal(read_idx(raw / "train-labels-idx1-ubyte"), train_y.astype(np.uint8))


def test_an_unreadable_legacy_file_is_named_with_the_fix(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mnistlab.cli.app import app

    _no_download(monkeypatch)
    processed = _legacy_folder(tmp_path)
    (processed / "test.pt").write_bytes(b"not a pickle")
    result = CliRunner().invoke(app, ["data", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert f"{processed / 'test.pt'} is not torchvision's older processed form of MNIST" in text
    assert f"Move {processed} aside" in text


def test_canonical_gz_downloads_alone_are_unpacked_then_read(tmp_path, monkeypatch):
    _no_download(monkeypatch)
    raw = tmp_path / "MNIST" / "raw"
    for name, array in zip(data.IDX_SIZES, tiny_arrays(), strict=True):
        write_idx(raw / name, array)
        (raw / f"{name}.gz").write_bytes(gzip.compress((raw / name).read_bytes()))
        (raw / name).unlink()
    loaded = load_dataset(tmp_path, verify=False)
    assert np.array_equal(loaded.train_labels.numpy(), tiny_arrays()[1])


def test_a_broken_gz_is_named_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    _no_download(monkeypatch)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"x" * 1000)[:20])
    with pytest.raises(DataError, match="is not a complete gzip file") as info:
        load_dataset(tmp_path, verify=False)
    assert str(raw / "train-images-idx3-ubyte.gz") in str(info.value)
    assert sorted(p.name for p in raw.iterdir()) == ["train-images-idx3-ubyte.gz"]


def test_a_download_that_writes_nothing_says_what_is_missing_and_what_was_found(
    tmp_path, monkeypatch
):
    _no_download(monkeypatch, wrote_nothing=True)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images.idx3-ubyte").write_bytes(b"renamed by hand")
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path)
    message = str(info.value)
    assert "the download wrote none of these files" in message
    assert "Found there but not used: train-images.idx3-ubyte" in message


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
