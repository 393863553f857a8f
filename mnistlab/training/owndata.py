"""A user's own dataset as one .npz file: `dataset = "data/my_digits.npz"` in a spec.

The file holds x_train, y_train, x_test, y_test: images as uint8 (0-255) or floats (taken as
they are), shaped (N, H, W) or (N, C, H, W) with 1 or 3 channels, and integer labels 0..K-1.
read_npz checks all of it and returns the images as float tensors (N, C, H, W), the labels,
the file's SHA-256 and what was read from it: shape, class count and sizes. Every problem is
one paragraph naming the file, the array and the fix.

The spec's path is relative to the spec and resolved when the spec is read; the file's SHA-256
is part of every run's identity (RunConfig.dataset_sha256), and whoever loads the file later
(a worker, Ray, the report's demo) checks that it still has that hash. torch is imported only
where images are loaded, so that reading a stored spec needs none.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mnistlab.training.dataset_registry import DataError, DatasetInfo
from mnistlab.training.datasets import ImageData

if TYPE_CHECKING:
    import torch

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
    import torch

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
    import torch

    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise DataError(
            f"{path}: {key} has dtype {array.dtype} and shape {tuple(array.shape)}; labels are "
            "whole numbers 0, 1, ..., K-1, one per image, shaped (N,)."
        )
    if len(array) and (lowest := int(array.min())) < 0:
        negative = int((array < 0).sum())
        raise DataError(
            f"{path}: {key} holds {negative} negative label(s) (the lowest is {lowest}); labels "
            "are class numbers 0, 1, ..., K-1. Renumber them (e.g. y - y.min() if they are "
            "consecutive) and save the file again."
        )
    return torch.from_numpy(array.astype(np.int64))


def _not_an_archive(raw: bytes) -> str | None:
    """What the file is instead of an .npz (a zip archive of .npy arrays), or None."""
    if raw.startswith(b"PK"):
        return None
    if not raw:
        return "it is empty"
    if raw.startswith(b"\x93NUMPY"):
        return "it holds one array (.npy, as numpy.save writes), not the four of a dataset"
    try:
        raw[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return f"it is not a zip archive (it starts with bytes {raw[:8].hex(' ')})"
    return "it is text, not a zip archive of arrays"


def read_npz(path: Path | str) -> OwnData:
    """The checked dataset in an .npz file; DataError (one paragraph) if it is not usable."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file. A dataset file is an .npz relative to the spec.")
    raw = path.read_bytes()
    if problem := _not_an_archive(raw):  # before np.load, whose advice would be allow_pickle
        raise DataError(
            f"{path}: not an .npz file: {problem}. Write it with numpy.savez(path, x_train=..., "
            "y_train=..., x_test=..., y_test=...) or numpy.savez_compressed."
        )
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
    _check_every_class_trains(path, y_train, classes)
    return OwnData(
        path.resolve(),
        hashlib.sha256(raw).hexdigest(),
        x_train,
        y_train,
        x_test,
        y_test,
        classes,
    )


def _check_every_class_trains(path: Path, labels: Any, classes: int) -> None:
    """The class count is the largest train label + 1, so labels numbered 1..K or one stray
    large label leave classes with no training image, and the net would be blamed for the
    file's numbering: refused naming the empty classes, the likely cause and the fix."""
    counts = np.bincount(np.asarray(labels), minlength=classes)
    empty = [int(c) for c in np.flatnonzero(counts == 0)]
    if not empty:
        return
    shown = ", ".join(map(str, empty[:10])) + (
        f" and {len(empty) - 10} more" if len(empty) > 10 else ""
    )
    top = classes - 1
    if empty == [0]:
        cause = f"the labels seem numbered from 1 (1..{top}): subtract 1 from y_train and y_test"
    else:
        cause = (
            f"labels numbered from 1, or a stray label (the largest, {top}, has "
            f"{int(counts[top])} image(s)): fix or drop the stray labels, or renumber the "
            "classes"
        )
    raise DataError(
        f"{path}: the train labels make {classes} classes 0..{top} (the largest label + 1), "
        f"but class(es) {shown} have no training image. Likely cause: {cause}, so that the "
        "labels are 0, 1, ..., K-1 with every class among the train images."
    )


SUFFIX = ".npz"


def is_own_dataset(name: Any) -> bool:
    """A spec's dataset that names an .npz file rather than a built-in dataset."""
    return isinstance(name, str) and name.lower().endswith(SUFFIX)


def own_dataset_info(name: str) -> DatasetInfo:
    """What a report says of an .npz dataset: its file name, and images in general."""
    return DatasetInfo(name, Path(name).name, "", "images", {})


