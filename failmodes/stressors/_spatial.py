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

import torch
import torch.nn.functional as F


# ----------------------------------------------------------------------------- borders
def border_index(i: torch.Tensor, n: int, mode: str) -> torch.Tensor:
    """Map integer indices (any range) into ``[0, n)`` with a named border rule.

    nearest: aaa|abcd|ddd (scipy 'nearest', cv2 REPLICATE)
    reflect: cba|abcd|dcb (scipy 'reflect', half-sample symmetric)
    reflect101: dcb|abcd|cba (cv2 BORDER_REFLECT_101, scipy 'mirror')
    """
    if mode == "nearest" or n == 1:
        return i.clamp(0, n - 1)
    if mode == "reflect":
        i = torch.remainder(i, 2 * n)
        return torch.where(i >= n, 2 * n - 1 - i, i)
    if mode == "reflect101":
        i = torch.remainder(i, 2 * n - 2)
        return torch.where(i >= n, 2 * n - 2 - i, i)
    raise ValueError(f"unknown border mode {mode!r}")


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
    rows = [border_index(y0, h, mode) * w, border_index(y0 + 1, h, mode) * w]
    cols = [border_index(x0, w, mode), border_index(x0 + 1, w, mode)]
    flat = img.reshape(n, c, h * w)
    out = 0
    for r, wy in zip(rows, (1 - fy, fy)):
        for q, wx in zip(cols, (1 - fx, fx)):
            idx = (r + q).reshape(n, 1, -1).expand(n, c, -1)
            out = out + (wy * wx) * flat.gather(2, idx).reshape(n, c, *ys.shape[1:])
    return out


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
def _pil_box_coeffs(in_size: int, out_size: int) -> torch.Tensor:
    """PIL's fixed-point BOX resampling matrix (out, in) as float64 integers.

    Follows Resample.c: precompute_coeffs (support 0.5 * scale, centre (i + 0.5) * scale,
    bounds rounded with int(v + 0.5)) and normalize_coeffs_8bpc (22 fractional bits).
    """
    precision = 1 << 22
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = 0.5 * filterscale
    m = torch.zeros(out_size, in_size, dtype=torch.float64)
    for xx in range(out_size):
        center = (xx + 0.5) * scale
        ss = 1.0 / filterscale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        ws = []
        for x in range(xmax):
            u = (x + xmin - center + 0.5) * ss
            ws.append(1.0 if -0.5 < u <= 0.5 else 0.0)
        tot = sum(ws)
        for x, wv in enumerate(ws):
            k = wv / tot if tot != 0 else wv
            m[xx, xmin + x] = int(0.5 + k * precision)
    return m


def pil_box_resize(x: torch.Tensor, out_h: int, out_w: int) -> torch.Tensor:
    """PIL ``Image.resize((out_w, out_h), Image.BOX)`` on uint8-valued floats (…, H, W)
    in 0..255: horizontal pass then vertical, each rounded and clipped to uint8 as PIL does."""
    h, w = x.shape[-2:]
    y = x.to(torch.float64)
    half = float(1 << 21)
    if out_w != w:
        mw = _pil_box_coeffs(w, out_w).to(y.device)
        y = torch.floor((y @ mw.T + half) / (1 << 22)).clamp_(0, 255)
    if out_h != h:
        mh = _pil_box_coeffs(h, out_h).to(y.device)
        # One large matmul over the transposed batch rather than N·C small ones.
        y = torch.floor((y.transpose(-1, -2) @ mh.T + half) / (1 << 22)).clamp_(0, 255)
        y = y.transpose(-1, -2)
    return y.to(x.dtype)
