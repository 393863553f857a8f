"""A user's own .npz dataset: read, checked, and refused in one paragraph when damaged."""

import hashlib

import numpy as np
import pytest
import torch

from mnistlab.training.dataset_registry import DataError
from mnistlab.training.models import UnknownModelError, check_net
from mnistlab.training.owndata import read_npz


def arrays(n_train=30, n_test=10, shape=(8, 8), classes=3, dtype=np.uint8):
    rng = np.random.default_rng(0)
    images = lambda n: (rng.random((n, *shape)) * 255).astype(dtype)  # noqa: E731
    return {
        "x_train": images(n_train),
        "y_train": np.arange(n_train) % classes,
        "x_test": images(n_test),
        "y_test": np.arange(n_test) % classes,
    }


def saved(tmp_path, **values):
    path = tmp_path / "own.npz"
    np.savez(path, **values)
    return path


def test_a_tiny_dataset_is_read_with_its_shape_classes_sizes_and_hash(tmp_path):
    path = saved(tmp_path, **arrays())
    data = read_npz(path)
    assert data.image_shape == (1, 8, 8) and data.classes == 3
    assert (data.train_size, data.test_size) == (30, 10)
    assert data.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert data.train_images.dtype == torch.float32 and data.train_images.max() <= 1
    assert data.train_labels.dtype == torch.int64


def test_float_three_channel_images_are_taken_as_they_are(tmp_path):
    values = arrays(shape=(3, 6, 5), dtype=np.float64)
    data = read_npz(saved(tmp_path, **values))
    assert data.image_shape == (3, 6, 5)
    assert torch.equal(data.test_images, torch.from_numpy(values["x_test"]).float())


def test_an_edited_file_has_another_hash(tmp_path):
    first = read_npz(saved(tmp_path, **arrays())).sha256
    values = arrays()
    values["y_train"][0] = 1
    assert read_npz(saved(tmp_path, **values)).sha256 != first


def damaged(kind):
    values = arrays(dtype=np.float32)
    if kind == "missing":
        del values["y_test"]
    elif kind == "lengths":
        values["y_train"] = values["y_train"][:-1]
    elif kind == "range":
        values["y_test"][0] = 7
    elif kind == "negative":
        values["y_train"][0] = -1
    elif kind == "nan":
        values["x_train"][3, 2, 2] = np.nan
    elif kind == "channels":
        values["x_train"] = np.zeros((30, 2, 8, 8), np.float32)
    elif kind == "shapes":
        values["x_test"] = np.zeros((10, 9, 9), np.float32)
    elif kind == "float labels":
        values["y_train"] = values["y_train"].astype(float)
    return values


@pytest.mark.parametrize(
    ("kind", "phrase"),
    [
        ("missing", "missing y_test"),
        ("lengths", "x_train holds 30 images but y_train 29 labels"),
        ("range", "labels run from 0 to 7"),
        ("negative", "y_train holds 1 negative label(s) (the lowest is -1)"),
        ("nan", "x_train holds 1 NaN"),
        ("channels", "x_train has shape (30, 2, 8, 8)"),
        ("shapes", "same image shape"),
        ("float labels", "y_train has dtype float64"),
    ],
)
def test_damaged_files_are_refused_in_one_paragraph(tmp_path, kind, phrase):
    path = saved(tmp_path, **damaged(kind))
    with pytest.raises(DataError) as error:
        read_npz(path)
    assert phrase in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("write", "said"),
    [
        (lambda p: p.write_text("x_train,y_train\n1,2\n"), "it is text"),
        (lambda p: p.write_bytes(b""), "it is empty"),
        (lambda p: p.write_bytes(bytes(range(200, 256))), "starts with bytes c8 c9"),
        (lambda p: np.save(p.with_suffix(""), np.zeros(3)), "it holds one array (.npy"),
        (lambda p: p.write_bytes(b"PK\x03\x04 cut short"), "not a readable .npz file"),
    ],
)
def test_a_file_that_is_not_an_npz_is_refused_saying_what_it_is(tmp_path, write, said):
    path = tmp_path / "own.npz"
    write(path)
    if not path.exists():  # np.save adds .npy to the name it is given
        (tmp_path / "own.npy").rename(path)
    with pytest.raises(DataError) as error:
        read_npz(path)
    message = str(error.value)
    assert said in message and "numpy.savez" in message
    assert "allow_pickle" not in message  # numpy's advice is not the fix for a wrong file


def test_a_missing_npz_is_refused():
    with pytest.raises(DataError, match="no such file"):
        read_npz("/nonexistent/absent.npz")


def test_built_in_nets_say_they_do_not_fit_another_input_shape():
    with pytest.raises(UnknownModelError, match=r"written for MNIST's images \(1, 28, 28\)"):
        check_net("cnn2", {}, image_shape=(3, 32, 32), classes=10)
    with pytest.raises(UnknownModelError, match="and 5 classes"):
        check_net("cnn3", {}, classes=5)
    assert check_net("cnn2", {}) > 0