def file_sha256(path: Path | str) -> str:
    """The SHA-256 of a file's bytes (hex): the identity of a user's .npz data and net file.
    Raises OSError when the file cannot be read."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def locate_own_dataset(name: str, base: Path) -> tuple[str, str]:
    """(absolute path, SHA-256) of the .npz file `name`, relative to base (the spec's folder)."""
    path = (base / name).resolve()
    if not path.is_file():
        raise DataError(
            f"dataset {name!r}: no file {path}. An .npz dataset's path is relative to the "
            "spec's folder; put the file there or give its path."
        )
    return str(path), file_sha256(path)


def check_unchanged(name: str, source: str, sha256: str, who: str = "the runs") -> Path:
    """The file at source, refused (DataError) when it is gone or no longer has the SHA-256
    that `who` were trained with."""
    path = Path(source or name)
    if not path.is_file():
        raise DataError(
            f"dataset {name!r}: the file {path} is gone; {who} used it with SHA-256 "
            f"{sha256[:12]}. Put that file back at {path} to use it here."
        )
    now = file_sha256(path)
    if sha256 and now != sha256:
        raise DataError(
            f"dataset {name!r}: the file {path} has changed since {who} used it (SHA-256 now "
            f"{now[:12]}, then {sha256[:12]}). Restore the file {who} used, or run the study "
            "again to train new runs on the new file."
        )
    return path


def size_problem(train_size: int, eval_subset: int, own: OwnData) -> str | None:
    """Why train_size or eval_subset asks for more images than the file holds; None if not."""
    for name, asked, held, split in (
        ("train_size", train_size, own.train_size, "train"),
        ("eval_subset", eval_subset, own.test_size, "test"),
    ):
        if asked > held:
            return (
                f"{name} is {asked}, but {own.path.name} holds {held} {split} images. Set "
                f"{name} to {held} or less (leave train_size out to train on all of them)."
            )
    return None


def load_own(path: Path | str, sha256: str = "") -> ImageData:
    """The .npz file as ImageData: float images (N, C, H, W), its SHA-256 in .sha256. With
    sha256, a file that no longer has it is refused (check_unchanged)."""
    if sha256:
        check_unchanged(str(path), str(path), sha256)
    own = read_npz(path)
    return ImageData(
        own.train_images,
        own.train_labels,
        own.test_images,
        own.test_labels,
        own.path.parent,
        str(path),
        own.sha256,
    )


def check_run_data(config: Any, data: ImageData) -> None:
    """A run of config (spec.run.RunConfig) may train on data: for an .npz dataset, the file
    it loaded has the run's SHA-256 and holds train_size and eval_subset images."""
    if not (config.dataset_sha256 or data.sha256):
        return
    if data.sha256 != config.dataset_sha256:
        raise DataError(
            f"dataset {config.dataset!r}: the run is set up for the file with SHA-256 "
            f"{config.dataset_sha256[:12] or '(none)'}, but the data loaded from {data.dataset} "
            f"has {data.sha256[:12] or '(none)'}. The file changed after the study was read: "
            "restore it, or run the study again to train runs on the new file."
        )
    held_train, held_test = len(data.train_labels), len(data.test_labels)
    for name, asked, held in (
        ("train_size", config.train_size, held_train),
        ("eval_subset", config.eval_subset, held_test),
    ):
        if asked > held:
            raise DataError(
                f"dataset {config.dataset!r}: {name} is {asked}, but the file holds {held} "
                f"such images. Set {name} to {held} or less (--{name.replace('_', '-')})."
            )


def shape_and_classes(source: str) -> tuple[tuple[int, int, int], int]:
    """((C, H, W), classes) of the .npz file at source, for probing nets before training."""
    own = read_npz(source)
    return own.image_shape, own.classes


def own_test_set(name: str, source: str, sha256: str) -> tuple[np.ndarray, np.ndarray]:
    """The test images as float (N, C, H, W) and labels (N,) of the file the runs used; a
    DataError when it is gone or changed (the report then says so instead of a demo)."""
    check_unchanged(name, source, sha256)
    own = read_npz(source)
    return own.test_images.numpy(), own.test_labels.numpy()


def display_images(images: np.ndarray) -> np.ndarray:
    """Images as imshow draws them: (N, H, W) grey, or (N, H, W, 3) colour scaled to [0, 1];
    MNIST's uint8 (N, 28, 28) pass unchanged."""
    if images.ndim != 4:
        return images
    if images.shape[1] == 1:
        return images[:, 0]
    colour = np.moveaxis(images, 1, -1).astype(np.float32)
    low = colour.min(axis=(1, 2, 3), keepdims=True)
    high = colour.max(axis=(1, 2, 3), keepdims=True)
    return (colour - low) / np.maximum(high - low, 1e-12)  # floats need not lie in [0, 1]


def provenance(dataset: str, sha256: str) -> str:
    """The report's words for where the data came from."""
    return (
        f"{Path(dataset).name} (your .npz file, SHA-256 {sha256[:12]}), checked against that "
        "hash wherever it was loaded"
    )
