"""Data sets as one uint8 tensor each: CIFAR-10/100 and their -C copies, image folders,
ImageNet and ImageNet-C, Tiny-ImageNet(-C), Hugging Face datasets, and a learnable
synthetic set for tests. ``load_dataset(spec)`` is the one entry point; the kinds of spec
are a registry (``failmodes.data.specs``), filled by importing every public module of this
package, and listed in the table below (generated from it). Every file is read by the one
decoder, ``data.decode``.

>>> ds = load_dataset("synthetic", split="test")
>>> ds.images.shape, ds.images.dtype, len(ds.classes)
(torch.Size([2000, 32, 32, 3]), torch.uint8, 10)
"""
from __future__ import annotations

import importlib
import pkgutil

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
    CorruptedSpec,
    DataSpec,
    absolute_spec,
    data_help,
    data_specs_table,
    find_data_spec,
    get_data_spec,
    list_corrupted_specs,
    list_data_specs,
    load_corrupted,
    load_dataset,
    register_data_spec,
)
from .synthetic import load_synthetic
from .tinyimagenet import load_tinyimagenet, load_tinyimagenet_c

__all__ = [
    "CIFAR100_CLASSES", "CIFAR10_CLASSES", "CorruptedSpec", "DataError", "DataSpec", "Dataset",
    "ImageDecodeError", "absolute_spec", "cache_dir", "channel_stats", "data_help",
    "data_specs_table", "decode_image", "find_data_spec", "get_data_spec",
    "imagenet_class_names", "imagenet_wnids", "list_corrupted_specs", "list_data_specs",
    "load_cifar", "load_cifar100c", "load_cifar10c", "load_cifar_c", "load_corrupted",
    "load_dataset", "load_image", "load_imagefolder", "load_imagenet", "load_imagenet_c",
    "load_synthetic", "load_tinyimagenet", "load_tinyimagenet_c", "register_data_spec",
    "train_val_split"
]

# Every public module registers the specs it loads (timm's way, no hand-kept list), so a
# new kind of spec is one new file here.
for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
if __doc__:  # None under python -OO
    __doc__ += "\n" + data_specs_table() + "\n"
