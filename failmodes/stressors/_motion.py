"""ImageMagick 6's MotionBlurImage, batched: the kernel of the ``motion_blur`` corruption
(registered in ``blur.py``) and of snow's streaks (``weather.py``).

Why our own: CIFAR-10-C blurs through Wand/ImageMagick, which we neither want as a
dependency nor could run batched. ImageMagick 6 (magick/effect.c) builds a one-sided
Gaussian of width ``2·ceil(radius)+1``::

    k[i] ∝ exp(-i² / 2σ²),  i = 0 .. width-1          (normalised to sum 1)
    offset[i] = (ceil(i·cos θ - 0.5), ceil(i·sin θ - 0.5))   (x right, y down)
    out(x, y) = Σ_i k[i] · in(x + offset[i].x, y + offset[i].y)   (edge pixels repeat)

and stores each result in a 16-bit quantum (rounded), truncated to 8 bits in the PNG.
Every image of a batch has its own angle; the taps loop, the images do not.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

# float64 elements of padded images per CPU chunk (4 MiB): one chunk's adds stay in
# cache, and fewer, larger adds cost less Python per image, which on two stressor threads
# is GIL time. 2^19 over 2^18 (2000 32-px images, two threads: motion blur 20.1 -> 26.4 k
# img/s, snow 21.7 -> 23.3 k; one thread +5-10 %; at 224 px within noise).
_CPU_CHUNK = 1 << 19
# ImageMagick's MagickEpsilon guards sigma -> 0 in GetMotionBlurKernel.
_MAGICK_EPSILON = 1.0e-12

def kernel_width(radius: float) -> int:
    """GetOptimalKernelWidth1D for radius > 0: 2·ceil(radius) + 1 taps."""
    return int(2.0 * math.ceil(radius) + 1.0)


def motion_kernel(radius: float, sigma: float, dtype=torch.float64,
                  device=None) -> torch.Tensor:
    """The one-sided Gaussian taps (width,), summing to 1; tap 0 is the pixel itself.

    >>> motion_kernel(6, 1).shape
    torch.Size([13])
    """
    width = kernel_width(radius)
    s = sigma if abs(sigma) >= _MAGICK_EPSILON else _MAGICK_EPSILON
    i = torch.arange(width, dtype=torch.float64)
    k = torch.exp(-(i * i) / (2.0 * s * s)) / (math.sqrt(2 * math.pi) * s)
    return (k / k.sum()).to(dtype=dtype, device=device)


def motion_offsets(width: int, angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer tap offsets ``(dx, dy)``, each (N, width), for angles in degrees (N,)."""
    a = angles.to(torch.float64) * (math.pi / 180.0)
    px = (width * torch.sin(a)).unsqueeze(1)
    py = (width * torch.cos(a)).unsqueeze(1)
    hyp = torch.hypot(px, py)
    i = torch.arange(width, dtype=torch.float64, device=angles.device).unsqueeze(0)
    dx = torch.ceil(i * py / hyp - 0.5).long()
    dy = torch.ceil(i * px / hyp - 0.5).long()
    return dx, dy


def motion_blur_u8(x: torch.Tensor, radius: float, sigma: float,
                   angles: torch.Tensor) -> torch.Tensor:
    """ImageMagick 6 (Q16) MotionBlurImage on 8-bit values.

    x: float (N, C, H, W) holding integers 0..255; angles: (N,) degrees.
    Returns float (N, C, H, W) integers 0..255, as the PNG that ImageMagick writes.
    """
    n, c, h, w = x.shape
    k = motion_kernel(radius, sigma).tolist()
    dx, dy = motion_offsets(len(k), angles.to(x.device))
    r = len(k) - 1
    # Sorted by angle, the images that share tap i's offset form contiguous runs: each run
    # is one in-place add of a shifted slice (no gather, no index maps). Taps stay in
    # order, so every pixel sums the same float64 terms in the same order as tap-by-tap
    # gathers would (float64 so that the 16-bit rounding lands where ImageMagick's does).
    order = torch.argsort(angles.to(x.device), stable=True)
    chunk = n if x.device.type != "cpu" else max(1, _CPU_CHUNK // (c * (h + 2 * r) * (w + 2 * r)))
    runs = _tap_runs(dx[order].cpu().numpy(), dy[order].cpu().numpy(), chunk)
    out = torch.empty_like(x)
    for s, plan in runs:
        rows = order[s:s + chunk]
        # Virtual pixels outside the image repeat the edge (ImageMagick's default).
        padded = F.pad(x.index_select(0, rows).to(torch.float64), (r, r, r, r), mode="replicate")
        acc = torch.zeros(len(rows), c, h, w, dtype=torch.float64, device=x.device)
        for i, a, b, ox, oy in plan:
            acc[a:b].add_(padded[a:b, :, r + oy:r + oy + h, r + ox:r + ox + w], alpha=k[i])
        # Q16: ClampToQuantum rounds v·257 to a 16-bit quantum; writing the 8-bit PNG then
        # truncates q/257 (measured on ImageMagick 6.9.11-60 Q16, the reference's version:
        # 92 160 of 92 160 pixels agree).
        q16 = acc.mul_(257.0).add_(0.5).floor_().clamp_(0, 65535)
        out.index_copy_(0, rows, q16.div_(257.0).floor_().to(x.dtype))
    return out


def _tap_runs(dx: np.ndarray, dy: np.ndarray, chunk: int) -> list:
    """[(chunk start, [(tap, a, b, dx, dy), ...]), ...]: for each chunk of the (sorted)
    images and each tap in order, the maximal runs a..b (chunk-relative) of images that
    share that tap's offset."""
    n, t = dx.shape
    pos = np.arange(n)
    start = np.ones((n, t), dtype=bool)
    start[1:] = (dx[1:] != dx[:-1]) | (dy[1:] != dy[:-1])
    start[pos % chunk == 0] = True
    # Order (chunk, tap, image): that is the order the adds must run in.
    img, tap = np.nonzero(start)
    key = (img // chunk) * t + tap
    o = np.lexsort((img, key))
    img, tap, key = img[o], tap[o], key[o]
    end = np.empty_like(img)
    end[:-1] = np.where(key[1:] == key[:-1], img[1:], 0)
    last = np.ones(len(img), dtype=bool)
    last[:-1] = key[1:] != key[:-1]
    end[last] = np.minimum((img[last] // chunk + 1) * chunk, n)
    plans: dict[int, list] = {}
    for i, a, b, ox, oy in zip(tap.tolist(), img.tolist(), end.tolist(),
                               dx[img, tap].tolist(), dy[img, tap].tolist()):
        s = a - a % chunk
        plans.setdefault(s, []).append((i, a - s, b - s, ox, oy))
    return list(plans.items())

