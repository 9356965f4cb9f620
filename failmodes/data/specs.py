"""Data specs: the strings ``--data``, study files and ``load_dataset`` take.

=======================  =====================================================  ========
spec                     what                                                   split
=======================  =====================================================  ========
``synthetic``            the learnable 32 px test set                           train/test
``cifar10``              torchvision CIFAR-10 (downloaded once)                 train/test
``cifar100``             torchvision CIFAR-100 (downloaded once)                train/test
``imagefolder:PATH``     ``PATH/<split>/<class>/*`` or ``PATH/<class>/*``       any
``cifar10c:PATH``        released CIFAR-10-C ``.npy`` folder                    CORRUPTION[-SEV]
``cifar100c:PATH``       released CIFAR-100-C ``.npy`` folder                   CORRUPTION[-SEV]
``imagenet:PATH``        ImageNet val, ``<wnid>/`` folders or flat + labels     test/val/train
``imagenetc:PATH``       released ImageNet-C ``<corr>/<sev>/<wnid>/*.JPEG``     CORRUPTION[-SEV]
``tinyimagenet:PATH``    ``tiny-imagenet-200`` (64 px)                          train/test
``tinyimagenetc:PATH``   released Tiny-ImageNet-C tree (64 px)                  CORRUPTION[-SEV]
``hf:NAME[:split]``      a Hugging Face dataset (hub or ``save_to_disk`` path)  in the spec
``PATH``                 an existing folder, read as an image folder            any
=======================  =====================================================  ========

``train-train`` / ``train-val`` (any base split) give the fixed 90/10 split.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from ..constants import CIFAR10_MEAN, CIFAR10_STD
from .cifar import CIFAR10_CLASSES, load_cifar, load_cifar_c
from .dataset import DataError, Dataset, train_val_split
from .decode import check_image_size
from .folders import load_imagefolder
from .synthetic import load_synthetic

DATA_SPECS = ("synthetic", "cifar10", "cifar100", "imagefolder", "cifar10c", "cifar100c",
              "imagenet", "imagenetc", "tinyimagenet", "tinyimagenetc", "hf")
# Specs whose split names a corruption (and severity) of a released corrupted set, and
# the clean spec each was made from.
CORRUPTED_SPECS = {"cifar10c": "cifar10", "cifar100c": "cifar100", "imagenetc": "imagenet",
                   "tinyimagenetc": "tinyimagenet"}
CORRUPTED_TITLES = {"cifar10c": "CIFAR-10-C", "cifar100c": "CIFAR-100-C",
                    "imagenetc": "ImageNet-C", "tinyimagenetc": "Tiny-ImageNet-C"}
PATH_SPECS = ("imagefolder", "cifar10", "cifar100", "cifar10c", "cifar100c", "imagenet",
              "imagenetc", "tinyimagenet", "tinyimagenetc")
_SEVERITY = re.compile(r"^(?P<c>.+)-(?P<s>[1-5])$")


def parse_spec(spec: str) -> tuple[str, str]:
    """(kind, argument) of a spec; a bare existing folder is ``imagefolder``."""
    kind, sep, arg = str(spec).partition(":")
    if kind in DATA_SPECS:
        if kind in PATH_SPECS[3:] + ("imagefolder", "hf") and not arg:
            raise DataError(f"data spec {spec!r} needs a path: {kind}:PATH")
        return kind, arg
    if os.path.isdir(spec):
        return "imagefolder", str(spec)
    raise DataError(f"unknown data spec {spec!r}; use {', '.join(DATA_SPECS[:3])}, "
                    f"{', '.join(k + ':PATH' for k in DATA_SPECS[3:-1])}, hf:NAME or an "
                    "existing folder")


def absolute_spec(spec: str) -> str:
    """The spec with its folder made absolute (``imagenet:PATH``, ``hf:PATH``, a bare
    folder), so a saved config names the same data from any working directory."""
    kind, sep, arg = str(spec).partition(":")
    if sep and kind in PATH_SPECS and arg:
        return f"{kind}:{Path(arg).expanduser().resolve()}"
    if sep and kind == "hf" and arg:
        path, q, query = arg.partition("?")
        if os.path.exists(os.path.expanduser(path)):
            return f"hf:{Path(path).expanduser().resolve()}{q}{query}"
        return spec
    if not sep and kind not in DATA_SPECS and Path(spec).expanduser().is_dir():
        return str(Path(spec).expanduser().resolve())
    return spec


def load_dataset(spec: str, split: str = "test", *, image_size: int | None = None,
                 download: bool = True, severity: int | None = None) -> Dataset:
    """Load a data set by spec (see the module table).

    split: ``train`` / ``test`` (``train-val`` / ``train-train`` the fixed 90/10 split); for
    a released corrupted set, the corruption, with its severity as ``fog-3`` or
    ``severity=3`` (default 5). image_size: resize folder images to N×N (ImageNet: the
    crop size, default 224).
    """
    image_size = check_image_size(image_size)
    kind, arg = parse_spec(spec)
    base_split, _, part = split.partition("-")
    if part and kind not in CORRUPTED_SPECS:
        if part not in ("train", "val"):
            raise DataError(f"unknown split {split!r}; use train, test, train-train or train-val")
        train, val = train_val_split(load_dataset(spec, base_split, image_size=image_size,
                                                  download=download))
        return train if part == "train" else val
    if kind in CORRUPTED_SPECS:
        m = _SEVERITY.match(split)
        corruption, sev = (m["c"], int(m["s"])) if m else (split, severity or 5)
        return load_corrupted(spec, corruption, sev, image_size=image_size)
    if kind == "synthetic":
        return load_synthetic(split)
    if kind in ("cifar10", "cifar100"):
        return load_cifar(kind, split, download) if not arg else _folder(arg, split, image_size)
    if kind == "imagefolder":
        return _folder(arg, split, image_size)
    if kind == "imagenet":
        from .imagenet import load_imagenet
        return load_imagenet(arg, split, image_size)
    if kind == "tinyimagenet":
        from .tinyimagenet import load_tinyimagenet
        return load_tinyimagenet(arg, split)
    from .hf import load_hf
    return load_hf(arg, split, image_size)


def load_corrupted(spec: str, corruption: str, severity: int = 5, *,
                   image_size: int | None = None, subset: int | None = None,
                   subset_seed: int = 42) -> Dataset:
    """One corruption × severity of a released corrupted set (``cifar10c:PATH``, ...);
    ``subset`` gives ``Dataset.subset(subset, subset_seed)`` of it, decoding only those
    images where the set is a JPEG tree (``full_size`` keeps the cell's size)."""
    kind, arg = parse_spec(spec)
    if kind in ("cifar10c", "cifar100c"):
        full = load_cifar_c(arg, corruption, severity, base=kind[:-1])
        ds = full.subset(subset, subset_seed)
        if len(ds) < len(full):
            ds.full_size = len(full)
        return ds
    if kind == "imagenetc":
        from .imagenet import load_imagenet_c
        return load_imagenet_c(arg, corruption, severity, image_size, subset=subset,
                               subset_seed=subset_seed)
    if kind == "tinyimagenetc":
        from .tinyimagenet import load_tinyimagenet_c
        return load_tinyimagenet_c(arg, corruption, severity, subset=subset,
                                   subset_seed=subset_seed)
    raise DataError(f"{spec!r} is not a released corrupted set; use one of "
                    f"{', '.join(k + ':PATH' for k in CORRUPTED_SPECS)}")


def _folder(path: str, split: str, image_size: int | None) -> Dataset:
    """An image folder; a CIFAR-10 tree (its 10 class names) keeps CIFAR-10's name and stats."""
    ds = load_imagefolder(path, split, image_size)
    if sorted(ds.classes) == sorted(CIFAR10_CLASSES):
        ds.name, ds.mean, ds.std = "cifar10", CIFAR10_MEAN, CIFAR10_STD
    return ds
