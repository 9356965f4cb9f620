"""Finishing steps for stressed images: what the released corrupted sets did after the
corruption, before the files were written.

``jpeg85``: the PIL JPEG quality-85 save every ImageNet-C and Tiny-ImageNet-C file went
through (``Image.save(path, quality=85, optimize=True)``; ``optimize`` only changes the
Huffman tables, not the pixels). Finishing on-the-fly cells this way makes them
comparable with the released files, whose JPEG loss is otherwise mixed into the
"official vs on-the-fly" difference. CIFAR-10/100-C were stored as raw uint8: no finish.

>>> x = torch.rand(2, 3, 32, 32)
>>> finish_images(x, "jpeg85").shape
torch.Size([2, 3, 32, 32])
"""
from __future__ import annotations

import torch

from .registry import StressorError, get_stressor

FINISHES = ("none", "jpeg85")
JPEG_QUALITY = 85  # make_imagenet_c.py / make_tinyimagenet_c.py: save(..., quality=85)


def check_finish(name: str) -> str:
    if name not in FINISHES:
        raise StressorError(f"unknown finish {name!r}; choose from {', '.join(FINISHES)}")
    return name


def finish_images(x: torch.Tensor, name: str = "none") -> torch.Tensor:
    """float N×3×H×W in [0, 1] after the finish ``name`` (same shape, dtype, device)."""
    if check_finish(name) == "none":
        return x
    # The jpeg_compression op is the one PIL JPEG codec path of the library.
    op = get_stressor("jpeg_compression").op
    return op(x, (JPEG_QUALITY,), None).to(x.dtype)  # type: ignore[arg-type]  # no randomness