def test_an_own_net_is_checked_on_the_datasets_shape(tmp_path):
    net = tmp_path / "net.py"
    net.write_text(
        "from torch import nn\n\n\nclass Flat(nn.Module):\n"
        "    def __init__(self):\n        super().__init__()\n"
        "        self.out = nn.Linear(3 * 8 * 8, 4)\n\n"
        "    def forward(self, x):\n        return self.out(x.flatten(1))\n"
    )
    model = f"{net}:Flat"
    assert check_net(model, {}, str(net), classes=4, image_shape=(3, 8, 8)) == 3 * 8 * 8 * 4 + 4
    with pytest.raises(UnknownModelError, match=r"images \(2, 1, 28, 28\)"):
        check_net(model, {}, str(net), classes=4)


COLOUR_NET = """
from torch import nn

class Colour(nn.Module):
    def __init__(self):
        super().__init__()
        self.out = nn.Linear(3 * 6 * 5, 3)

    def forward(self, x):
        return self.out(x.flatten(1))
"""


def test_a_three_channel_file_loads_by_path_and_trains_in_the_loop(tmp_path, monkeypatch):
    from mnistlab.spec.run import RunConfig
    from mnistlab.training.datasets import load_dataset
    from mnistlab.training.loop import train

    path = saved(tmp_path, **arrays(shape=(3, 6, 5), dtype=np.float32))
    (tmp_path / "net.py").write_text(COLOUR_NET)
    monkeypatch.chdir(tmp_path)  # a RunConfig made by hand resolves its files from here
    data = load_dataset(None, str(path))  # no data folder is needed or looked at
    assert data.train_images.shape == (30, 3, 6, 5) and data.sha256 == read_npz(path).sha256
    config = RunConfig(
        model="net.py:Colour",
        dataset="own.npz",
        train_size=30,
        eval_subset=10,
        batch_size=10,
        eval_every=1,
        device="cpu",
        threads=1,
    )
    assert config.dataset_sha256 == data.sha256
    result = train(config, data)
    assert len(result.test_accuracy) > 0 and np.isfinite(result.train_loss).all()


def test_a_run_refuses_data_of_another_hash_or_too_few_images(tmp_path, monkeypatch):
    import dataclasses

    from mnistlab.spec.run import RunConfig
    from mnistlab.training.owndata import check_run_data, load_own

    path = saved(tmp_path, **arrays())
    monkeypatch.chdir(tmp_path)
    config = RunConfig(dataset="own.npz", train_size=30, eval_subset=10)
    check_run_data(config, load_own(path))
    with pytest.raises(DataError, match="train_size is 31, but the file holds 30"):
        check_run_data(dataclasses.replace(config, train_size=31), load_own(path))
    np.savez(path, **arrays(n_train=31))
    with pytest.raises(DataError, match="file changed after the study was read"):
        check_run_data(config, load_own(path))
    with pytest.raises(DataError, match="has changed since the runs used it"):
        load_own(path, config.dataset_sha256)


def test_images_are_drawn_grey_or_in_colour_scaled_to_one():
    from mnistlab.training.owndata import display_images

    grey = np.zeros((2, 1, 4, 5), np.float32)
    assert display_images(grey).shape == (2, 4, 5)
    colour = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5) - 7
    shown = display_images(colour)
    assert shown.shape == (2, 4, 5, 3)
    assert shown[0, 0, 0, 0] == 0 and shown[0].max() == 1  # each image on its own range
    assert shown[1, 1, 2, 1] == pytest.approx((colour[1, 1, 1, 2] - colour[1].min()) / 59)
    mnist = np.zeros((3, 28, 28), np.uint8)
    assert display_images(mnist) is mnist


@pytest.mark.parametrize(
    ("edit", "phrases"),
    [
        (lambda y: y + 1, ["4 classes 0..3", "class(es) 0 have no", "numbered from 1 (1..3)"]),
        (
            lambda y: np.where(np.arange(len(y)) == 5, 10, y),
            ["11 classes 0..10", "class(es) 3, 4, 5, 6, 7, 8, 9 have", "10, has 1 image(s)"],
        ),
    ],
)
def test_labels_that_leave_a_class_without_images_are_refused_with_the_cause(
    tmp_path, edit, phrases
):
    values = arrays()
    values["y_train"] = edit(values["y_train"])
    values["y_test"] = edit(values["y_test"]) % 3  # test labels stay in range
    with pytest.raises(DataError) as error:
        read_npz(saved(tmp_path, **values))
    for phrase in [*phrases, "labels are 0, 1, ..., K-1"]:
        assert phrase in str(error.value)
    assert "\n" not in str(error.value)
