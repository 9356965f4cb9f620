"""Noise corruptions (CIFAR-10-C family "noise", plus the extra speckle_noise)."""
from __future__ import annotations

import math

import torch

from ._rng import ImageRNG
from .registry import register_stressor

# Severity tables: row 0 = identity, rows 1..5 = make_cifar_c.py / make_imagenet_c.py.
GAUSSIAN_NOISE = {"cifar": [(0.0,), (0.04,), (0.06,), (0.08,), (0.09,), (0.10,)],
                  "imagenet": [(0.0,), (0.08,), (0.12,), (0.18,), (0.26,), (0.38,)],
                  "tinyimagenet": [(0.0,), (0.04,), (0.08,), (0.12,), (0.15,), (0.18,)]}


@register_stressor("gaussian_noise", family="noise", tables=GAUSSIAN_NOISE,
                   param_names=("std",), benchmark=True, chunk_scale=4)
def gaussian_noise(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """Additive Gaussian noise of std ``c`` in [0, 1] pixel units."""
    (c,) = p
    return x + c * rng.normal(x.shape[1:], dtype=x.dtype)


# Photons per unit intensity; fewer photons = more noise. Row 0 is infinitely many photons
# (no noise): the registry interpolates an infinite identity entry reciprocally, so
# severity t in (0, 1) uses 500 / t photons.
SHOT_NOISE = {"cifar": [(math.inf,), (500.0,), (250.0,), (100.0,), (75.0,), (50.0,)],
              "imagenet": [(math.inf,), (60.0,), (25.0,), (12.0,), (5.0,), (3.0,)],
              "tinyimagenet": [(math.inf,), (250.0,), (100.0,), (50.0,), (30.0,), (15.0,)]}


@register_stressor("shot_noise", family="noise", tables=SHOT_NOISE,
                   param_names=("photons",), benchmark=True, chunk_scale=4)
def shot_noise(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """Poisson (photon-counting) noise: ``poisson(x * c) / c`` with ``c`` photons."""
    (c,) = p
    # The reference reads 8-bit images, so 256 rates: exact table sampling. Off-grid
    # input (a float resize) is rounded to 8 bits first, at most 0.5/255 away, far below
    # the noise (std sqrt(x / c) = 0.03 at mid grey at the mildest CIFAR level).
    levels = torch.round(x * 255.0).to(torch.int32)
    lam = torch.arange(256, device=x.device, dtype=torch.float64) * (c / 255.0)
    counts = rng.poisson_levels(levels, lam)
    return counts / c


# Fraction of elements (each channel on its own) replaced, half by 1 (salt), half by 0.
IMPULSE_NOISE = {"cifar": [(0.0,), (0.01,), (0.02,), (0.03,), (0.05,), (0.07,)],
                 "imagenet": [(0.0,), (0.03,), (0.06,), (0.09,), (0.17,), (0.27,)],
                 "tinyimagenet": [(0.0,), (0.01,), (0.02,), (0.05,), (0.08,), (0.14,)]}


@register_stressor("impulse_noise", family="noise", tables=IMPULSE_NOISE,
                   param_names=("amount",), benchmark=True, chunk_scale=4)
def impulse_noise(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """Salt-and-pepper noise as scikit-image 0.13's ``random_noise(mode='s&p')``."""
    (amount,) = p
    # One uniform per element: [0, a/2) salt, [a/2, a) pepper (salt_vs_pepper = 0.5).
    u = rng.uniform(x.shape[1:])
    y = torch.where(u < amount * 0.5, 1.0, x)
    return torch.where((u >= amount * 0.5) & (u < amount), 0.0, y)


SPECKLE_NOISE = {"cifar": [(0.0,), (0.06,), (0.10,), (0.12,), (0.16,), (0.20,)],
                 "imagenet": [(0.0,), (0.15,), (0.20,), (0.35,), (0.45,), (0.60,)],
                 "tinyimagenet": [(0.0,), (0.15,), (0.20,), (0.25,), (0.30,), (0.35,)]}


@register_stressor("speckle_noise", family="noise", tables=SPECKLE_NOISE,
                   param_names=("std",), benchmark=False, chunk_scale=4)
def speckle_noise(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """Multiplicative Gaussian noise: ``x + x * N(0, c)``."""
    (c,) = p
    return x + x * (c * rng.normal(x.shape[1:], dtype=x.dtype))
