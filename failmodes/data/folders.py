"""Image folders (``ROOT/<split>/<class>/*``), decoded once and cached as uint8 ``.npy``.

The cache key covers the file list with sizes and mtimes, so an edited tree is re-decoded;
an unchanged one loads as a memory map (the 60 000-file CIFAR tree in well under 2 s).
Unreadable files (truncated, not images, decompression bombs) are left out; their list is
kept in ``Dataset.skipped`` and logged on every load, the cached ones too.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..constants import CIFAR10_MEAN, CIFAR10_STD, SUBSET_SEED
from ._cache import cache_dir, cache_lock, decode_files, read_cache, write_cache
from .cifar import CIFAR10_CLASSES
from .dataset import DataError, Dataset, channel_stats, stratified_rows
from .decode import check_image_size, decode_image
from .specs import DataSpec, register_data_spec

log = logging.getLogger("failmodes.data")
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}

__all__ = ["IMAGE_EXTENSIONS", "ImageFolder", "cache_dir", "display_name", "folder_files",
           "image_files", "load_files", "load_image", "load_imagefolder", "report_skipped",
           "split_root"]


def split_root(root: Path, split: str) -> Path:
    """``ROOT/split`` when it exists; a tree of class folders alone serves any split."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a directory")
    if (root / split).is_dir():
        return root / split
    subdirs = [d for d in _subdirs(root)]
    with_images = [d for d in subdirs if image_files(d)]
    if with_images:
        return root  # a single split: ROOT/<class>/*
    raise DataError(f"{root} has no '{split}/' folder and no class folders with images; "
                    "expected ROOT/{train,test}/<class>/*.jpg")


def _subdirs(root: Path) -> list[Path]:
    return sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))


