"""What a reader needs to rerun a result: code version, libraries, machine."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
from pathlib import Path

from mnistlab.names import (
    CPU_COUNT_TAG,
    CPU_TAG,
    DEVICE_TAG,
    GIT_COMMIT_TAG,
    GIT_DIRTY_TAG,
    GPU_TAG,
    HOST_TAG,
    MLFLOW_VERSION_TAG,
    PID_TAG,
    PYTHON_VERSION_TAG,
    THREADS_TAG,
    TORCH_VERSION_TAG,
    TORCHVISION_VERSION_TAG,
)

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=PACKAGE_DIR, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


@functools.cache
def git_commit() -> str:
    return _git("rev-parse", "HEAD") or "unknown"


@functools.cache
def git_dirty() -> bool:
    """True when the package's tracked files differ from the commit."""
    return bool(_git("status", "--porcelain", "--untracked-files=no", "--", str(PACKAGE_DIR)))


@functools.cache
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment_tags(device: str, threads: int) -> dict[str, str]:
    import torch

    gpu = torch.cuda.get_device_name(device) if device.startswith("cuda") else ""
    return {
        GIT_COMMIT_TAG: git_commit(),
        GIT_DIRTY_TAG: str(git_dirty()).lower(),
        TORCH_VERSION_TAG: torch.__version__,
        TORCHVISION_VERSION_TAG: importlib.metadata.version(
            "torchvision"
        ),  # no import: it costs seconds
        MLFLOW_VERSION_TAG: importlib.metadata.version("mlflow"),
        PYTHON_VERSION_TAG: platform.python_version(),
        DEVICE_TAG: device,
        GPU_TAG: gpu,
        CPU_TAG: cpu_model(),
        CPU_COUNT_TAG: str(os.cpu_count()),
        THREADS_TAG: str(threads),
        HOST_TAG: socket.gethostname(),
        PID_TAG: str(os.getpid()),
    }
