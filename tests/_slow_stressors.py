"""Slow, obvious reference implementations of the stressor ops that have fast paths.

Each function here is the op as it was before its fast path (copied, not imported), so
tests/test_stressors_fast.py can require the fast path to give the very same bits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from failmodes.stressors._motion import motion_kernel, motion_offsets


def motion_blur_u8(x: torch.Tensor, radius: float, sigma: float,
                   angles: torch.Tensor) -> torch.Tensor:
    """ImageMagick 6 (Q16) MotionBlurImage on 8-bit values: every tap a gather of every image."""
    n, c, h, w = x.shape
    k = motion_kernel(radius, sigma).tolist()
    dx, dy = motion_offsets(len(k), angles.to(x.device))
    r = len(k) - 1
    padded = F.pad(x.to(torch.float64), (r, r, r, r), mode="replicate")
    windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # (N, C, 2r+1, 2r+1, H, W)
    images = torch.arange(n, device=x.device)
    acc = torch.zeros(n, c, h, w, dtype=torch.float64, device=x.device)
    for i, ki in enumerate(k):
        acc.add_(windows[images, :, r + dy[:, i], r + dx[:, i]], alpha=ki)
    q16 = torch.floor(acc * 257.0 + 0.5).clamp_(0, 65535)
    return torch.floor(q16 / 257.0).to(x.dtype)
