"""Find, verify and load the image datasets (MNIST, Fashion-MNIST, KMNIST) into memory once.

All three are 28x28 grey images in 10 classes, 60,000 to train and 10,000 to test, stored as
IDX files in torchvision's layout (root/<Folder>/raw/). Training slices batches out of the
tensors; nothing goes through a per-sample Dataset/DataLoader path. torch is imported only
when data is actually loaded, so that settings can name datasets cheaply.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnistlab.errors import MnistlabError, first_line

if TYPE_CHECKING:
    import torch

DATA_ENV = "MNISTLAB_DATA"
DEFAULT_DATA_DIR = Path("data")

# Sizes of the uncompressed IDX files, the same for all three datasets.
IDX_SIZES = {
    "train-images-idx3-ubyte": 47040016,
    "train-labels-idx1-ubyte": 60008,
    "t10k-images-idx3-ubyte": 7840016,
    "t10k-labels-idx1-ubyte": 10008,
}


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset lives under the data folder and what its files must be."""

    name: str  # as a spec and --dataset write it
    title: str  # as a report writes it
    folder: str  # torchvision's class name, the folder under the data root
    noun: str  # what one image shows
    # Checked files -> (size or None, MD5): the uncompressed files, or for a dataset whose
    # only published checksums are of its .gz downloads, those.
    checksums: dict[str, tuple[int | None, str]]

    @property
    def compressed(self) -> bool:
        return all(name.endswith(".gz") for name in self.checksums)

    def raw_dir(self, root: Path | str) -> Path:
        return Path(root) / self.folder / "raw"


