"""Shared fixtures and helpers: tiny MNIST-shaped data made inside the tests, tiny settings."""

from __future__ import annotations

import os
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from mlflow import MlflowClient
from torch import nn
from typer.testing import CliRunner

from mnistlab.cli.app import app
from mnistlab.names import ROLE_TAG, STUDY_ROLE
from mnistlab.spec.parse import load_spec
from mnistlab.spec.study import StudySpec
from mnistlab.training.datasets import ImageData

REPO = Path(__file__).resolve().parents[1]
REAL_DATA = Path(os.environ.get("MNISTLAB_DATA", REPO.parent / "shared" / "data"))
# Settings small enough for a run in well under a second.
TINY = dict(train_size=200, batch_size=20, eval_every=3, eval_subset=100, device="cpu", threads=1)
# The same, as train's command-line options.
TINY_ARGS = (
    "--train-size",
    "200",
    "--eval-subset",
    "100",
    "--eval-every",
    "2",
    "--batch-size",
    "40",
)
# The same, as a spec's [settings] table.
TINY_SETTINGS = {"train_size": 200, "batch_size": 40, "eval_every": 2, "eval_subset": 100}
# The mnistlab command of this environment, and the shipped smoke study.
MNISTLAB = str(Path(sys.executable).with_name("mnistlab"))
SMOKE = str(REPO / "experiments" / "smoke.toml")
# A two-arm study of tiny runs (cnn2 "base" against cnn3 "deeper"), two seeds.
TWO_ARM_SPEC = """
name = "tiny"
seeds = 2
thresholds = [0.2]
[settings]
train_size = 200
batch_size = 20
eval_every = 3
eval_subset = 100
threads = 1
[arms.base]
model = "cnn2"
[arms.deeper]
model = "cnn3"
"""
# The report's sections, in order.
SECTIONS = [
    "1. Conclusion",
    "2. The question",
    "3. Setup",
    "4. Verdicts",
    "5. How many seeds?",
    "6. Results per arm",
    "7. Figures",
    "8. Every run",
    "9. Limits of this study",
    "10. Reproducibility checklist",
    "11. Reproducing it",
]


class Exploding(nn.Module):
    """A net whose loss is infinite from the first step."""

    def __init__(self):
        super().__init__()
        self.out = nn.Linear(28 * 28, 10)

    def forward(self, x):
        return self.out(x.flatten(1)) * float("inf")


def holm_by_hand(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment written out: sort, scale by (m - rank), running max, cap."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, (m - rank) * p_values[i])
        adjusted[i] = min(1.0, running)
    return adjusted


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an IDX file (the MNIST format): magic, dims, then big-endian uint8 data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + array.astype(np.uint8).tobytes())


def make_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Learnable digits: a bright 4x4 block whose position encodes the label, plus noise."""
    images = rng.integers(0, 40, size=(len(labels), 28, 28), dtype=np.uint8)
    for i, label in enumerate(labels):
        row, col = divmod(int(label), 5)
        images[i, 4 + row * 10 : 8 + row * 10, 2 + col * 5 : 6 + col * 5] = 255
    return images


def tiny_arrays(n_train: int = 200, n_test: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    train_labels = rng.integers(0, 10, n_train)
    test_labels = rng.integers(0, 10, n_test)
    return make_images(train_labels, rng), train_labels, make_images(test_labels, rng), test_labels


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch) -> Path:
    """Each test its own ~/.cache (the data-verified stamps), inherited by its subprocesses."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture
def tiny_mnist(tmp_path: Path) -> ImageData:
    """200 train and 100 test images as in-memory tensors."""
    train_x, train_y, test_x, test_y = tiny_arrays()
    return ImageData(
        torch.from_numpy(train_x),
        torch.from_numpy(train_y).long(),
        torch.from_numpy(test_x),
        torch.from_numpy(test_y).long(),
        tmp_path,
    )


@pytest.fixture
def tiny_mnist_dir(tmp_path: Path) -> Path:
    """A data folder holding tiny IDX files in torchvision's MNIST/raw layout."""
    train_x, train_y, test_x, test_y = tiny_arrays()
    raw = tmp_path / "data" / "MNIST" / "raw"
    write_idx(raw / "train-images-idx3-ubyte", train_x)
    write_idx(raw / "train-labels-idx1-ubyte", train_y)
    write_idx(raw / "t10k-images-idx3-ubyte", test_x)
    write_idx(raw / "t10k-labels-idx1-ubyte", test_y)
    return tmp_path / "data"


