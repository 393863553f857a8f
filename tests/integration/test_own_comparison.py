"""The shipped "your own comparison" studies end to end through the CLI on a slice of MNIST."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def small_copy(name: str, folder: Path) -> Path:
    """The shipped spec, 2 seeds on 1,000 images, beside a copy of examples/ as in the repo."""
    text = (REPO / "experiments" / f"{name}.toml").read_text()
    # Thresholds the small runs reach in one epoch.
    text = text.replace("seeds = 10", "seeds = 2\nthresholds = [0.5, 0.7]\nprimary_threshold = 0.7")
    text = text.replace(
        "epochs = 1", "epochs = 1\ntrain_size = 1000\neval_subset = 500\neval_every = 10"
    )
    (folder / "experiments").mkdir(exist_ok=True)
    path = folder / "experiments" / f"{name}.toml"
    path.write_text(text)
    shutil.copytree(REPO / "examples", folder / "examples", dirs_exist_ok=True)
    return path


def mnistlab(*args: str, cwd: Path, data: Path) -> str:
    env = {"MNISTLAB_DATA": str(data), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "mnistlab", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize(
    "name, arms, workers",
    [
        ("optimizers", ("adam", "sgd", "adamw"), "1"),
        ("regularisation", ("plain", "dropout", "wd", "smooth"), "1"),
        ("own-net", ("cnn2", "mlp"), "1"),
    ],
)
def test_a_shipped_comparison_trains_and_analyses(tmp_path, real_data_dir, name, arms, workers):
    spec = small_copy(name, tmp_path)
    trained = mnistlab("study", str(spec), "--workers", workers, cwd=tmp_path, data=real_data_dir)
    assert f"{2 * len(arms)} trained" in trained
    analysed = " ".join(mnistlab("analyze", name, cwd=tmp_path, data=real_data_dir).split())
    for arm in arms:
        assert arm in analysed


def test_a_users_net_reaches_local_worker_processes(tmp_path, real_data_dir):
    """Two workers train side by side, so their runs are contended: analyze leaves their times
    out (it once crashed on that) and still answers."""
    spec = small_copy("own-net", tmp_path)
    trained = mnistlab("study", str(spec), "--workers", "2", cwd=tmp_path, data=real_data_dir)
    assert "4 trained" in trained
    analysed = " ".join(mnistlab("analyze", "own-net", cwd=tmp_path, data=real_data_dir).split())
    assert "mlp" in analysed and "shared this machine" in analysed