DATASETS: dict[str, DatasetInfo] = {
    "mnist": DatasetInfo(
        "mnist",
        "MNIST",
        "MNIST",
        "digits",
        {  # the canonical files' published checksums
            "train-images-idx3-ubyte": (47040016, "6bbc9ace898e44ae57da46a324031adb"),
            "train-labels-idx1-ubyte": (60008, "a25bea736e30d166cdddb491f175f624"),
            "t10k-images-idx3-ubyte": (7840016, "2646ac647ad5339dbf082846283269ea"),
            "t10k-labels-idx1-ubyte": (10008, "27ae3e4e09519cfbb04c329615203637"),
        },
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        "Fashion-MNIST",
        "FashionMNIST",
        "clothing images",
        {  # of the uncompressed files: a .gz recompressed elsewhere has other checksums
            "train-images-idx3-ubyte": (47040016, "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
            "train-labels-idx1-ubyte": (60008, "9018921c3c673c538a1fc5bad174d6f9"),
            "t10k-images-idx3-ubyte": (7840016, "8181f5470baa50b63fa0f6fddb340f0a"),
            "t10k-labels-idx1-ubyte": (10008, "15d484375f8d13e6eb1aabb0c3f46965"),
        },
    ),
    "kmnist": DatasetInfo(
        "kmnist",
        "KMNIST",
        "KMNIST",
        "cursive Japanese characters",
        {  # torchvision's published MD5s of the .gz downloads
            "train-images-idx3-ubyte.gz": (None, "bdb82020997e1d708af4cf47b453dcf7"),
            "train-labels-idx1-ubyte.gz": (None, "e144d726b3acfaa3e44228e80efcd344"),
            "t10k-images-idx3-ubyte.gz": (None, "5c965bf0a639b31b8f53240b1b52f4d7"),
            "t10k-labels-idx1-ubyte.gz": (None, "7320c461ea6c1c855c0b718fb2a4b134"),
        },
    ),
}
MNIST_FILES = DATASETS["mnist"].checksums
# What older torchvision versions wrote instead of raw/ (a (images, labels) tuple of tensors
# per file, under root/<Folder>/processed/), and the raw files each holds.
LEGACY_FILES = {
    "training.pt": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test.pt": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


class DataError(MnistlabError):
    """A dataset is missing or damaged; the message says which file and how to fix it."""


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


def dataset_info(name: str) -> DatasetInfo:
    from mnistlab.training.owndata import is_own_dataset, own_dataset_info

    if is_own_dataset(name):
        return own_dataset_info(name)
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}. Known datasets: {', '.join(DATASETS)}.")
    return DATASETS[name]


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    """--data-dir, else $MNISTLAB_DATA, else ./data."""
    if data_dir:
        return Path(data_dir)
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return DEFAULT_DATA_DIR


def data_source(data_dir: Path | str | None = None) -> str | None:
    """Who named the data folder: '--data-dir', '$MNISTLAB_DATA', or None for ./data."""
    if data_dir:
        return "--data-dir"
    return f"${DATA_ENV}" if os.environ.get(DATA_ENV) else None


def check_data_root(root: Path, dataset: str, source: str | None) -> None:
    """Refuse a data folder that cannot be meant, before anything is created inside it."""
    info = dataset_info(dataset)
    folders = {d.folder for d in DATASETS.values()}
    if (
        root.name == "raw"
        and root.parent.name in folders
        or (root / next(iter(IDX_SIZES))).exists()
    ):
        holder = root.parent.parent if root.name == "raw" else root.parent
        raise DataError(
            f"{root} holds the data files themselves. Point {source or 'the data folder'} at the "
            f"folder that holds {info.folder}/ (here probably {holder})."
        )
    if source is not None and not root.is_dir():
        raise DataError(
            f"The data folder {root} (from {source}) does not exist. Fix the path, or create the "
            f"folder to let mnistlab download {info.title} into it."
        )


def md5_of(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def missing_files(root: Path, info: DatasetInfo) -> list[str]:
    """The uncompressed files that are not there (and, for .gz-checked data, the .gz files)."""
    wanted = [*IDX_SIZES, *(info.checksums if info.compressed else ())]
    return [name for name in wanted if not (info.raw_dir(root) / name).is_file()]


def _damaged(info: DatasetInfo, root: Path, path: Path, problem: str) -> DataError:
    return DataError(
        f"{info.title} file {path} is damaged: it {problem} (truncated or corrupted). "
        f"Delete it and run `mnistlab data --dataset {info.name} --data-dir {root}` to download "
        "it again, or copy the canonical file there."
    )


def _stamp_file() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "mnistlab" / "verified.json"


# A file changed within this long of its last hash could keep its mtime (timestamps are coarse),
# so it is not stamped until it is older: git's "racy clean" rule.
RACY_SECONDS = 2.0


def _fingerprint(path: Path, md5: str) -> list:
    """What changes when a file's content can have changed (size, mtime in ns, inode), and its MD5."""
    status = path.stat()
    return [status.st_size, status.st_mtime_ns, status.st_ino, md5]


def _read_stamps() -> dict[str, list]:
    try:
        return json.loads(_stamp_file().read_text())
    except (OSError, ValueError):
        return {}


def _write_stamps(stamps: dict[str, list]) -> None:
    """Best effort: without a writable cache every run hashes the files again, nothing worse."""
    target = _stamp_file()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
        partial.write_text(json.dumps(stamps, indent=1, sort_keys=True))
        partial.replace(target)
    except OSError:
        pass


def _verify_checksums(root: Path, info: DatasetInfo) -> None:
    """Size and MD5 of each file against the published ones.

    A file whose MD5 was verified before is not hashed again while its path, size, mtime and
    inode are unchanged (a stamp in ~/.cache/mnistlab): a write changes the mtime, and a file
    too recently written for that to be certain is never stamped, so the check is as strong
    as hashing every time, and repeat runs skip reading 55 MB.
    """
    stamps = _read_stamps()
    verified = dict(stamps)
    for name, (size, md5) in info.checksums.items():
        path = info.raw_dir(root) / name
        actual_size = path.stat().st_size
        if size is not None and actual_size != size:
            raise _damaged(info, root, path, f"is {actual_size} bytes, expected {size}")
        key = str(path.resolve())
        if stamps.get(key) == _fingerprint(path, md5):
            continue
        if (actual_md5 := md5_of(path)) != md5:
            raise _damaged(info, root, path, f"has MD5 {actual_md5}, expected {md5}")
        if time.time() - path.stat().st_mtime > RACY_SECONDS:
            verified[key] = _fingerprint(path, md5)
    if verified != stamps:
        _write_stamps(verified)


def verify_files(root: Path, dataset: str = "mnist") -> None:
    """Raise DataError naming the first file whose size or MD5 differs from the published one."""
    info = dataset_info(dataset)
    _verify_checksums(root, info)
    if info.compressed:  # the .gz files are right; the files read are what they unpack to
        for name, size in IDX_SIZES.items():
            path = info.raw_dir(root) / name
            if path.stat().st_size != size:
                raise _damaged(info, root, path, f"is {path.stat().st_size} bytes, expected {size}")


def _missing_message(info: DatasetInfo, root: Path, missing: list[str], reason: str) -> str:
    wanted = ", ".join(info.checksums if info.compressed else IDX_SIZES)
    kind = "compressed (.gz)" if info.compressed else "uncompressed"
    raw = info.raw_dir(root)
    known = {*IDX_SIZES, *info.checksums, *(f"{n}.gz" for n in IDX_SIZES)}
    others = sorted(p.name for p in raw.iterdir() if p.name not in known) if raw.is_dir() else []
    found = (
        f" Found there but not used: {', '.join(others)} (not one of the file names above)."
        if others
        else ""
    )
    return (
        f"{info.title} is not in {raw} and could not be downloaded ({reason}). "
        f"Missing: {', '.join(missing)}.{found} Put the four {kind} files ({wanted}) in "
        f"{raw}/, or point mnistlab at a folder that holds {info.folder}/raw/ "
        f"with --data-dir or the {DATA_ENV} environment variable."
    )


def _gunzip(source: Path, target: Path) -> None:
    """Unpack source into target through a temporary name; a broken .gz leaves nothing."""
    partial = target.with_name(target.name + ".partial")
    try:
        with gzip.open(source, "rb") as packed, open(partial, "wb") as out:
            shutil.copyfileobj(packed, out)
    except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
        partial.unlink(missing_ok=True)
        raise DataError(
            f"{source} is not a complete gzip file ({first_line(error)}), so {target.name} "
            f"cannot be unpacked from it. Delete it and download it again, or put the "
            f"uncompressed {target.name} beside it."
        ) from None
    partial.replace(target)


def _unpack_found_gz(info: DatasetInfo, root: Path, missing: list[str]) -> None:
    """Unpack the canonical downloads (NAME.gz) of missing uncompressed files; the checksums
    of what they unpack to are verified like any file's."""
    for name in missing:
        source = info.raw_dir(root) / f"{name}.gz"
        if name in IDX_SIZES and source.is_file():
            _gunzip(source, info.raw_dir(root) / name)


def write_idx(path: Path, array: np.ndarray) -> None:
    """An array of bytes as an IDX file (magic, big-endian dims, data), through a temporary name."""
    partial = path.with_name(path.name + ".partial")
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    partial.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())
    partial.replace(path)


def _from_legacy(info: DatasetInfo, root: Path) -> None:
    """Write raw/ from torchvision's older processed/{training,test}.pt, when only those are
    there: the IDX files they hold are byte for byte the published ones, so the checksums
    verify them as if downloaded."""
    processed = root / info.folder / "processed"
    if not all((processed / name).is_file() for name in LEGACY_FILES):
        return
    if info.compressed:
        raise DataError(
            f"{info.title} is in {processed} only in torchvision's older processed form, which "
            f"cannot be checked against {info.title}'s published checksums (of its .gz "
            f"downloads). Put the four .gz files in {info.raw_dir(root)}/ (or let mnistlab "
            f"download them by moving {processed} aside)."
        )
    import torch

    info.raw_dir(root).mkdir(parents=True, exist_ok=True)
    for name, (images_name, labels_name) in LEGACY_FILES.items():
        path = processed / name
        try:
            images, labels = torch.load(path, weights_only=True)
            images, labels = images.numpy(), labels.numpy()
        except Exception as error:  # any unreadable pickle or shape: the file is not usable
            raise DataError(
                f"{path} is not torchvision's older processed form of {info.title} (an "
                f"(images, labels) pair of tensors): {type(error).__name__}: "
                f"{first_line(error)}. Move {processed} aside and run `mnistlab data --dataset "
                f"{info.name} --data-dir {root}` to download the raw files."
            ) from None
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise DataError(
                f"{path} holds images of shape {images.shape} and labels of shape "
                f"{labels.shape}, not N 28x28 images with N labels. Move {processed} aside and "
                f"run `mnistlab data --dataset {info.name} --data-dir {root}` to download them."
            )
        write_idx(info.raw_dir(root) / images_name, images)
        write_idx(info.raw_dir(root) / labels_name, labels)


def _unpack(info: DatasetInfo, root: Path) -> None:
    """Unpack verified .gz files next to themselves, each through a temporary name."""
    for name in info.checksums:
        target = info.raw_dir(root) / name.removesuffix(".gz")
        if not target.is_file():
            _gunzip(info.raw_dir(root) / name, target)


def _download(info: DatasetInfo, root: Path, missing: list[str]) -> None:
    import torchvision.datasets

    try:
        getattr(torchvision.datasets, info.folder)(str(root), train=True, download=True)
    except Exception as error:  # network errors come in many types; any means "offline"
        detail = str(error).splitlines()[0][:200] if str(error) else ""
        reason = f"this machine may be offline: {type(error).__name__}" + (
            f": {detail}" if detail else ""
        )
        raise DataError(_missing_message(info, root, missing, reason)) from None


def ensure_dataset(
    root: Path, dataset: str = "mnist", download: bool = True, verify: bool = True
) -> Path:
    """Make sure the dataset's (verified) files are under root, downloading if allowed."""
    root, info = Path(root), dataset_info(dataset)
    missing = missing_files(root, info)
    gz_missing = [n for n in info.checksums if not (info.raw_dir(root) / n).is_file()]
    if missing and info.compressed and not gz_missing:
        if verify:
            _verify_checksums(root, info)  # before unpacking anything
        _unpack(info, root)
        missing = missing_files(root, info)
    if missing and not info.compressed:
        _unpack_found_gz(info, root, missing)
        missing = missing_files(root, info)
    if missing:
        _from_legacy(info, root)
        missing = missing_files(root, info)
    if missing:
        if not download:
            raise DataError(_missing_message(info, root, missing, "downloading was turned off"))
        _download(info, root, missing)
        still = missing_files(root, info)
        if still:  # torchvision returned without writing them (e.g. it found other files)
            raise DataError(
                _missing_message(info, root, still, "the download wrote none of these files")
            )
    if verify:
        verify_files(root, dataset)
    return root


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST format: magic, big-endian dims, then uint8 data) as an array."""
    raw = path.read_bytes()
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise DataError(f"{path} is not an IDX file of bytes (bad header). Replace it.")
    ndim = raw[3]
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, offset=4))
    data = np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(shape)):
        raise DataError(f"{path} holds {data.size} bytes of data for shape {shape}. Replace it.")
    return data.reshape(shape)


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
