"""A dataset's files on disk: where the data folder is, getting the IDX files in place
(found .gz files unpacked, torchvision's older processed form converted, else downloaded) and
checking them (sizes, MD5s, remembered per file until it changes). Every failure is a
DataError naming the file and the fix.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import struct
import time
from pathlib import Path

import numpy as np

from mnistlab.errors import first_line
from mnistlab.training.dataset_registry import DATASETS, DataError, DatasetInfo, dataset_info

DATA_ENV = "MNISTLAB_DATA"
DEFAULT_DATA_DIR = Path("data")


# Sizes of the uncompressed IDX files, the same for all three datasets.
IDX_SIZES = {
    "train-images-idx3-ubyte": 47040016,
    "train-labels-idx1-ubyte": 60008,
    "t10k-images-idx3-ubyte": 7840016,
    "t10k-labels-idx1-ubyte": 10008,
}


# What older torchvision versions wrote instead of raw/ (a (images, labels) tuple of tensors
# per file, under root/<Folder>/processed/), and the raw files each holds.
LEGACY_FILES = {
    "training.pt": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test.pt": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


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
