"""The datasets mnistlab knows: one registry entry each (names, folder, checksums), no torch.

All three are 28x28 grey images in 10 classes, 60,000 to train and 10,000 to test. A new
dataset of the same shape is an entry in DATASETS; training.data_files gets its files in
place and checks them, training.datasets loads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mnistlab.errors import MnistlabError


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


class DataError(MnistlabError):
    """A dataset is missing or damaged; the message says which file and how to fix it."""


def dataset_info(name: str) -> DatasetInfo:
    from mnistlab.training.owndata import is_own_dataset, own_dataset_info

    if is_own_dataset(name):
        return own_dataset_info(name)
    if name not in DATASETS:
        raise DataError(f"Unknown dataset {name!r}. Known datasets: {', '.join(DATASETS)}.")
    return DATASETS[name]
