"""Load an image dataset (MNIST, Fashion-MNIST, KMNIST) into memory once, as tensors.

The files are put in place and checked by training.data_files; which datasets exist is
training.dataset_registry. Training slices batches out of the tensors; nothing goes through a
per-sample Dataset/DataLoader path. torch is imported only when data is actually loaded, so
that settings can name datasets cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnistlab.training.data_files import (
    check_data_root,
    data_source,
    ensure_dataset,
    read_idx,
    resolve_data_dir,
)
from mnistlab.training.dataset_registry import DatasetInfo, dataset_info

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class ImageData:
    """A dataset as uint8 images (N, 28, 28) and int64 labels (N,); an .npz dataset
    (training.owndata) as float images (N, C, H, W), with its file's SHA-256."""

    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    root: Path
    dataset: str = "mnist"
    sha256: str = ""  # an .npz dataset's file hash; "" for the built-in datasets

    @property
    def info(self) -> DatasetInfo:
        return dataset_info(self.dataset)


def load_dataset(
    data_dir: Path | str | None = None,
    dataset: str = "mnist",
    download: bool = True,
    verify: bool = True,
) -> ImageData:
    """A dataset from data_dir (see resolve_data_dir), verified, loaded once into memory.

    verify=False skips the checksums, for small hand-made IDX files in tests.
    """
    import torch

    from mnistlab.training.owndata import is_own_dataset, load_own

    if is_own_dataset(dataset):  # a user's .npz file, by its path
        return load_own(dataset)
    info = dataset_info(dataset)
    root = _checked_root(data_dir, dataset, download, verify)

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(read_idx(info.raw_dir(root) / name).copy())

    return ImageData(
        tensor("train-images-idx3-ubyte"),
        tensor("train-labels-idx1-ubyte").long(),
        tensor("t10k-images-idx3-ubyte"),
        tensor("t10k-labels-idx1-ubyte").long(),
        root,
        dataset,
    )


def _checked_root(data_dir: Path | str | None, dataset: str, download: bool, verify: bool) -> Path:
    root = resolve_data_dir(data_dir)
    check_data_root(root, dataset, data_source(data_dir))
    return ensure_dataset(root, dataset, download=download, verify=verify)


def load_test_set(
    data_dir: Path | str | None = None, dataset: str = "mnist", download: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """The verified test images (N, 28, 28) uint8 and labels (N,) int64, as numpy: no torch."""
    info = dataset_info(dataset)
    raw = info.raw_dir(_checked_root(data_dir, dataset, download, verify=True))
    images = read_idx(raw / "t10k-images-idx3-ubyte")
    return images, read_idx(raw / "t10k-labels-idx1-ubyte").astype(np.int64)


def load_mnist(
    data_dir: Path | str | None = None, download: bool = True, verify: bool = True
) -> ImageData:
    return load_dataset(data_dir, "mnist", download, verify)


def to_float_images(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1], as the paper's ToTensor gives.

    Float images (an .npz dataset's, already (N, C, H, W)) are returned as they are."""
    import torch

    if images.is_floating_point():
        return images

    return images.unsqueeze(1).to(torch.float32).div_(255.0)
