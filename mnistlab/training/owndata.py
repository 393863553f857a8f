"""A user's own dataset as one .npz file (issue 23, item 5, first part: reading and checking).

The file holds x_train, y_train, x_test, y_test: images as uint8 (0-255) or floats (taken as
they are), shaped (N, H, W) or (N, C, H, W) with 1 or 3 channels, and integer labels 0..K-1.
read_npz checks all of it and returns the images as float tensors (N, C, H, W), the labels,
the file's SHA-256 and what was read from it: shape, class count and sizes. Every problem is
one paragraph naming the file, the array and the fix. Not yet wired into specs: a study's
`dataset` still names a built-in dataset.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mnistlab.training.dataset_registry import DataError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


@dataclass(frozen=True)
class OwnData:
    """An .npz dataset, checked: float images (N, C, H, W), int64 labels, and its identity."""

    path: Path
    sha256: str
    train_images: torch.Tensor
    train_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    classes: int

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of every image."""
        return tuple(self.train_images.shape[1:])  # type: ignore[return-value]

    @property
    def train_size(self) -> int:
        return len(self.train_images)

    @property
    def test_size(self) -> int:
        return len(self.test_images)


def _images(path: Path, key: str, array: np.ndarray) -> torch.Tensor:
    def refuse(problem: str) -> DataError:
        return DataError(
            f"{path}: {key} {problem}. Images are uint8 (0-255) or floats, shaped (N, H, W) "
            "or (N, C, H, W) with 1 or 3 channels."
        )

    if array.dtype == np.uint8:
        images = torch.from_numpy(array.astype(np.float32) / 255.0)
    elif np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            bad = int(np.count_nonzero(~np.isfinite(array)))
            raise refuse(f"holds {bad} NaN or infinite value(s)")
        images = torch.from_numpy(array.astype(np.float32))
    else:
        raise refuse(f"has dtype {array.dtype}")
    if images.ndim == 3:
        images = images.unsqueeze(1)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise refuse(f"has shape {tuple(array.shape)}")
    if len(images) == 0 or min(images.shape[2:]) < 1:
        raise refuse(f"is empty (shape {tuple(array.shape)})")
    return images.contiguous()


def _labels(path: Path, key: str, array: np.ndarray) -> torch.Tensor:
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise DataError(
            f"{path}: {key} has dtype {array.dtype} and shape {tuple(array.shape)}; labels are "
            "whole numbers 0, 1, ..., K-1, one per image, shaped (N,)."
        )
    return torch.from_numpy(array.astype(np.int64))


def read_npz(path: Path | str) -> OwnData:
    """The checked dataset in an .npz file; DataError (one paragraph) if it is not usable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file. A dataset file is an .npz relative to the spec.")
    raw = path.read_bytes()
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in NPZ_KEYS if key not in npz.files]
            if missing:
                raise DataError(
                    f"{path}: missing {', '.join(missing)} (it holds "
                    f"{', '.join(npz.files) or 'nothing'}). A dataset file holds x_train, "
                    "y_train, x_test and y_test, e.g. np.savez(path, x_train=..., ...)."
                )
            arrays = {key: npz[key] for key in NPZ_KEYS}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise DataError(
            f"{path}: not a readable .npz file ({error}). Write it with numpy.savez or "
            "numpy.savez_compressed, holding x_train, y_train, x_test and y_test."
        ) from None
    x_train = _images(path, "x_train", arrays["x_train"])
    x_test = _images(path, "x_test", arrays["x_test"])
    y_train = _labels(path, "y_train", arrays["y_train"])
    y_test = _labels(path, "y_test", arrays["y_test"])
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise DataError(
                f"{path}: x_{split} holds {len(x)} images but y_{split} {len(y)} labels; "
                "give one label per image."
            )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(
            f"{path}: train images are {tuple(x_train.shape[1:])} (C, H, W) but test images "
            f"{tuple(x_test.shape[1:])}; both splits need the same image shape."
        )
    classes = int(y_train.max()) + 1
    low = min(int(y_train.min()), int(y_test.min()))
    high = int(y_test.max())
    if low < 0 or high >= classes or classes < 2:
        raise DataError(
            f"{path}: labels run from {low} to {max(high, classes - 1)}, but the train labels "
            f"make {classes} class(es) 0..{classes - 1}. Labels are 0, 1, ..., K-1 with K of "
            "2 or more, and every test label must occur among the classes of the train set."
        )
    return OwnData(
        path.resolve(),
        hashlib.sha256(raw).hexdigest(),
        x_train,
        y_train,
        x_test,
        y_test,
        classes,
    )
