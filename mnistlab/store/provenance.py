"""What a reader needs to rerun a result: code version, libraries, machine."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import socket
import subprocess
from pathlib import Path

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
        "git_commit": git_commit(),
        "git_dirty": str(git_dirty()).lower(),
        "torch_version": torch.__version__,
        "torchvision_version": importlib.metadata.version(
            "torchvision"
        ),  # no import: it costs seconds
        "mlflow_version": importlib.metadata.version("mlflow"),
        "python_version": platform.python_version(),
        "device": device,
        "gpu": gpu,
        "cpu": cpu_model(),
        "cpu_count": str(os.cpu_count()),
        "threads": str(threads),
        "host": socket.gethostname(),
        "pid": str(os.getpid()),
    }