@pytest.fixture
def store_uri(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def real_data_dir() -> Path:
    if not (REAL_DATA / "MNIST" / "raw" / "train-images-idx3-ubyte").is_file():
        pytest.fail(f"Real MNIST not found at {REAL_DATA}; set MNISTLAB_DATA to ../shared/data.")
    return REAL_DATA


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MlflowServer:
    """A real `mlflow server` on a free port over a SQLite file: stop and start it again at
    the same address and store, as a restarted server comes back."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> str:
        command = [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--backend-store-uri",
            f"sqlite:///{self.folder / 'server.db'}",
            "--artifacts-destination",
            str(self.folder / "server-artifacts"),
            "--workers",
            "1",
        ]
        self.process = subprocess.Popen(
            command,
            cwd=self.folder,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                MlflowClient(self.uri).search_experiments(max_results=1)
                return self.uri
            except Exception:
                time.sleep(0.5)
        self.stop(signal.SIGKILL)
        pytest.fail("mlflow server did not start within 120 s")

    def stop(self, how: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, how)
            self.process.wait(30)
        self.process = None


@pytest.fixture
def mlflow_server_control(tmp_path):
    server = MlflowServer(tmp_path)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mlflow_server(mlflow_server_control):
    return mlflow_server_control.uri


@pytest.fixture
def unverified(monkeypatch):
    """Tiny hand-made IDX files cannot match the published checksums: skip that check."""
    import mnistlab.training.data_files

    monkeypatch.setattr(mnistlab.training.data_files, "verify_files", lambda root, dataset: None)


def flat(text: str) -> str:
    """Text with every run of whitespace as one space: what a test compares printed text by."""
    return " ".join(text.split())


def invoke(*args: str, **kwargs):
    """The CLI run in-process, as a user would type it; exceptions are not swallowed."""
    return CliRunner().invoke(app, list(args), catch_exceptions=False, **kwargs)


def refused(result, *phrases: str) -> str:
    """Assert a command was refused as a user's mistake: exit 2, one paragraph naming phrases."""
    text = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and text.startswith("Error:")  # one paragraph
    for phrase in phrases:
        assert phrase in text, text
    return text


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    """A test run from an empty folder, with no tracking store named in the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def two_arm_spec(tmp_path: Path) -> StudySpec:
    """TWO_ARM_SPEC written into tmp_path and read."""
    path = tmp_path / "tiny.toml"
    path.write_text(TWO_ARM_SPEC)
    return load_spec(path)


def training_runs(uri: str, experiment: str) -> list:
    """The experiment's runs, its study run left out."""
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return [r for r in runs if r.data.tags.get(ROLE_TAG) != STUDY_ROLE]


def statuses(uri: str, experiment: str = "tiny") -> dict[str, list[str]]:
    """Run name -> statuses of its training runs."""
    found: dict[str, list[str]] = {}
    for run in training_runs(uri, experiment):
        found.setdefault(run.info.run_name, []).append(run.info.status)
    return found


def tiny_table(differences: dict[str, list[float]], base: float = 10.0) -> pd.DataFrame:
    """A run table of arms base and var over len(differences) seeds: each metric is base for
    the baseline and base + the seed's difference for the variant."""
    rows = []
    for seed in range(len(next(iter(differences.values())))):
        rows.append({"arm": "base", "seed": seed, **{m: base for m in differences}})
        rows.append(
            {"arm": "var", "seed": seed, **{m: base + d[seed] for m, d in differences.items()}}
        )
    return pd.DataFrame(rows)


def ray_refused_here(*args: str, cwd: Path, data: Path = REAL_DATA) -> bool:
    """Where this Python's path holds a space, Ray's raylet cannot start workers, and mnistlab
    refuses `--executor ray` up front (executors.local_ray_problem): there, run `mnistlab
    ARGS`, check that refusal (exit 2, the reason, no traceback, no store written) and return
    True, so that a Ray test checks what a user there gets; elsewhere return False."""
    from mnistlab.study.executors import local_ray_problem

    if local_ray_problem(sys.executable) is None:
        return False
    env = {**os.environ, "MNISTLAB_DATA": str(data)}
    env.pop("MLFLOW_TRACKING_URI", None)
    done = subprocess.run(
        [sys.executable, "-m", "mnistlab", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    output = flat(done.stdout + done.stderr)
    assert done.returncode == 2 and "whose path holds a space" in output, output
    assert "Traceback" not in output and not (Path(cwd) / "mlflow.db").exists(), output
    return True
