"""Find, verify and load MNIST into memory once, as tensors.

Training slices batches out of these tensors; nothing goes through a per-sample
Dataset/DataLoader path.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from mnistlab.errors import MnistlabError

DATA_ENV = "MNISTLAB_DATA"
DEFAULT_DATA_DIR = Path("data")

# Uncompressed sizes and MD5s of the canonical files (torchvision's root/MNIST/raw layout).
MNIST_FILES: dict[str, tuple[int, str]] = {
    "train-images-idx3-ubyte": (47040016, "6bbc9ace898e44ae57da46a324031adb"),
    "train-labels-idx1-ubyte": (60008, "a25bea736e30d166cdddb491f175f624"),
    "t10k-images-idx3-ubyte": (7840016, "2646ac647ad5339dbf082846283269ea"),
    "t10k-labels-idx1-ubyte": (10008, "27ae3e4e09519cfbb04c329615203637"),
}


class DataError(MnistlabError):
    """MNIST is missing or damaged; the message says which file and how to fix it."""


@dataclass(frozen=True)
class Mnist:
    """MNIST as uint8 images (N, 28, 28) and int64 labels (N,)."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    root: Path


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    """--data-dir, else $MNISTLAB_DATA, else ./data."""
    if data_dir:
        return Path(data_dir)
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return DEFAULT_DATA_DIR


def raw_dir(root: Path) -> Path:
    return Path(root) / "MNIST" / "raw"


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def missing_files(root: Path) -> list[str]:
    return [name for name in MNIST_FILES if not (raw_dir(root) / name).is_file()]


def verify_files(root: Path) -> None:
    """Raise DataError naming the first file whose size or MD5 differs from the canonical one."""
    for name, (size, md5) in MNIST_FILES.items():
        path = raw_dir(root) / name
        actual_size = path.stat().st_size
        problem = ""
        if actual_size != size:
            problem = f"is {actual_size} bytes, expected {size}"
        elif (actual_md5 := md5_of(path)) != md5:
            problem = f"has MD5 {actual_md5}, expected {md5}"
        if problem:
            raise DataError(
                f"MNIST file {path} is damaged: it {problem} (truncated or corrupted). "
                f"Delete it and run `mnistlab data --data-dir {root}` to download it again, "
                "or copy the canonical uncompressed file there."
            )


def _missing_message(root: Path, missing: list[str], reason: str) -> str:
    return (
        f"MNIST is not in {raw_dir(root)} and could not be downloaded ({reason}). "
        f"Missing: {', '.join(missing)}. Put the four uncompressed files "
        f"({', '.join(MNIST_FILES)}) in {raw_dir(root)}/, or point mnistlab at a folder "
        f"that holds MNIST/raw/ with --data-dir or the {DATA_ENV} environment variable."
    )


def ensure_mnist(root: Path, download: bool = True, verify: bool = True) -> Path:
    """Make sure the four (verified) files are under root/MNIST/raw, downloading if allowed."""
    root = Path(root)
    missing = missing_files(root)
    if missing:
        if not download:
            raise DataError(_missing_message(root, missing, "downloading was turned off"))
        from torchvision.datasets import MNIST

        try:
            MNIST(str(root), train=True, download=True)
        except Exception as error:  # network errors come in many types; any means "offline"
            raise DataError(_missing_message(root, missing, type(error).__name__)) from None
    if verify:
        verify_files(root)
    return root


def load_mnist(
    data_dir: Path | str | None = None, download: bool = True, verify: bool = True
) -> Mnist:
    """MNIST from data_dir (see resolve_data_dir), verified, loaded once into memory.

    verify=False skips the checksum, for small hand-made IDX files in tests.
    """
    from torchvision.datasets import MNIST

    root = ensure_mnist(resolve_data_dir(data_dir), download=download, verify=verify)
    train = MNIST(str(root), train=True, download=False)
    test = MNIST(str(root), train=False, download=False)
    return Mnist(train.data, train.targets, test.data, test.targets, root)


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], as the paper's ToTensor gives."""
    return images.unsqueeze(1).to(torch.float32).div_(255.0)
