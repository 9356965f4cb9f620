"""CIFAR-10 and CIFAR-100 (torchvision downloads) and their published corrupted copies,
CIFAR-10-C and CIFAR-100-C (``<corruption>.npy`` of 5 × 10 000 images, severity 1 first,
and ``labels.npy`` beside them).

CIFAR-100-C was made with the CIFAR generator, so on-the-fly corruptions of CIFAR-100 use
the same 32 px severity table as CIFAR-10. The 20 coarse superclasses live in
``failmodes.analysis.superclasses`` (``cifar100``) and are picked up automatically.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..constants import CIFAR10_MEAN, CIFAR10_STD, CIFAR100_MEAN, CIFAR100_STD, SUBSET_SEED
from ._cache import cache_dir
from .dataset import DataError, Dataset
from .specs import CorruptedSpec, DataSpec, get_data_spec, register_data_spec

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
# torchvision's CIFAR100.classes: the fine label names of the dataset's meta file, index order.
CIFAR100_CLASSES = [
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle",
    "bottle", "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle",
    "caterpillar", "cattle", "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch",
    "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish", "forest", "fox",
    "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom",
    "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road",
    "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake",
    "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle",
    "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm",
]

# name -> (torchvision class, class names, mean, std, the corrupted set's name and URL)
_CIFAR = {
    "cifar10": ("CIFAR10", CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD,
                "CIFAR-10-C", "https://zenodo.org/records/2535967"),
    "cifar100": ("CIFAR100", CIFAR100_CLASSES, CIFAR100_MEAN, CIFAR100_STD,
                 "CIFAR-100-C", "https://zenodo.org/records/3555552"),
}


def load_cifar(name: str, split: str, download: bool = True) -> Dataset:
    """torchvision's CIFAR-10 or CIFAR-100 (``name``), downloaded once into the cache."""
    import torchvision.datasets as tvd
    tv_name, classes, mean, std, _, _ = _CIFAR[name]
    if split not in ("train", "test"):
        raise DataError(f"{name}: unknown split {split!r}; choose train or test")
    root = cache_dir() / name
    try:
        tv = getattr(tvd, tv_name)(str(root), train=(split == "train"), download=download)
    except (OSError, RuntimeError) as e:  # URLError is an OSError
        raise DataError(f"cannot download {tv_name.replace('CIFAR', 'CIFAR-')} into {root} "
                        f"({type(e).__name__}); offline? download it there (torchvision "
                        f"{tv_name}) or pass --data PATH with a tree PATH/{{train,test}}/<class>/*"
                        ) from None
    images = torch.from_numpy(np.ascontiguousarray(tv.data))
    labels = torch.as_tensor(tv.targets, dtype=torch.int64)
    return Dataset(images, labels, list(tv.classes) or list(classes), name, split, mean, std)


def load_cifar10c(path: str | Path, corruption: str, severity: int = 5) -> Dataset:
    """One corruption × severity of the published CIFAR-10-C folder."""
    return load_cifar_c(path, corruption, severity, base="cifar10")


def load_cifar100c(path: str | Path, corruption: str, severity: int = 5) -> Dataset:
    """One corruption × severity of the published CIFAR-100-C folder."""
    return load_cifar_c(path, corruption, severity, base="cifar100")


def load_cifar_c(path: str | Path, corruption: str, severity: int = 5,
                 base: str = "cifar10") -> Dataset:
    """Rows of severity ``severity`` (1..5) of ``PATH/<corruption>.npy`` with their labels.

    The .npy is memory-mapped; only the 10 000 rows of one severity are read."""
    _, classes, mean, std, title, url = _CIFAR[base]
    root = Path(path).expanduser()
    f, lab = root / f"{corruption}.npy", root / "labels.npy"
    if not root.is_dir():
        raise DataError(f"{title} folder {root} not found; download {title} ({url}) and "
                        f"pass the folder holding <corruption>.npy and labels.npy")
    for p in (f, lab):
        if not p.exists():
            raise DataError(f"{title} file {p} not found (expected the published .npy folder "
                            f"from {url})")
    if not 1 <= int(severity) <= 5:
        raise DataError(f"{title} severity must be 1..5, got {severity}")
    try:
        images = np.load(f, mmap_mode="r")
        labels = np.load(lab)
    except (OSError, ValueError) as e:
        raise DataError(f"{title} file {f} or {lab} is not a readable .npy ({e})") from None
    if images.ndim != 4 or images.shape[-1] != 3 or len(images) != len(labels) \
            or len(labels) % 5:
        raise DataError(f"{f}: expected N×32×32×3 images and N labels with N a multiple of 5, "
                        f"got {tuple(images.shape)} and {len(labels)} labels")
    per = len(labels) // 5
    rows = slice((int(severity) - 1) * per, int(severity) * per)
    if labels[rows].max(initial=0) >= len(classes):
        raise DataError(f"{lab}: labels reach {int(labels.max())} but {title} has "
                        f"{len(classes)} classes; is this the right folder?")
    return Dataset(torch.from_numpy(np.array(images[rows])),  # one severity, read into RAM
                   torch.from_numpy(labels[rows].astype(np.int64)), list(classes),
                   f"{base}c", f"{corruption}-{severity}", mean, std)


class _Cifar(DataSpec):
    splits = "train/test"
    folder_arg = True

    def load(self, arg: str, split: str, *, image_size: int | None = None,
             download: bool = True) -> Dataset:
        if arg:  # a tree of class folders, e.g. CIFAR-10 exported as PNG files
            return get_data_spec("imagefolder").load(arg, split, image_size=image_size)
        return load_cifar(self.name, split, download)


@register_data_spec
class Cifar10(_Cifar):
    name = "cifar10"
    forms = ("cifar10", "cifar10:PATH")
    what = "torchvision CIFAR-10 (downloaded once); :PATH its <split>/<class>/* tree"


@register_data_spec
class Cifar100(_Cifar):
    name = "cifar100"
    forms = ("cifar100", "cifar100:PATH")
    what = "torchvision CIFAR-100 (downloaded once); :PATH its <split>/<class>/* tree"


class _CifarC(CorruptedSpec):
    def load_cell(self, arg: str, corruption: str, severity: int = 5, *,
                  image_size: int | None = None, subset: int | None = None,
                  subset_seed: int = SUBSET_SEED) -> Dataset:
        full = load_cifar_c(arg, corruption, severity, base=self.clean)
        ds = full.subset(subset, subset_seed)
        if len(ds) < len(full):
            ds.full_size = len(full)
        return ds

    def survey(self, arg: str, corruptions: Sequence[str],
               severities: Sequence[float]) -> tuple[list[str], int]:
        root = Path(arg)
        if not (root / "labels.npy").is_file():
            raise DataError(f"{root}/labels.npy not found; --official {self.name}:PATH takes "
                            "the published folder (<corruption>.npy + labels.npy)")
        missing = [f"{n}.npy" for n in corruptions if not (root / f"{n}.npy").is_file()]
        return missing, len(np.load(root / "labels.npy", mmap_mode="r")) // 5


@register_data_spec
class Cifar10C(_CifarC):
    name = "cifar10c"
    clean = "cifar10"
    title = _CIFAR["cifar10"][4]
    forms = ("cifar10c:PATH",)
    what = "released CIFAR-10-C folder (<corruption>.npy, labels.npy)"


@register_data_spec
class Cifar100C(_CifarC):
    name = "cifar100c"
    clean = "cifar100"
    title = _CIFAR["cifar100"][4]
    forms = ("cifar100c:PATH",)
    what = "released CIFAR-100-C folder (<corruption>.npy, labels.npy)"
