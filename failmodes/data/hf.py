"""Hugging Face datasets: ``hf:NAME[:split]`` from the hub or ``hf:LOCAL_PATH`` saved with
``save_to_disk``, through the ``datasets`` library (``pip install failmodes[hf]``).

The image column is the one with an ``Image`` feature, the label column the one with a
``ClassLabel`` feature (class names from it); name them when there are several or none:
``hf:NAME:split?image=img&label=fine_label``. Images are decoded by failmodes' own
decoder from the stored bytes (same alpha, 16-bit and EXIF rules as files), in threads,
into the decode cache keyed by the dataset's fingerprint.
"""
from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np
import torch

from ._cache import cache_dir, cache_lock, decode_files, read_cache, write_cache
from .dataset import DataError, Dataset, channel_stats
from .decode import check_image_size, decode_image
from .folders import _as_tensor, report_skipped
from .specs import DataSpec, register_data_spec

SPLIT_ALIASES = {"test": ("test", "validation", "valid", "val"), "val": ("validation", "val")}


@register_data_spec
class HuggingFace(DataSpec):
    name = "hf"
    forms = ("hf:NAME[:split]", "hf:PATH")
    what = "a Hugging Face dataset (hub or save_to_disk folder; ?image=COL&label=COL)"
    splits = "in the spec, else the split asked"
    needs_arg = True

    def absolute(self, spec: str) -> str:
        # A saved folder is made absolute, its ?query kept; a hub name stays as it is.
        path, q, query = str(spec).partition(":")[2].partition("?")
        if path and os.path.exists(os.path.expanduser(path)):
            return f"hf:{Path(path).expanduser().resolve()}{q}{query}"
        return spec

    def load(self, arg: str, split: str, *, image_size: int | None = None,
             download: bool = True) -> Dataset:
        return load_hf(arg, split, image_size)


def parse_hf_spec(arg: str, split: str) -> tuple[str, str, dict[str, str]]:
    """``NAME[:split][?image=..&label=..]`` -> (name or path, split, column names)."""
    arg, _, query = arg.partition("?")
    opts = dict(parse_qsl(query, keep_blank_values=True))
    bad = set(opts) - {"image", "label"}
    if bad:
        raise DataError(f"hf:{arg}: unknown option {sorted(bad)[0]!r}; use ?image=COL&label=COL")
    name = arg
    if not os.path.exists(arg) and ":" in arg:
        name, _, split = arg.rpartition(":")
    if not name:
        raise DataError("hf: needs a dataset name or a saved folder, e.g. hf:uoft-cs/cifar10:test")
    return name, split, opts


def load_hf(arg: str, split: str = "test", image_size: int | None = None,
            use_cache: bool = True) -> Dataset:
    """A Hugging Face dataset split as a Dataset (see the module docstring)."""
    image_size = check_image_size(image_size)
    name, split, opts = parse_hf_spec(arg, split)
    ds = _open(name, split)
    image_col, label_col, classes = _columns(ds, name, opts)
    import datasets
    ds = ds.cast_column(image_col, datasets.Image(decode=False))
    key = hashlib.sha1(repr((ds._fingerprint, image_col, label_col, image_size)).encode())
    cdir = cache_dir() / "hf" / key.hexdigest()[:20]
    where = f"hf:{name}:{split}"
    with cache_lock(cdir if use_cache else None):  # one builder; the rest wait, then read
        cached = read_cache(cdir) if use_cache else None
        if cached is not None:
            images, labels, meta = cached
            skipped, mean, std = meta["skipped"], meta["mean"], meta["std"]
        else:
            column = ds[image_col]
            raw_labels = np.asarray(ds[label_col], dtype=np.int64)

            def decode(i: int) -> np.ndarray:
                item = column[i] or {}
                src = io.BytesIO(item["bytes"]) if item.get("bytes") else item.get("path")
                if src is None:
                    from .decode import ImageDecodeError
                    raise ImageDecodeError(f"{where} row {i}: no image")
                if isinstance(src, io.BytesIO):
                    src.name = f"{where} row {i}"
                return decode_image(src, size=image_size)

            shape = (image_size, image_size) if image_size else None
            images, kept, skipped = decode_files(list(range(len(ds))), decode, shape,
                                                 cdir if use_cache else None, where)
            if not kept:
                raise DataError(f"{where}: no readable images ({len(skipped)} unreadable)")
            labels = raw_labels[kept]
            if labels.min() < 0:
                raise DataError(f"{where}: column {label_col!r} holds unlabelled rows (-1); "
                                "pick a labelled split")
            mean, std = channel_stats(torch.from_numpy(np.asarray(images[:10000])))
            if use_cache:
                images = write_cache(cdir, images, labels,
                                     {"classes": classes, "skipped": skipped, "mean": mean,
                                      "std": std, "root": where})
    report_skipped(skipped, where)
    short = Path(name).name if os.path.exists(name) else name.split("/")[-1]
    return Dataset(_as_tensor(images), torch.from_numpy(np.asarray(labels)), list(classes),
                   f"hf-{short}", split, tuple(mean), tuple(std), skipped=list(skipped))


