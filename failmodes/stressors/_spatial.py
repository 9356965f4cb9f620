"""Batched ports of the spatial primitives the reference generator borrows from
scipy.ndimage, OpenCV and PIL, with their border and rounding conventions.

Why our own: the reference calls these per image on CPU; a batched torch port runs a
whole batch at once on any device, and keeping each library's exact border rule,
coordinate mapping and rounding is what makes the outputs match CIFAR-10-C's.
All functions take float tensors ``(..., H, W)`` unless said otherwise.
"""
from __future__ import annotations

import functools
import math

import numpy as np
import torch
import torch.nn.functional as F


def to_u8(x: torch.Tensor) -> torch.Tensor:
    """[0, 1] floats to the 8-bit values (0..255, rounded, still float) that the
    reference's PIL images hold."""
    return x.clamp(0, 1).mul_(255.0).round_()


def unit_to_u8(x: torch.Tensor) -> torch.Tensor:
    """``to_u8(x)`` as a uint8 tensor, for ``x`` in [0, 1] (a Stressor's checked input).

    Why OpenCV on the CPU: its one SIMD pass (x * 255 in float32, rounded half to even,
    saturated) gives torch's four passes' bytes (clamp, mul, round, cast: a test checks,
    ties included) in ~1/10 of the time at 224 px, where it was a third of pixelate.
    Its absolute value is a no-op on [0, 1], hence the precondition.
    """
    if x.device.type == "cpu" and x.dtype == torch.float32 and x.is_contiguous() and x.numel():
        import cv2
        flat = x.detach().numpy().reshape(-1, x.shape[-1])
        return torch.from_numpy(cv2.convertScaleAbs(flat, alpha=255.0)).view(x.shape)
    return to_u8(x).to(torch.uint8)


@functools.cache
def _unit_lut() -> np.ndarray:
    # k / 255 in float32 as torch divides it: the table is the division, so exact.
    return (torch.arange(256, dtype=torch.float32) / 255.0).numpy()


def u8_to_unit(y8, out) -> None:
    """Write ``y8 / 255`` (float32, exactly torch's division) into ``out``: numpy uint8
    and float32 arrays of one 2-D (or 1-D) shape, through one OpenCV table lookup."""
    import cv2
    cv2.LUT(y8, _unit_lut(), dst=out)


