"""Parametric sweeps: stressors whose ``severity`` is a value in natural units.

Each sweep has an identity value (the clean image), a range, and rounds to the nearest
8-bit level (there is no reference to mirror, so no truncation). A sweep is written
``name=start:stop:step`` or ``name=v1,v2,...``:

>>> from failmodes.stressors import get_stressor, parse_sweep
>>> parse_sweep("rotation=-90:90:45")
('rotation', [-90.0, -45.0, 0.0, 45.0, 90.0])
>>> get_stressor("rotation")(torch.rand(2, 3, 32, 32), 30.0).shape
torch.Size([2, 3, 32, 32])
"""
from __future__ import annotations

import io
import math

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..constants import IMAGENET_STD  # noise added after ImageNet normalisation
from ._rng import ImageRNG
from .blur import gaussian_filter
from .registry import SWEEP_FAMILY, register_stressor


def _sweep(name: str, *, unit: str, value_range: tuple[float, float], identity: float,
           description: str, random: bool = True):
    # Every sweep is filed alike: family "sweep", rounded to the nearest 8-bit level.
    return register_stressor(name, family=SWEEP_FAMILY, unit=unit, value_range=value_range,
                             identity=identity, description=description, rounding="round",
                             random=random)


@_sweep("gaussian_noise_std", unit="std (pixel, [0,1] scale)",
        value_range=(0.0, 1.0), identity=0.0,
        description="Additive Gaussian noise, std in [0, 1] pixel units, every channel alike.")
def gaussian_noise_std(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    (std,) = p
    return x + std * rng.normal(x.shape[1:], dtype=x.dtype)


@_sweep("gaussian_noise_std_normalized", unit="std (ImageNet-normalised units)",
        value_range=(0.0, 4.0), identity=0.0,
        description="Gaussian noise of this std added after ImageNet normalisation: "
                    "pixel std = value x (0.229, 0.224, 0.225) per RGB channel.")
def gaussian_noise_std_normalized(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    (std,) = p
    scale = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1) * std
    return x + scale * rng.normal(x.shape[1:], dtype=x.dtype)


@_sweep("rotation", random=False, unit="degrees (counter-clockwise)",
        value_range=(-360.0, 360.0), identity=0.0,
        description="Rotation about the image centre, bilinear; corners outside "
                    "the source are filled with black (0).")
def rotation(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    (deg,) = p
    n, _, h, w = x.shape
    a = math.radians(deg)
    cos, sin = math.cos(a), math.sin(a)
    # affine_grid maps output to input in [-1, 1] coordinates; the H/W factors keep the
    # rotation rigid on non-square images. Positive angles turn the content
    # counter-clockwise on screen (y points down), as torchvision's rotate.
    theta = torch.tensor([[cos, -sin * h / w, 0.0], [sin * w / h, cos, 0.0]],
                         dtype=x.dtype, device=x.device).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@_sweep("gaussian_blur_sigma", random=False, unit="sigma (pixels)",
        value_range=(0.0, 20.0), identity=0.0,
        description="Gaussian blur of this std in pixels (truncated at 4 sigma, "
                    "edge pixels repeated), as gaussian_blur.")
def gaussian_blur_sigma(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    (sigma,) = p
    return gaussian_filter(x, sigma)


@_sweep("brightness_shift", random=False, unit="added intensity ([0,1] scale)",
        value_range=(-1.0, 1.0), identity=0.0,
        description="Adds the value to every pixel and channel, then clips to [0, 1].")
def brightness_shift(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    (shift,) = p
    return x + shift


@_sweep("contrast_factor", random=False, unit="factor",
        value_range=(0.0, 10.0), identity=1.0,
        description="Scales each channel around its per-image mean (as CIFAR-10-C "
                    "contrast): 0 = flat mean colour, 1 = unchanged, >1 = more.")
def contrast_factor(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    (f,) = p
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * f + mean


@_sweep("jpeg_quality", random=False, unit="PIL JPEG quality",
        value_range=(1.0, 101.0), identity=101.0,
        description="PIL JPEG round trip at this quality (rounded to an integer, "
                    "1-100; 101 = no compression, the clean image).")
def jpeg_quality(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    (q,) = p
    q = int(round(q))
    if q > 100:
        return x
    # JPEG is libjpeg through PIL, so this step runs per image on CPU.
    u8 = (x * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = np.empty_like(u8)
    for i, img in enumerate(u8):
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="JPEG", quality=q)
        buf.seek(0)
        out[i] = np.asarray(Image.open(buf).convert("RGB"))
    return torch.from_numpy(out).to(x.device).permute(0, 3, 1, 2).to(x.dtype) / 255.0


@_sweep("occlusion", random=False, unit="fraction of image area",
        value_range=(0.0, 1.0), identity=0.0,
        description="A centred mid-grey (0.5) rectangle of the image's aspect covering "
                    "this fraction of the area; partial edge pixels are blended, so "
                    "the covered area is exact.")
def occlusion(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    (frac,) = p
    h, w = x.shape[-2:]
    side = math.sqrt(frac)
    cover = _coverage(h, side * h, x).view(-1, 1) * _coverage(w, side * w, x).view(1, -1)
    return x * (1 - cover) + 0.5 * cover


def _coverage(n: int, length: float, like: torch.Tensor) -> torch.Tensor:
    # Overlap of each pixel [i, i+1) with the centred interval of this length.
    lo, hi = (n - length) / 2, (n + length) / 2
    i = torch.arange(n, dtype=like.dtype, device=like.device)
    return (torch.clamp(i + 1, max=hi) - torch.clamp(i, min=lo)).clamp(0, 1)
