"""Write a data set's corrupted copies as a released -C tree,
``ROOT/<corruption>/<severity>/<class>/<index>.JPEG`` (JPEG quality 85, as ImageNet-C).

The tree reads back with ``imagenetc:ROOT`` (WordNet-id class folders) or
``tinyimagenetc:ROOT``; image *i* is corrupted with its dataset index, so an on-the-fly
cell with the same seed and ``--finish jpeg85`` sees the very same pixels.

>>> write_corrupted_tree(ds, "out/imagenet-c", ["fog"], [3], wnids)   # doctest: +SKIP
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import torch

from .._atomic import save_atomic
from .finish import JPEG_QUALITY
from .registry import get_stressor


def write_corrupted_tree(ds, root: str | Path, corruptions: Sequence[str],
                         severities: Sequence[int], folder_names: Sequence[str], *,
                         seed: int = 0, batch: int = 64) -> int:
    """Corrupt ``ds`` (a failmodes Dataset) and save each image as
    ``root/<corruption>/<severity>/<folder_names[label]>/<index>.JPEG``; returns the count."""
    from PIL import Image
    root = Path(root)
    n = 0
    for name in corruptions:
        st = get_stressor(name)
        for sev in severities:
            for s in range(0, len(ds), batch):
                x = ds.float_batch(s, min(len(ds), s + batch))
                idx = ds.indices[s:s + batch]
                y = st(x, float(sev), seed=seed, indices=idx)
                arr = (y * 255).round().to("cpu", torch.uint8).permute(0, 2, 3, 1).numpy()
                for a, i, lab in zip(arr, idx.tolist(), ds.labels[s:s + batch].tolist(),
                                         strict=True):
                    save_atomic(root / name / str(int(sev)) / folder_names[lab] / f"{i:08d}.JPEG",
                                functools.partial(_save_jpeg, Image.fromarray(a)))
                    n += 1
    return n


def _save_jpeg(img, f) -> None:
    img.save(f, format="JPEG", quality=JPEG_QUALITY, optimize=True)