# ----------------------------------------------------------------------------- borders
def border_index(i: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Map integer indices (any range) into ``[0, n)`` with a named border rule.

    nearest: aaa|abcd|ddd (scipy 'nearest', cv2 REPLICATE)
    reflect: cba|abcd|dcb (scipy 'reflect', half-sample symmetric)
    reflect101: dcb|abcd|cba (cv2 BORDER_REFLECT_101, scipy 'mirror')
    """
    if mode == "nearest" or n == 1:
        return i.clamp(0, n - 1)
    if mode not in ("reflect", "reflect101"):
        raise ValueError(f"unknown border mode {mode!r}")
    period = 2 * n if mode == "reflect" else 2 * n - 2
    lo, hi = (v.item() for v in torch.aminmax(i))
    if lo < -period // 2 or hi >= period:
        # Far outside (wide kernels on small images): fold whole periods first. Rare,
        # and integer division is the slow part of this function, hence the check.
        i = torch.remainder(i, period)
    if mode == "reflect101":  # valid on [-(n-1), 2(n-1)]
        return (n - 1) - ((n - 1) - i.abs()).abs()
    # valid on [-n, 2n-1]: mirror the negatives (-1 - i), then the far side (2n - 1 - j);
    # (minimum/maximum: fewer passes over the samplers' index maps than torch.where)
    j = torch.maximum(i, -1 - i)
    return torch.minimum(j, (2 * n - 1) - j)


# ----------------------------------------------------------------------------- filters
@functools.lru_cache(maxsize=64)
def _gauss_taps(sigma: float, truncate: float) -> tuple:
    # scipy.ndimage._gaussian_kernel1d: radius int(truncate*sigma + 0.5), normalised.
    r = int(truncate * float(sigma) + 0.5)
    k = [math.exp(-0.5 * (i / sigma) ** 2) for i in range(-r, r + 1)]
    s = sum(k)
    return tuple(v / s for v in k)


@functools.lru_cache(maxsize=64)
def _band_matrix(n: int, taps: tuple, mode: str) -> torch.Tensor:
    # Correlation with `taps` along an axis of length n, the border rule folded in:
    # out[j] = sum_t taps[t] * in[border(j - r + t)], as an (n, n) float64 matrix.
    r = len(taps) // 2
    j = torch.arange(n).view(n, 1)
    t = torch.arange(len(taps)).view(1, -1)
    src = border_index(j - r + t, n, mode)
    m = torch.zeros(n, n, dtype=torch.float64)
    m.scatter_add_(1, src, torch.tensor(taps, dtype=torch.float64).expand(n, -1).contiguous())
    return m


def correlate_sep(x: torch.Tensor, taps_h, taps_w, mode: str) -> torch.Tensor:
    """Separable correlation of ``(..., H, W)`` with odd 1-D taps per axis (rows, cols).

    Each pass is one matmul with a banded matrix whose border rows fold the out-of-image
    taps back in, so wide kernels (sigma of tens of pixels) cost no more than narrow ones.
    """
    h, w = x.shape[-2:]
    y = x
    if taps_w is not None:
        y = y @ _band_matrix(w, tuple(taps_w), mode).to(x.device, x.dtype).T
    if taps_h is not None:
        y = _band_matrix(h, tuple(taps_h), mode).to(x.device, x.dtype) @ y
    return y


def gaussian_filter(x: torch.Tensor, sigma: float, mode: str = "nearest",
                    truncate: float = 4.0) -> torch.Tensor:
    """scipy.ndimage.gaussian_filter over the last two axes (skimage.filters.gaussian).

    sigma in pixels; sigma <= 1e-15 is the identity, as in scipy.
    """
    if sigma <= 1e-15:
        return x.clone()
    taps = _gauss_taps(float(sigma), float(truncate))
    return correlate_sep(x, taps, taps, mode)


# ----------------------------------------------------------------------------- sampling
def bilinear_gather(img: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor,
                    mode: str) -> torch.Tensor:
    """Sample ``img`` (N, C, H, W) at float pixel coordinates ``ys, xs`` (N, h, w).

    Each of the four neighbours is mapped into the image with ``mode`` (see
    border_index), which is how cv2.remap/warpAffine and scipy's order-1
    map_coordinates treat points near the border.
    """
    n, c, h, w = img.shape
    y0 = torch.floor(ys)
    x0 = torch.floor(xs)
    fy = (ys - y0).to(img.dtype).unsqueeze(1)
    fx = (xs - x0).to(img.dtype).unsqueeze(1)
    y0 = y0.long()
    x0 = x0.long()
    r0, r1 = border_index(y0, h, mode) * w, border_index(y0 + 1, h, mode) * w
    c0, c1 = border_index(x0, w, mode), border_index(x0 + 1, w, mode)
    flat = img.reshape(n, c, h * w)

    def tap(r, q):
        idx = (r + q).reshape(n, 1, -1).expand(n, c, -1)
        return flat.gather(2, idx).reshape(n, c, *ys.shape[1:])

    top = torch.lerp(tap(r0, c0), tap(r0, c1), fx)
    return torch.lerp(top, torch.lerp(tap(r1, c0), tap(r1, c1), fx), fy)


def clipped_zoom(x: torch.Tensor, zoom: float) -> torch.Tensor:
    """The reference's ``clipped_zoom`` on (N, C, H, W): crop the centre, scipy-zoom it
    with order 1 (corner-aligned linear), trim back to H×W. The reference handles square
    images only; here each axis is cropped and trimmed on its own."""
    h, w = x.shape[-2:]
    ch, cw = int(math.ceil(h / zoom)), int(math.ceil(w / zoom))
    top, left = (h - ch) // 2, (w - cw) // 2
    crop = x[..., top:top + ch, left:left + cw]
    # scipy.ndimage.zoom: output side round(side * zoom) (Python round), corner-aligned.
    oh, ow = int(round(ch * zoom)), int(round(cw * zoom))
    z = F.interpolate(crop, size=(oh, ow), mode="bilinear", align_corners=True)
    th, tw = (oh - h) // 2, (ow - w) // 2
    return z[..., th:th + h, tw:tw + w]


# ----------------------------------------------------------------------------- PIL box
@functools.lru_cache(maxsize=64)
def _pil_box_matrix(in_size: int, out_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """PIL's BOX resampling as a 0/1 tap matrix (out, in) and one weight per output.

    Follows Resample.c: precompute_coeffs (support 0.5 * scale, centre (i + 0.5) * scale,
    bounds rounded with int(v + 0.5), box(u) = 1 on (-0.5, 0.5]) and
    normalize_coeffs_8bpc (weights rounded to 22 fractional bits). A box weighs its taps
    equally, so output j is (k_j * sum of its taps + 2^21) >> 22.
    """
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    taps = torch.zeros(out_size, in_size, dtype=torch.float32)
    weight = torch.zeros(out_size, dtype=torch.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        inside = [x for x in range(xmax) if -0.5 < (x + xmin - center + 0.5) * ss <= 0.5]
        for x in inside:
            taps[xx, xmin + x] = 1.0
        if inside:
            weight[xx] = int(0.5 + (1.0 / len(inside)) * (1 << 22)) / float(1 << 22)
    return taps, weight


def pil_box_upscale_index(in_size: int, out_size: int) -> torch.Tensor:
    """PIL's BOX upscale (``out_size >= in_size``) along an axis as a gather index: the box
    of an output pixel spans exactly one input pixel (the one in ``(c - 1, c]`` for its
    centre ``c``), whose weight 2^22 / 2^22 PIL's rounding returns unchanged, so the resize
    is ``x[..., index]``."""
    if out_size < in_size:
        raise ValueError(f"not an upscale: {in_size} -> {out_size}")
    taps, _ = _pil_box_matrix(in_size, out_size)
    assert bool((taps.sum(1) == 1).all()), "an upscale's box covers one input pixel"
    return taps.argmax(1)


@functools.lru_cache(maxsize=64)
def pil_box_upscale_flat_index(in_h: int, in_w: int, out_h: int, out_w: int) -> torch.Tensor:
    """The 2-D BOX upscale ``(in_h, in_w) -> (out_h, out_w)`` as one index into the
    flattened input plane (row index * in_w + column index)."""
    rows = pil_box_upscale_index(in_h, out_h).view(-1, 1)
    return (rows * in_w + pil_box_upscale_index(in_w, out_w).view(1, -1)).reshape(-1)


@functools.lru_cache(maxsize=256)
def cv2_nearest_is_box_upscale(in_h: int, in_w: int, out_h: int, out_w: int) -> bool:
    """Whether OpenCV's ``INTER_NEAREST_EXACT`` resize ``(in_h, in_w) -> (out_h, out_w)``
    copies the very pixels PIL's BOX upscale does. Its fixed-point centres and PIL's differ
    on ties for some size pairs, so each pair is checked once, on an image whose pixels
    are their own flat indices (exact in float32)."""
    import cv2
    if in_h > out_h or in_w > out_w or in_h * in_w > 1 << 24:
        return False
    src = np.arange(in_h * in_w, dtype=np.float32).reshape(in_h, in_w)
    got = cv2.resize(src, (out_w, out_h), interpolation=cv2.INTER_NEAREST_EXACT)
    want = pil_box_upscale_flat_index(in_h, in_w, out_h, out_w).numpy().reshape(out_h, out_w)
    return got.shape == want.shape and bool((got == want).all())


# floor(S * k/2^22 + 0.5) in float32 equals PIL's (k*S + 2^21) >> 22 for every tap sum S
# of boxes up to 160 taps wide (checked exhaustively); wider boxes take float64.
_BOX_FLOAT32_MAX_TAPS = 160


def _pil_box_pass(y: torch.Tensor, out_size: int) -> torch.Tensor:
    # One PIL pass along the last axis; the tap sums are small integers, exact in float32.
    taps, weight = _pil_box_matrix(y.shape[-1], out_size)
    s = y @ taps.to(y.device).T
    if taps.sum(1).max() > _BOX_FLOAT32_MAX_TAPS:
        s = s.to(torch.float64).mul_(weight.to(y.device)).add_(0.5).floor_().clamp_(0, 255)
        return s.to(y.dtype)
    # s·weight <= 255 + 2^-22·s here, so the floor never leaves 0..255: no clamp needed.
    return s.mul_(weight.to(y.device, torch.float32)).add_(0.5).floor_()


def pil_box_resize(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """PIL ``Image.resize((out_w, out_h), Image.BOX)`` on uint8-valued floats (…, H, W)
    in 0..255: horizontal pass then vertical, each rounded and clipped to uint8 as PIL does."""
    h, w = x.shape[-2:]
    y = x.to(torch.float32)
    if out_w != w:
        y = _pil_box_pass(y, out_w)
    if out_h != h:
        y = _pil_box_pass(y.transpose(-1, -2), out_h).transpose(-1, -2)
    return y.to(x.dtype)
