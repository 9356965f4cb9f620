"""Image folders (``ROOT/<split>/<class>/*``), decoded once and cached as uint8 ``.npy``.

The cache key covers the file list with sizes and mtimes, so an edited tree is re-decoded;
an unchanged one loads as a memory map (the 60 000-file CIFAR tree in well under 2 s).
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .dataset import DataError, Dataset, channel_stats

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}
CACHE_VERSION = 1


def cache_dir() -> Path:
    """Where decoded arrays live: $FAILMODES_CACHE or ~/.cache/failmodes."""
    return Path(os.environ.get("FAILMODES_CACHE", Path.home() / ".cache" / "failmodes"))


def split_root(root: Path, split: str) -> Path:
    """``ROOT/split`` when it exists; a tree of class folders alone serves any split."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a directory")
    if (root / split).is_dir():
        return root / split
    subdirs = [d for d in root.iterdir() if d.is_dir()]
    if subdirs and all(_image_files(d) for d in subdirs):
        return root  # a single split: ROOT/<class>/*
    raise DataError(f"{root} has no '{split}/' folder and no class folders with images; "
                    "expected ROOT/{train,test}/<class>/*.jpg")


def _image_files(folder: Path) -> list[os.DirEntry]:
    with os.scandir(folder) as it:
        return sorted((e for e in it if e.is_file()
                       and os.path.splitext(e.name)[1].lower() in IMAGE_EXTENSIONS),
                      key=lambda e: e.name)


def _listing(root: Path) -> tuple[list[str], list[tuple[str, int, int]]]:
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise DataError(f"{root} has no class folders (expected {root}/<class>/*.jpg)")
    files = []
    for label, cls in enumerate(classes):
        entries = _image_files(root / cls)
        for e in entries:
            st = e.stat()
            files.append((f"{cls}/{e.name}", st.st_size, st.st_mtime_ns))
    if not files:
        raise DataError(f"{root} has class folders but no images "
                        f"({', '.join(sorted(IMAGE_EXTENSIONS))})")
    return classes, files


def _decode(path: Path, image_size: int | None) -> np.ndarray | str:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(path) as im:
            im = _to_rgb(im)
            if image_size is not None and im.size != (image_size, image_size):
                im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
            return np.asarray(im, dtype=np.uint8)
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as e:
        return f"{path}: {type(e).__name__}: {e}"


def _to_rgb(im):
    """Any PIL mode (L, LA, P, RGBA, CMYK, I;16, ...) to RGB; alpha composited on black."""
    from PIL import Image
    if im.mode == "RGB":
        return im
    if im.mode in ("RGBA", "LA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
        base = Image.new("RGB", im.size, (0, 0, 0))
        base.paste(im, mask=im.getchannel("A"))
        return base
    if im.mode.startswith("I;16") or im.mode == "I":
        arr = np.asarray(im, dtype=np.float64)
        arr = arr / max(arr.max(), 1.0) * 255.0
        im = Image.fromarray(arr.astype(np.uint8), mode="L")
    return im.convert("RGB")


def load_image(path: str | Path) -> np.ndarray:
    """One image file as uint8 H×W×3 RGB; raises DataError naming the file if unreadable."""
    out = _decode(Path(path), None)
    if isinstance(out, str):
        raise DataError(f"cannot read image {out}")
    return out


def load_imagefolder(root: str | Path, split: str = "test", image_size: int | None = None,
                     name: str | None = None, use_cache: bool = True) -> Dataset:
    """Load ``ROOT/<split>/<class>/*`` (or ``ROOT/<class>/*``) as a Dataset.

    Unreadable files are reported (one warning each, their paths kept in ``.skipped``)
    and left out. Mixed image sizes need ``image_size`` (square resize, bilinear).
    """
    root = Path(root).expanduser().resolve()
    folder = split_root(root, split)
    classes, files = _listing(folder)
    key = hashlib.sha1(json.dumps([CACHE_VERSION, str(folder), image_size, classes, files])
                       .encode()).hexdigest()[:20]
    cdir = cache_dir() / "imagefolder" / key
    if use_cache and (cdir / "meta.json").exists():
        return _from_cache(cdir, name or root.name, split)

    paths = [folder / rel for rel, _, _ in files]
    labels_all = [classes.index(rel.split("/", 1)[0]) for rel, _, _ in files]
    with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 2) * 2)) as pool:
        decoded = list(pool.map(lambda p: _decode(p, image_size), paths, chunksize=256))
    skipped = [d for d in decoded if isinstance(d, str)]
    for msg in skipped:
        warnings.warn(f"skipped unreadable image {msg}", stacklevel=2)
    good = [(d, lab) for d, lab in zip(decoded, labels_all) if not isinstance(d, str)]
    if not good:
        raise DataError(f"no readable images under {folder} ({len(skipped)} unreadable)")
    shapes = {d.shape for d, _ in good}
    if len(shapes) > 1:
        ex = ", ".join(f"{s[1]}×{s[0]}" for s in sorted(shapes)[:3])
        raise DataError(f"{folder} holds images of mixed sizes ({ex}, ...); "
                        "pass --image-size N to resize them all to N×N")
    images = np.stack([d for d, _ in good])
    labels = np.asarray([lab for _, lab in good], dtype=np.int64)
    mean, std = channel_stats(torch.from_numpy(images))
    meta = {"classes": classes, "skipped": skipped, "mean": mean, "std": std,
            "root": str(folder), "n": len(labels)}
    if use_cache:
        _write_cache(cdir, images, labels, meta)
    return Dataset(torch.from_numpy(images), torch.from_numpy(labels), classes,
                   name or root.name, split, mean, std, skipped=skipped)


def _write_cache(cdir: Path, images: np.ndarray, labels: np.ndarray, meta: dict) -> None:
    try:
        cdir.mkdir(parents=True, exist_ok=True)
        for fname, arr in (("images.npy", images), ("labels.npy", labels)):
            tmp = cdir / (fname + ".tmp")
            with open(tmp, "wb") as f:
                np.save(f, arr)
            os.replace(tmp, cdir / fname)
        tmp = cdir / "meta.json.tmp"
        tmp.write_text(json.dumps(meta))
        os.replace(tmp, cdir / "meta.json")  # written last: its presence marks a whole cache
    except OSError as e:  # a full disk must not lose the decoded data set
        warnings.warn(f"could not write the decode cache in {cdir}: {e}", stacklevel=3)


def _from_cache(cdir: Path, name: str, split: str) -> Dataset:
    meta = json.loads((cdir / "meta.json").read_text())
    images = np.load(cdir / "images.npy", mmap_mode="r")
    labels = np.load(cdir / "labels.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # read-only memmap: we never write to it
        img_t = torch.from_numpy(images)
    return Dataset(img_t, torch.from_numpy(labels), meta["classes"], name, split,
                   tuple(meta["mean"]), tuple(meta["std"]), skipped=meta["skipped"])
