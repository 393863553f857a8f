"""Own .npz data end to end through the CLI: study, analyze and report on real images of other
shapes (scikit-learn's 8x8 digits; MNIST padded to 32x32 and coloured), on local worker
processes and on Ray, each arm's net a user's file."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, ray_refused_here

pytestmark = pytest.mark.slow

# A user's nets, sized by their arguments: a small conv net for any channels and image size.
NETS = """
from torch import nn

class Conv(nn.Module):
    def __init__(self, channels=1, size=8, width=8, classes=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)
        )
        self.out = nn.Linear(width * (size // 2) ** 2, classes)

    def forward(self, x):
        return self.out(self.features(x).flatten(1))
"""

SPEC = """
name = "{name}"
dataset = "data/{name}.npz"
seeds = 2
thresholds = [0.3, 0.6]
primary_threshold = 0.6
[settings]
train_size = {train}
batch_size = 25
eval_every = 4
epochs = 2
[arms.adam]
model = "nets/conv.py:Conv"
model_args = {{ channels = {channels}, size = {size} }}
[arms.sgd]
model = "nets/conv.py:Conv"
model_args = {{ channels = {channels}, size = {size}, width = 16 }}
optimizer = "SGD"
optimizer_args = {{ momentum = 0.9 }}
lr = 0.05
"""


def mnistlab(*args: str, cwd: Path, timeout: float = 600) -> str:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-m", "mnistlab", *args],
        cwd=cwd,
        env=env | {"PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return " ".join(done.stdout.split())


def write_study(folder: Path, name: str, arrays: dict, channels: int, size: int) -> Path:
    (folder / "data").mkdir()
    np.savez_compressed(folder / "data" / f"{name}.npz", **arrays)
    (folder / "nets").mkdir()
    (folder / "nets" / "conv.py").write_text(NETS)
    spec = folder / f"{name}.toml"
    train = len(arrays["y_train"])
    spec.write_text(SPEC.format(name=name, train=train, channels=channels, size=size))
    return spec


def digits(folder: Path) -> Path:
    """scikit-learn's 1,797 8x8 digits (values 0-16, scaled to uint8): 400 to train. They ship
    inside scikit-learn, which MLflow installs, so nothing is downloaded (and nothing skipped)."""
    from sklearn.datasets import load_digits

    loaded = load_digits()
    images = (loaded.images * 16).clip(0, 255).astype(np.uint8)
    labels = loaded.target.astype(np.int64)
    arrays = {
        "x_train": images[:400],
        "y_train": labels[:400],
        "x_test": images[1400:],  # 397: fewer than eval_subset's default, so all of them
        "y_test": labels[1400:],
    }
    return write_study(folder, "digits", arrays, channels=1, size=8)


def test_digits_8x8_with_two_workers_then_analyze_and_report(tmp_path):
    spec = digits(tmp_path)
    trained = mnistlab("study", str(spec), "--workers", "2", cwd=tmp_path)
    assert "4 trained" in trained
    analysed = mnistlab("analyze", "digits", cwd=tmp_path)
    assert "digits on digits.npz" in analysed
    assert (
        "sgd against adam: width 16; 2,730 parameters instead of 1,370; SGD (momentum 0.9) "
        "instead of Adam; lr 0.05 instead of 0.001"
    ) in analysed
    mnistlab("report", "digits", cwd=tmp_path)
    page = " ".join((tmp_path / "reports" / "digits" / "index.html").read_text().split())
    assert "digits.npz (your .npz file, SHA-256" in page
    assert "Ten random test images" in page and "The demo is missing" not in page
    assert "test images per evaluation 397" in page  # the Setup's recipe, sized by the file
    # The file changed: the report still renders from the store and says why the demo is gone.
    np.savez(tmp_path / "data" / "digits.npz", x_train=np.zeros((2, 8, 8), np.uint8))
    mnistlab("report", "digits", cwd=tmp_path)
    page = " ".join((tmp_path / "reports" / "digits" / "index.html").read_text().split())
    assert "has changed since the runs used it" in page


def test_coloured_mnist_32x32_with_a_users_net(tmp_path, real_data_dir):
    """MNIST padded to 32x32 and tinted per image into 3 channels: 300 to train, 200 to test."""
    from mnistlab.training.datasets import load_mnist

    mnist = load_mnist(real_data_dir, download=False)
    rng = np.random.default_rng(0)

    def coloured(images):
        padded = np.pad(images.numpy(), ((0, 0), (2, 2), (2, 2))).astype(np.float32) / 255
        tint = rng.uniform(0.3, 1.0, (len(images), 3, 1, 1)).astype(np.float32)
        return padded[:, None] * tint  # (N, 3, 32, 32) floats

    arrays = {
        "x_train": coloured(mnist.train_images[:300]),
        "y_train": mnist.train_labels[:300].numpy(),
        "x_test": coloured(mnist.test_images[:200]),
        "y_test": mnist.test_labels[:200].numpy(),
    }
    spec = write_study(tmp_path, "colour", arrays, channels=3, size=32)
    assert "4 trained" in mnistlab("study", str(spec), cwd=tmp_path)
    analysed = mnistlab("analyze", "colour", cwd=tmp_path)
    assert "colour on colour.npz" in analysed and "sgd against adam" in analysed


def test_ray_trains_an_arm_whose_net_is_a_users_file_on_own_data(tmp_path):
    spec = digits(tmp_path)
    text = spec.read_text().replace("epochs = 2", "epochs = 1").replace("seeds = 2", "seeds = 1")
    spec.write_text(text)
    if ray_refused_here("study", str(spec), "--executor", "ray", cwd=tmp_path):
        return  # this Python's path holds a space: Ray cannot run here, and says so
    output = mnistlab("study", str(spec), "--executor", "ray", cwd=tmp_path, timeout=900)
    assert "2 trained" in output
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("digits")
    runs = [
        r
        for r in client.search_runs([experiment.experiment_id])
        if r.data.tags.get("mnistlab.role") != "study"
    ]
    assert {r.data.tags["executor"] for r in runs} == {"ray"} and len(runs) == 2
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["model_file"] for r in runs} == {str(tmp_path / "nets" / "conv.py")}
