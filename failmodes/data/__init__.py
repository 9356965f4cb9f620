"""Data sets as one uint8 tensor each: CIFAR-10/100 and their -C copies, image folders,
ImageNet and ImageNet-C, Tiny-ImageNet(-C), Hugging Face datasets, and a learnable
synthetic set for tests. ``load_dataset(spec)`` is the one entry point (specs in
``failmodes.data.specs``); every file is read by the one decoder, ``data.decode``.

>>> ds = load_dataset("synthetic", split="test")
>>> ds.images.shape, ds.images.dtype, len(ds.classes)
(torch.Size([2000, 32, 32, 3]), torch.uint8, 10)
"""
from __future__ import annotations

from ._cache import cache_dir
from .cifar import (
    CIFAR10_CLASSES,
    CIFAR100_CLASSES,
    load_cifar,
    load_cifar10c,
    load_cifar100c,
    load_cifar_c,
)
from .dataset import DataError, Dataset, channel_stats, train_val_split
from .decode import ImageDecodeError, decode_image
from .folders import load_image, load_imagefolder
from .imagenet import imagenet_class_names, imagenet_wnids, load_imagenet, load_imagenet_c
from .specs import (
    CORRUPTED_SPECS,
    CORRUPTED_TITLES,
    DATA_SPECS,
    absolute_spec,
    load_corrupted,
    load_dataset,
    parse_spec,
)
from .synthetic import load_synthetic
from .tinyimagenet import load_tinyimagenet, load_tinyimagenet_c

__all__ = [
    "CIFAR10_CLASSES", "CIFAR100_CLASSES", "CORRUPTED_SPECS", "CORRUPTED_TITLES", "DATA_SPECS",
    "DataError", "Dataset", "ImageDecodeError", "absolute_spec", "cache_dir", "channel_stats",
    "decode_image", "imagenet_class_names", "imagenet_wnids", "load_cifar", "load_cifar10c",
    "load_cifar100c", "load_cifar_c", "load_corrupted", "load_dataset", "load_image",
    "load_imagefolder", "load_imagenet", "load_imagenet_c", "load_synthetic",
    "load_tinyimagenet", "load_tinyimagenet_c", "parse_spec", "train_val_split",
]
