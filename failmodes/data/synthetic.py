"""A small, learnable, procedurally generated 10-class data set at 32×32.

Each image is one object-centred pattern (a shape or a texture patch) in a random colour
on a random, mildly textured background, with random position and scale. A tiny CNN
learns it to >80 % in well under a minute on a CPU, so tests can assert real learning
and real degradation under corruption without downloading anything.
"""
from __future__ import annotations

import math
from functools import lru_cache

import torch

from .dataset import Dataset, channel_stats
from .specs import DataSpec, register_data_spec

CLASSES = ["disk", "square", "triangle", "plus", "ring",
           "hbars", "vbars", "checker", "diagonal", "xcross"]
SIZES = {"train": 6000, "test": 2000}
SPLIT_SEEDS = {"train": 1, "test": 2}


@lru_cache(maxsize=8)
def _cached(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    # Generation costs seconds and tests load the same split many times; callers never
    # write into a Dataset's images, so sharing the tensors is safe.
    return make_synthetic(n, size, seed)


def make_synthetic(n: int, size: int = 32, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images (uint8 n×size×size×3) and labels (int64 n), balanced, deterministic."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % len(CLASSES)
    labels = labels[torch.randperm(n, generator=g)]

    def rand(*shape):
        return torch.rand(*shape, generator=g)

    # Coordinates in units of the image side, centred on a jittered object centre.
    coords = (torch.arange(size, dtype=torch.float32) + 0.5) / size
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    cy = 0.5 + (rand(n, 1, 1) - 0.5) * 0.25
    cx = 0.5 + (rand(n, 1, 1) - 0.5) * 0.25
    r = 0.22 + rand(n, 1, 1) * 0.12  # object half-size, fraction of the side
    dy, dx = (yy - cy) / r, (xx - cx) / r
    inside = (dy.abs() <= 1) & (dx.abs() <= 1)
    period = 0.45 + rand(n, 1, 1) * 0.2  # texture period, in object half-sizes

    masks = torch.stack([
        dy ** 2 + dx ** 2 <= 1,                                                # disk
        (dy.abs() <= 0.8) & (dx.abs() <= 0.8),                                 # square
        (dy <= 0.8) & (dy >= -0.9) & (dx.abs() <= (dy + 0.9) * 0.55),          # triangle
        ((dy.abs() <= 0.28) | (dx.abs() <= 0.28)) & inside,                    # plus
        ((dy ** 2 + dx ** 2) <= 1) & ((dy ** 2 + dx ** 2) >= 0.4),             # ring
        (torch.frac(dy / period) < 0.5) & inside,                              # hbars
        (torch.frac(dx / period) < 0.5) & inside,                              # vbars
        ((torch.floor(dy / period) + torch.floor(dx / period)) % 2 == 0) & inside,  # checker
        (torch.frac((dx + dy) / (period * 1.4)) < 0.5) & inside,               # diagonal
        (((dx - dy).abs() <= 0.3) | ((dx + dy).abs() <= 0.3)) & inside,        # xcross
    ], dim=1)  # n×10×H×W
    mask = masks[torch.arange(n), labels].float().unsqueeze(-1)  # n×H×W×1

    # Foreground and background colours kept apart in brightness so the shape is visible.
    bg = rand(n, 1, 1, 3) * 0.6
    fg = (bg + 0.35 + rand(n, 1, 1, 3) * 0.3) % 1.0
    flip = rand(n, 1, 1, 1) < 0.5
    bg, fg = torch.where(flip, fg, bg), torch.where(flip, bg, fg)
    phase = rand(n, 1, 1, 1) * 2 * math.pi
    texture = 0.06 * torch.sin(yy.unsqueeze(-1) * 9 + phase) * torch.cos(xx.unsqueeze(-1) * 7)
    img = bg + texture + mask * (fg - bg) + (rand(n, size, size, 3) - 0.5) * 0.08
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), labels.long()


def load_synthetic(split: str = "test", n: int | None = None, size: int = 32) -> Dataset:
    """The synthetic data set; ``split`` is train or test (different seeds, no overlap)."""
    from .dataset import DataError
    if split not in SIZES:
        raise DataError(f"synthetic: unknown split {split!r}; choose train or test")
    images, labels = _cached(n or SIZES[split], size, SPLIT_SEEDS[split])
    mean, std = channel_stats(images)
    return Dataset(images, labels, list(CLASSES), "synthetic", split, mean, std)


@register_data_spec
class Synthetic(DataSpec):
    name = "synthetic"
    forms = ("synthetic",)
    what = "the learnable 32 px, 10-class test set (generated, no download)"

    def load(self, arg: str, split: str, *, image_size: int | None = None,
             download: bool = True) -> Dataset:
        return load_synthetic(split)