def image_files(folder: Path) -> list[os.DirEntry]:
    """The image files directly in ``folder`` (by extension), sorted by name. An entry that
    cannot be followed (a symlink loop, a link into a folder without permission) is left
    out with a warning naming it; the rest of the folder loads."""
    found, unreadable = [], []
    with os.scandir(folder) as it:
        for e in it:
            if os.path.splitext(e.name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            try:
                if e.is_file():
                    found.append(e)
            except OSError as err:   # ELOOP: a.png -> b.png -> a.png
                unreadable.append(f"{display_name(e.name)} ({err.strerror or err})")
    if unreadable:
        log.warning("skipped %d entr%s under %s that cannot be followed: %s", len(unreadable),
                    "y" if len(unreadable) == 1 else "ies", display_name(str(folder)),
                    "; ".join(unreadable[:3]))
    return sorted(found, key=lambda e: e.name)


def display_name(name: str) -> str:
    r"""A file or folder name as text that is always valid UTF-8: the bytes of a name that
    is not UTF-8 on disk (which Python holds as surrogate escapes) show as ``\xNN``, so the
    folder ``b"caf\xe9"`` becomes the class ``caf\xe9`` (eight characters). Stable: the
    same bytes give the same text, so a class keeps its name in the store, the JSON and
    the report on every run. A UTF-8 name comes back as it is.

    >>> display_name("café")
    'café'
    """
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _listing(root: Path) -> tuple[list[str], list[tuple[Path, int]]]:
    folders = [d.name for d in _subdirs(root)]
    # Class names are text the store, the JSON and the report keep (UTF-8); the folders keep
    # their names on disk.
    classes = [display_name(c) for c in folders]
    if len(set(classes)) != len(classes):
        raise DataError(f"{root}: two class folders have the same name once shown as text; "
                        "rename one")
    if not classes:
        raise DataError(f"{root} has no class folders (expected {root}/<class>/*.jpg)")
    files, empty = [], []
    for label, cls in enumerate(folders):
        entries = image_files(root / cls)
        if not entries:
            empty.append(classes[label])
        files += [(Path(e.path), label) for e in entries]
    if not files:
        raise DataError(f"{root} has class folders but no images "
                        f"({', '.join(sorted(IMAGE_EXTENSIONS))})")
    if empty:
        raise DataError(f"class folder {root / empty[0]} holds no images "
                        f"({len(empty)} empty of {len(classes)}); class indices follow the "
                        "folder names, so add its images or remove the folder")
    return classes, files


def load_image(path: str | Path) -> np.ndarray:
    """One image file as uint8 H×W×3 RGB (the one decoder); raises DataError naming it."""
    return decode_image(Path(path))


def load_imagefolder(root: str | Path, split: str = "test", image_size: int | None = None,
                     name: str | None = None, use_cache: bool = True,
                     subset: int | None = None) -> Dataset:
    """Load ``ROOT/<split>/<class>/*`` (or ``ROOT/<class>/*``) as a Dataset.

    Image *i* is the *i*-th file of the class folders in sorted order, each folder's files
    sorted by name (``folder_files`` lists them). Unreadable files are left out (their
    messages in ``.skipped``, logged on each load). Mixed image sizes need ``image_size``
    (square resize, bilinear). ``subset``: decode only the images ``Dataset.subset(subset)``
    keeps, picked from the file list.
    """
    image_size = check_image_size(image_size)
    root = Path(root).expanduser().resolve()
    folder = split_root(root, split)
    classes, files = _listing(folder)
    return load_files(files, classes, name=name or root.name, split=split, where=folder,
                      image_size=image_size, use_cache=use_cache, subset=subset)


def folder_files(root: str | Path, split: str = "test") -> list[str]:
    """The file of each image of ``load_imagefolder(root, split)``, in index order, as
    ``class/file`` text (``display_name``: valid UTF-8 whatever the names on disk); no
    image is decoded. With unreadable files left out of a load, its indices skip them."""
    folder = split_root(Path(root).expanduser().resolve(), split)
    classes, files = _listing(folder)
    return [f"{classes[label]}/{display_name(p.name)}" for p, label in files]


def load_files(files: Sequence[tuple[Path, int]], classes: list[str], *, name: str,
               split: str, where: Path, image_size: int | None = None,
               resize: str = "square", use_cache: bool = True,
               stats: tuple[tuple, tuple] | None = None, subset: int | None = None,
               subset_seed: int = SUBSET_SEED) -> Dataset:
    """Decode (path, label) pairs into a Dataset through the decode cache.

    where: the folder named in messages and in the cache key. resize: ``square`` or
    ``crop`` (see ``decode_image``). stats: fixed (mean, std) for a known data set;
    measured on the images otherwise. subset: decode only the rows ``Dataset.subset(n,
    subset_seed)`` would keep (indices and ``full_size`` say where they came from).
    """
    image_size = check_image_size(image_size)
    rows = torch.arange(len(files))
    if subset is not None and subset < len(files):
        all_labels = torch.as_tensor([lab for _, lab in files], dtype=torch.int64)
        rows = stratified_rows(all_labels, subset, len(classes), subset_seed)
        n_full, files = len(files), [files[i] for i in rows.tolist()]
    else:
        n_full = len(files)
    stamp = []
    for p, _ in files:
        st = os.stat(p)
        stamp.append((str(p), st.st_size, st.st_mtime_ns))
    key = hashlib.sha1(json.dumps([str(where), image_size, resize, classes, stamp,
                                   [lab for _, lab in files]]).encode()).hexdigest()[:20]
    cdir = cache_dir() / "imagefolder" / key
    with cache_lock(cdir if use_cache else None):  # one builder; the rest wait, then read
        cached = read_cache(cdir) if use_cache else None
        if cached is not None:
            images, labels, meta = cached
            skipped, kept = meta["skipped"], meta["kept"]
            mean, std = tuple(meta["mean"]), tuple(meta["std"])
        else:
            shape = (image_size, image_size) if image_size else None
            decode = partial(decode_image, size=image_size, resize=resize)
            images, kept, skipped = decode_files([p for p, _ in files], decode, shape,
                                                 cdir if use_cache else None, str(where))
            if not kept:
                raise DataError(f"no readable images under {where} ({len(skipped)} unreadable, "
                                f"e.g. {skipped[0] if skipped else '-'})")
            labels = np.asarray([files[i][1] for i in kept], dtype=np.int64)
            mean, std = stats or channel_stats(torch.from_numpy(np.asarray(images[:10000])))
            meta = {"classes": classes, "skipped": skipped, "mean": mean, "std": std,
                    "root": str(where), "kept": kept}
            if use_cache:
                images = write_cache(cdir, images, labels, meta)
    report_skipped(skipped, where)
    return Dataset(_as_tensor(images), torch.from_numpy(np.asarray(labels)), list(classes),
                   name, split, tuple(mean), tuple(std),
                   indices=rows[kept] if n_full != len(rows) else None,
                   skipped=list(skipped), full_size=n_full if n_full != len(rows) else None)


def report_skipped(skipped: Sequence[str], where) -> None:
    """One log line (logger ``failmodes.data``) naming the files left out, on every load."""
    if not skipped:
        return
    more = f" (+{len(skipped) - 3} more)" if len(skipped) > 3 else ""
    log.warning("skipped %d unreadable image%s under %s: %s%s", len(skipped),
                "s" if len(skipped) > 1 else "", where, "; ".join(skipped[:3]), more)


def _as_tensor(images: np.ndarray) -> torch.Tensor:
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # read-only memmap: never written to
        return torch.from_numpy(images)


@register_data_spec
class ImageFolder(DataSpec):
    """``imagefolder:PATH``, or any existing folder given as it is (tried after every
    other spec, so a folder named ``cifar10`` still means CIFAR-10)."""

    name = "imagefolder"
    forms = ("imagefolder:PATH", "PATH")
    what = "PATH/<split>/<class>/* or PATH/<class>/* (PATH alone: an existing folder)"
    splits = "any"
    needs_arg = True
    folder_arg = True
    fallback = True

    def matches(self, spec: str) -> bool:
        return super().matches(spec) or os.path.isdir(os.path.expanduser(str(spec)))

    def argument(self, spec: str) -> str:
        return super().argument(spec) if super().matches(spec) else str(spec)

    def absolute(self, spec: str) -> str:
        if super().matches(spec):
            return super().absolute(spec)
        if ":" in str(spec) or not Path(spec).expanduser().is_dir():
            return spec
        return str(Path(spec).expanduser().resolve())

    decodes_subset = True

    def load(self, arg: str, split: str, *, image_size: int | None = None,
             download: bool = True) -> Dataset:
        """The folder; a CIFAR-10 tree (its 10 class names) keeps CIFAR-10's name and stats."""
        return self._named(load_imagefolder(arg, split, image_size))

    def load_subset(self, arg: str, split: str, subset: int, *,
                    image_size: int | None = None) -> Dataset:
        return self._named(load_imagefolder(arg, split, image_size, subset=subset))

    @staticmethod
    def _named(ds: Dataset) -> Dataset:
        if sorted(ds.classes) == sorted(CIFAR10_CLASSES):
            ds.name, ds.mean, ds.std = "cifar10", CIFAR10_MEAN, CIFAR10_STD
        return ds
