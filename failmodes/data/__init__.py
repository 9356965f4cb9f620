"""Data sets as one uint8 tensor each: CIFAR-10, image folders, CIFAR-10-C .npy folders,
and a learnable synthetic set for tests.

>>> ds = load_dataset("synthetic", split="test")
>>> ds.images.shape, ds.images.dtype, len(ds.classes)
(torch.Size([2000, 32, 32, 3]), torch.uint8, 10)
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .dataset import DataError, Dataset, channel_stats, train_val_split
from .folders import cache_dir, load_image, load_imagefolder
from .synthetic import load_synthetic

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
# Training-set statistics of CIFAR-10, [0, 1] pixel units.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

__all__ = ["CIFAR10_CLASSES", "DataError", "Dataset", "channel_stats", "load_dataset",
           "load_image", "load_imagefolder", "load_synthetic", "train_val_split", "cache_dir",
           "load_cifar10c"]


def load_dataset(spec: str, split: str = "test", *, image_size: int | None = None,
                 download: bool = True, severity: int | None = None) -> Dataset:
    """Load a data set by spec.

    spec: ``synthetic`` | ``cifar10`` | ``imagefolder:PATH`` | ``cifar10c:PATH`` | ``PATH``
          (a bare directory is read as an image folder).
    split: ``train`` or ``test`` (``train-val`` / ``train-train`` give the fixed 90/10 split);
           for ``cifar10c:PATH`` it names the corruption and ``severity`` picks the level.
    """
    base_split, _, part = split.partition("-")
    if part:
        if part not in ("train", "val"):
            raise DataError(f"unknown split {split!r}; use train, test, train-train or train-val")
        train, val = train_val_split(load_dataset(spec, base_split, image_size=image_size,
                                                  download=download))
        return train if part == "train" else val
    kind, _, arg = spec.partition(":")
    if kind == "synthetic":
        return load_synthetic(split)
    if kind == "cifar10":
        return _load_cifar10(split, download) if not arg else _folder(arg, split, image_size)
    if kind == "imagefolder":
        return _folder(arg, split, image_size)
    if kind == "cifar10c":
        return load_cifar10c(arg, split, severity or 5)
    if os.path.isdir(spec):
        return _folder(spec, split, image_size)
    raise DataError(f"unknown data spec {spec!r}; use synthetic, cifar10, imagefolder:PATH, "
                    "cifar10c:PATH or an existing folder")


def _folder(path: str, split: str, image_size: int | None) -> Dataset:
    """An image folder; a CIFAR-10 tree (its 10 class names) keeps CIFAR-10's name and stats."""
    ds = load_imagefolder(path, split, image_size)
    if sorted(ds.classes) == sorted(CIFAR10_CLASSES):
        ds.name, ds.mean, ds.std = "cifar10", CIFAR10_MEAN, CIFAR10_STD
    return ds


def _load_cifar10(split: str, download: bool) -> Dataset:
    """torchvision's CIFAR-10, downloaded once into the cache directory."""
    from torchvision.datasets import CIFAR10
    if split not in ("train", "test"):
        raise DataError(f"cifar10: unknown split {split!r}; choose train or test")
    root = cache_dir() / "cifar10"
    try:
        tv = CIFAR10(str(root), train=(split == "train"), download=download)
    except (OSError, RuntimeError) as e:  # URLError is an OSError
        raise DataError(f"cannot download CIFAR-10 into {root} ({type(e).__name__}); offline? "
                        "pass --data PATH with an ImageFolder tree PATH/{train,test}/<class>/*"
                        ) from None
    images = torch.from_numpy(np.ascontiguousarray(tv.data))
    labels = torch.as_tensor(tv.targets, dtype=torch.int64)
    return Dataset(images, labels, list(tv.classes), "cifar10", split, CIFAR10_MEAN, CIFAR10_STD)


def load_cifar10c(path: str | Path, corruption: str, severity: int = 5) -> Dataset:
    """One corruption × severity of the published CIFAR-10-C folder (``<corruption>.npy``
    holds 5 × 10 000 images, severity 1 first; ``labels.npy`` beside it)."""
    root = Path(path)
    f, lab = root / f"{corruption}.npy", root / "labels.npy"
    for p in (f, lab):
        if not p.exists():
            raise DataError(f"CIFAR-10-C file {p} not found (expected the published .npy folder)")
    if not 1 <= int(severity) <= 5:
        raise DataError(f"CIFAR-10-C severity must be 1..5, got {severity}")
    images = np.load(f, mmap_mode="r")
    labels = np.load(lab)
    per = len(labels) // 5
    rows = slice((int(severity) - 1) * per, int(severity) * per)
    return Dataset(torch.from_numpy(np.ascontiguousarray(images[rows])),
                   torch.from_numpy(labels[rows].astype(np.int64)), list(CIFAR10_CLASSES),
                   "cifar10c", f"{corruption}-{severity}", CIFAR10_MEAN, CIFAR10_STD)
