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


# ----------------------------------------------------------------------------- glass
def glass_displace_pass(y: torch.Tensor, d: torch.Tensor, m: int) -> torch.Tensor:
    """One pass of x[h, w] = x[h + dy, w + dx] over rows/cols m+1..side-m, descending:
    one gather when offsets point up/left only, else row by row with pointer doubling."""
    n, c, h, w = y.shape
    dx, dy = d[..., 0], d[..., 1]  # (N, hp, wp)
    hs = torch.arange(m + 1, h - m + 1, device=y.device).view(1, -1, 1)
    ws = torch.arange(m + 1, w - m + 1, device=y.device).view(1, 1, -1)
    if bool((d <= 0).all()):
        # Offsets only point up/left, at positions the descending loops have not
        # written yet: the sequential pass equals one gather from its input.
        src = torch.arange(h * w, device=y.device).view(1, h, w).repeat(n, 1, 1)
        src[:, m + 1:h - m + 1, m + 1:w - m + 1] = (hs + dy) * w + (ws + dx)
        flat = y.reshape(n, c, h * w)
        return flat.gather(2, src.view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)
    # General case (ImageNet deltas > 1): row by row, bottom to top. Within a row a pixel
    # copying from its right (dy == 0, dx > 0) gets that pixel's final value, so follow
    # those pointers to their end by pointer doubling; every other read sees the tensor
    # as it is before the row is written.
    y = y.clone()
    wp = w - 2 * m
    cols = torch.arange(wp, device=y.device).view(1, -1)
    for r in range(h - 2 * m - 1, -1, -1):
        row = m + 1 + r
        rdx, rdy = dx[:, r], dy[:, r]
        src = (row + rdy) * w + (m + 1 + cols + rdx)
        vals = y.reshape(n, c, h * w).gather(2, src.view(n, 1, wp).expand(n, c, wp))
        chase = (rdy == 0) & (rdx > 0) & (cols + rdx < wp)
        ptr = torch.where(chase, cols + rdx, cols)
        while True:
            nxt = ptr.gather(1, ptr)
            if torch.equal(nxt, ptr):
                break
            ptr = nxt
        y[:, :, row, m + 1:w - m + 1] = vals.gather(2, ptr.view(n, 1, wp).expand(n, c, wp))
    return y
