"""Noise corruptions (CIFAR-10-C family "noise", plus the extra speckle_noise)."""
from __future__ import annotations

import torch

from ._rng import ImageRNG
from .registry import register_stressor

# Severity tables: row 0 = identity, rows 1..5 = make_cifar_c.py / make_imagenet_c.py.
GAUSSIAN_NOISE = {"cifar": [(0.0,), (0.04,), (0.06,), (0.08,), (0.09,), (0.10,)],
                  "imagenet": [(0.0,), (0.08,), (0.12,), (0.18,), (0.26,), (0.38,)]}


@register_stressor("gaussian_noise", family="noise", tables=GAUSSIAN_NOISE,
                   param_names=("std",), benchmark=True)
def gaussian_noise(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """Additive Gaussian noise of std ``c`` in [0, 1] pixel units."""
    (c,) = p
    return x + c * rng.normal(x.shape[1:], dtype=x.dtype)