def _open(name: str, split: str):
    try:
        import datasets
    except ImportError:
        raise DataError("hf: data needs the datasets library: pip install 'failmodes[hf]'"
                        ) from None
    if os.path.exists(name):
        try:
            obj = datasets.load_from_disk(name)
        except (FileNotFoundError, ValueError, OSError) as e:
            raise DataError(f"{name} is not a dataset saved with save_to_disk ({e})") from None
    else:
        try:
            obj = datasets.load_dataset(name)
        except Exception as e:  # the hub client raises many types (offline, unknown name)
            raise DataError(f"cannot load hf:{name} ({type(e).__name__}: "
                            f"{str(e).splitlines()[0][:120] if str(e) else ''}); offline? "
                            "save it with datasets' save_to_disk and pass hf:LOCAL_PATH"
                            ) from None
    if isinstance(obj, datasets.DatasetDict):
        for s in (split,) + SPLIT_ALIASES.get(split, ()):
            if s in obj:
                return obj[s]
        raise DataError(f"hf:{name} has no split {split!r} (it has {', '.join(obj)})")
    return obj


def _columns(ds, name: str, opts: dict[str, str]) -> tuple[str, str, list[str]]:
    import datasets
    feats = ds.features
    for role in ("image", "label"):
        if role in opts and opts[role] not in feats:
            raise DataError(f"hf:{name}: no column {opts[role]!r} (columns: {', '.join(feats)})")
    images = [c for c, f in feats.items() if isinstance(f, datasets.Image)]
    labels = [c for c, f in feats.items() if isinstance(f, datasets.ClassLabel)]
    image_col = opts.get("image") or _one(images, "image", "an Image feature", name, feats)
    label_col = opts.get("label") or _one(labels, "label", "a ClassLabel feature", name, feats)
    f = feats[label_col]
    if label_col == image_col:
        raise DataError(f"hf:{name}: {label_col!r} is the image column; name a class label "
                        f"column: ?label=COLUMN (columns: {', '.join(feats)})")
    if isinstance(f, datasets.ClassLabel):
        classes = list(f.names)
    else:
        # Checked on the feature before any value is read: a column of images or text as
        # "labels" would otherwise be decoded whole first.
        if not (isinstance(f, datasets.Value) and f.dtype.startswith(("int", "uint"))):
            kind = type(f).__name__ + (f"({f.dtype})" if isinstance(f, datasets.Value) else "")
            raise DataError(f"hf:{name}: label column {label_col!r} holds {kind}, not class "
                            "labels; name a ClassLabel or integer column: ?label=COLUMN "
                            f"(columns: {', '.join(feats)})")
        values = np.asarray(ds[label_col])
        if values.dtype.kind not in "iu":
            raise DataError(f"hf:{name}: label column {label_col!r} is not integer class ids")
        classes = [f"class_{i}" for i in range(int(values.max()) + 1)]
    return image_col, label_col, classes


def _one(cols: list[str], role: str, what: str, name: str, feats) -> str:
    if len(cols) == 1:
        return cols[0]
    which = f"several ({', '.join(cols)})" if cols else "none"
    raise DataError(f"hf:{name}: {which} of its columns have {what}; name the {role} "
                    f"column: hf:{name}?{role}=COLUMN (columns: {', '.join(feats)})")
