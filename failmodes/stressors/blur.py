"""Blur corruptions (CIFAR-10-C family "blur", plus the extra gaussian_blur).

motion_blur's ImageMagick kernel lives in ``_motion.py``. The filters below reproduce the reference's
library calls in torch: scikit-image's ``gaussian`` (scipy ``gaussian_filter``,
truncate 4, border "nearest"), OpenCV's ``filter2D`` (border reflect-101) and scipy's
``zoom`` (order 1, corners aligned).

Other image sizes: the parameters are pixels and are used as they are (the table is
the 32-px one below 64 px, else the 224-px one); glass blur's loops and zoom blur's crop
follow the image's own height and width, where the reference hard-codes 32 or 224 and
assumes a square.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ._motion import motion_blur_u8
from ._rng import ImageRNG
from ._spatial import to_u8
from .registry import register_stressor


# ----------------------------------------------------------------------------- filters
def _border_index(n: int, pad: int, mode: str, device) -> torch.Tensor:
    """Source indices (n + 2*pad,) of a padded axis: "nearest" repeats the edge pixel,
    "reflect101" mirrors without repeating it (OpenCV's default, numpy's "reflect")."""
    i = torch.arange(-pad, n + pad, device=device)
    if mode == "nearest" or n == 1:
        return i.clamp(0, n - 1)
    period = 2 * (n - 1)
    i = i.remainder(period)
    return torch.where(i >= n, period - i, i)


def _pad(x: torch.Tensor, ph: int, pw: int, mode: str) -> torch.Tensor:
    h, w = x.shape[-2:]
    if mode == "nearest" or (ph < h and pw < w):
        return F.pad(x, (pw, pw, ph, ph), mode="replicate" if mode == "nearest" else "reflect")
    # Index-based padding for any width (torch's "reflect" needs pad < size); 15x slower.
    if ph:
        x = x.index_select(-2, _border_index(h, ph, mode, x.device))
    if pw:
        x = x.index_select(-1, _border_index(w, pw, mode, x.device))
    return x


def gaussian_kernel1d(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy.ndimage's Gaussian weights: radius ``int(truncate * sigma + 0.5)``, sum 1."""
    if sigma <= 0:
        return np.ones(1)
    radius = int(truncate * sigma + 0.5)
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    k = np.exp(-0.5 / sigma ** 2 * t ** 2)
    return k / k.sum()


def _depthwise(y: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    # Every image channel as its own group: oneDNN runs this ~10x faster than a batch of
    # single-channel images through one shared filter.
    n, c, h, w = y.shape
    k = torch.as_tensor(np.ascontiguousarray(kernel), dtype=y.dtype, device=y.device)
    out = F.conv2d(y.reshape(1, n * c, h, w), k.expand(n * c, 1, *k.shape), groups=n * c)
    return out.view(n, c, *out.shape[-2:])


def separable_filter(x: torch.Tensor, kh: np.ndarray, kw: np.ndarray, mode: str) -> torch.Tensor:
    """Correlate N×C×H×W with ``kh`` along H and ``kw`` along W (odd lengths)."""
    y = _pad(x, len(kh) // 2, len(kw) // 2, mode)
    if len(kh) > 1:
        y = _depthwise(y, kh.reshape(-1, 1))
    if len(kw) > 1:
        y = _depthwise(y, kw.reshape(1, -1))
    return y


def gaussian_filter(x: torch.Tensor, sigma: float, mode: str = "nearest") -> torch.Tensor:
    """skimage ``gaussian(x, sigma, multichannel=True)``: per channel, border "nearest"."""
    k = gaussian_kernel1d(sigma)
    return x if len(k) == 1 else separable_filter(x, k, k, mode)


def filter2d(x: torch.Tensor, kernel: np.ndarray, mode: str = "reflect101") -> torch.Tensor:
    """OpenCV ``filter2D`` (correlation, centred anchor) of every channel with ``kernel``."""
    nz = np.argwhere(kernel != 0)
    # Crop the all-zero margin (defocus's 17×17 disk is mostly zeros): same result, faster.
    r = int(np.abs(nz - np.array(kernel.shape) // 2).max()) if len(nz) else 0
    ch, cw = kernel.shape[0] // 2, kernel.shape[1] // 2
    kernel = kernel[ch - r:ch + r + 1, cw - r:cw + r + 1]
    return _depthwise(_pad(x, r, r, mode), kernel)


# ----------------------------------------------------------------------------- defocus
def _cv2_gaussian_1d(ksize: int, sigma: float) -> np.ndarray:
    if sigma <= 0:  # never reached by the tables (row 0 is skipped as identity)
        return np.eye(1, ksize, ksize // 2).ravel()
    t = np.arange(ksize) - (ksize - 1) / 2
    k = np.exp(-t ** 2 / (2 * sigma ** 2))
    return k / k.sum()


def disk_kernel(radius: float, alias_blur: float) -> np.ndarray:
    """The reference's ``disk``: a binary disk on a 17×17 grid (radius <= 8) normalised to
    sum 1, then ``cv2.GaussianBlur`` 3×3 (5×5 above radius 8, border reflect-101)."""
    if radius <= 8:
        t, ksize = np.arange(-8, 9), 3
    else:
        t, ksize = np.arange(-math.floor(radius), math.floor(radius) + 1), 5
    xx, yy = np.meshgrid(t, t)
    d = ((xx ** 2 + yy ** 2) <= radius ** 2).astype(np.float64)
    d /= d.sum()
    g = _cv2_gaussian_1d(ksize, alias_blur)
    p = ksize // 2
    idx = _border_index(len(t), p, "reflect101", "cpu").numpy()
    d = d[idx][:, idx]
    rows = sum(g[i] * d[i:i + len(t)] for i in range(ksize))
    return sum(g[j] * rows[:, j:j + len(t)] for j in range(ksize)).astype(np.float32)


# (disk radius in pixels, anti-alias sigma)
DEFOCUS_BLUR = {"cifar": [(0.0, 0.0), (0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1.0, 0.2), (1.5, 0.1)],
                "imagenet": [(0.0, 0.0), (3.0, 0.1), (4.0, 0.5), (6.0, 0.5), (8.0, 0.5), (10.0, 0.5)],
                "tinyimagenet": [(0.0, 0.0), (0.5, 0.6), (1.0, 0.1), (1.5, 0.1), (2.5, 0.01), (3.0, 0.1)]}


@register_stressor("defocus_blur", random=False, family="blur", tables=DEFOCUS_BLUR,
                   param_names=("radius", "alias_blur"), benchmark=True, interpolate="outputs")
def defocus_blur(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """Out-of-focus blur: convolution with an anti-aliased disk.

    A binary disk changes only where its radius crosses a pixel distance, so fractional
    severities blend the two neighbouring levels' outputs (= their kernels).
    """
    radius, alias = p
    return filter2d(x, disk_kernel(radius, alias), "reflect101")


# ----------------------------------------------------------------------------- glass
# (gaussian sigma in pixels, max pixel displacement delta, passes)
GLASS_BLUR = {"cifar": [(0.0, 1, 0), (0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2)],
              "imagenet": [(0.0, 1, 0), (0.7, 1, 2), (0.9, 2, 1), (1.0, 2, 3), (1.1, 3, 2), (1.5, 4, 2)],
              "tinyimagenet": [(0.0, 1, 0), (0.1, 1, 1), (0.5, 1, 1), (0.6, 1, 2), (0.7, 2, 1), (0.9, 2, 2)]}


@register_stressor("glass_blur", monotone=False, family="blur", tables=GLASS_BLUR,
                   param_names=("sigma", "max_delta", "iterations"), benchmark=True)
def glass_blur(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """Frosted glass: Gaussian blur, local pixel displacement, Gaussian blur again.

    As the reference: the first blur is truncated to uint8; the "swap" is a copy
    (x[h, w] = x[h + dy, w + dx], in descending raster order) with offsets uniform in
    -delta..delta-1. Fractional delta draws floor(uniform(-delta, delta)); a fractional
    last pass moves each pixel with probability equal to the fraction.
    """
    sigma, delta, iterations = p
    y = torch.floor(gaussian_filter(x, sigma) * 255.0 + 1e-4) / 255.0
    n, _, h, w = y.shape
    m = max(1, math.ceil(delta - 1e-9))  # margin: positions m+1 .. side-m are visited
    passes = math.ceil(iterations - 1e-9)
    hp, wp = h - 2 * m, w - 2 * m
    if passes > 0 and hp > 0 and wp > 0:
        u = rng.uniform((passes, hp, wp, 2))
        d = torch.floor(u * (2 * delta) - delta).long()  # [..., 0] = dx, [..., 1] = dy
        frac = iterations - (passes - 1)
        if frac < 1.0 - 1e-9:
            stay = rng.uniform((hp, wp)) >= frac
            d[:, passes - 1][stay] = 0
        for i in range(passes):
            y = _displace_pass(y, d[:, i], m)
    return gaussian_filter(y, sigma)


def _displace_pass(y: torch.Tensor, d: torch.Tensor, m: int) -> torch.Tensor:
    """One pass of x[h, w] = x[h + dy, w + dx] over rows/cols m+1..side-m, descending.

    The loops visit positions in descending raster order, so a position reads the final
    value of its source if the loops have already written it (a larger flat index inside
    the visited region), else the source's value before the pass. Following those links
    to their end (pointer doubling: a few batched gathers, however long the chains)
    gives every position the input pixel it ends up holding: one gather of the input,
    the very values of the sequential loops. With offsets up/left only (CIFAR's delta 1)
    no link is followed and it is a single gather.
    """
    n, c, h, w = y.shape
    dx, dy = d[..., 0], d[..., 1]  # (N, hp, wp)
    rows = torch.arange(m + 1, h - m + 1, device=y.device).view(1, -1, 1)
    cols = torch.arange(m + 1, w - m + 1, device=y.device).view(1, 1, -1)
    sr, sc = rows + dy, cols + dx
    src = sr * w + sc
    written_first = ((sr <= h - m) & (sc >= m + 1) & (sc <= w - m) & (src > rows * w + cols)
                     & (sr >= m + 1))
    nxt = torch.arange(h * w, device=y.device).repeat(n, 1)
    done = torch.ones(n, h * w, dtype=torch.bool, device=y.device)
    nxt.view(n, h, w)[:, m + 1:h - m + 1, m + 1:w - m + 1] = src
    done.view(n, h, w)[:, m + 1:h - m + 1, m + 1:w - m + 1] = ~written_first
    while not bool(done.all()):
        # A link to a position whose value is known takes that value's source; a link to
        # one still unknown skips ahead to where that one points.
        nxt, done = torch.where(done, nxt, nxt.gather(1, nxt)), done | done.gather(1, nxt)
    flat = y.reshape(n, c, h * w)
    return flat.gather(2, nxt.view(n, 1, h * w).expand(n, c, h * w)).view(n, c, h, w)


# ----------------------------------------------------------------------------- motion
# motion_blur's severity table (radius px, sigma px): row 0 = identity, rows 1..5 = make_*_c.py.
MOTION_BLUR = {"cifar": [(0.0, 0.0), (6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5)],
               "imagenet": [(0.0, 0.0), (10, 3), (15, 5), (15, 8), (15, 12), (20, 15)],
               "tinyimagenet": [(0.0, 0.0), (10, 1), (10, 1.5), (10, 2), (10, 2.5), (12, 3)]}


@register_stressor("motion_blur", monotone=False, family="blur", tables=MOTION_BLUR,
                   param_names=("radius_px", "sigma_px"), rounding="round", benchmark=True,
                   chunk_scale=4)
def motion_blur(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """ImageMagick motion blur along a random angle in ±45° per image."""
    radius, sigma = p
    angles = rng.uniform(()) * 90.0 - 45.0
    return motion_blur_u8(to_u8(x), radius, sigma, angles) / 255.0


# ----------------------------------------------------------------------------- zoom
# np.arange(start, stop, step) zoom factors, kept as the reference's float arange (its
# stop is sometimes included: arange(1, 1.06, 0.01) has 7 factors up to 1.06).
ZOOM_BLUR = {"cifar": [(1.0, 1.0, 0.01), (1.0, 1.06, 0.01), (1.0, 1.11, 0.01), (1.0, 1.16, 0.01),
                       (1.0, 1.21, 0.01), (1.0, 1.26, 0.01)],
             "imagenet": [(1.0, 1.0, 0.01), (1.0, 1.11, 0.01), (1.0, 1.16, 0.01), (1.0, 1.21, 0.02),
                          (1.0, 1.26, 0.02), (1.0, 1.31, 0.03)],
             "tinyimagenet": [(1.0, 1.0, 0.01), (1.0, 1.06, 0.01), (1.0, 1.11, 0.01),
                              (1.0, 1.16, 0.01), (1.0, 1.21, 0.01), (1.0, 1.26, 0.01)]}


def _zoom_axis(n: int, z: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source (i0, i1, weight of i1) of the reference's ``clipped_zoom`` along one axis:
    centre crop of ceil(n / z), scipy zoom to round(crop * z) with corners aligned,
    centre trim back to n."""
    ch = int(np.ceil(n / z))
    top = (n - ch) // 2
    out = int(round(ch * z))
    trim = (out - n) // 2
    scale = (ch - 1) / (out - 1) if out > 1 else 1.0
    coord = np.minimum((np.arange(n) + trim) * scale, ch - 1)
    i0 = np.floor(coord).astype(np.int64)
    wgt = coord - i0
    i1 = np.minimum(i0 + 1, ch - 1)
    return i0 + top, i1 + top, wgt


def _zoom_matrix(n: int, factors) -> np.ndarray:
    """(len(factors), n, n) bilinear interpolation matrices, one per zoom factor."""
    m = np.zeros((len(factors), n, n))
    r = np.arange(n)
    for k, z in enumerate(factors):
        i0, i1, wgt = _zoom_axis(n, z)
        np.add.at(m[k], (r, i0), 1 - wgt)
        np.add.at(m[k], (r, i1), wgt)
    return m


@register_stressor("zoom_blur", random=False, family="blur", tables=ZOOM_BLUR,
                   param_names=("zoom_start", "zoom_stop", "zoom_step"), benchmark=True)
def zoom_blur(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """Radial zoom blur: the mean of the image and its centre zooms by each factor."""
    start, stop, step = p
    factors = np.arange(start, stop, step)
    if len(factors) == 0:
        return x
    n, c, h, w = x.shape
    acc = x.clone()
    if h <= 96 and w <= 96:
        # Small images: sum_z R_z X C_z^T as two matmuls over the stacked factors.
        rz = torch.as_tensor(_zoom_matrix(h, factors), dtype=x.dtype, device=x.device)
        cz = torch.as_tensor(_zoom_matrix(w, factors), dtype=x.dtype, device=x.device)
        k = len(factors)
        c_cat = cz.permute(2, 0, 1).reshape(w, k * w)
        # The first product's rows of one image plane are (row h', factor z, col): read as
        # (H*K, W) with index h'*K + z, with no copy, when R's columns are ordered the same.
        r_cat = rz.permute(1, 2, 0).reshape(h, h * k)
        # Chunks of images keep the K-fold intermediate (K*C*H*W floats each) cache-sized.
        step = max(1, (1 << 18) // (k * c * h * w)) if x.device.type == "cpu" else n
        for s in range(0, n, step):
            xs = x[s:s + step]
            m = xs.shape[0]
            t = xs.reshape(m * c * h, w) @ c_cat  # (MCH, K*W)
            acc[s:s + step] += (r_cat @ t.view(m * c, h * k, w)).view(m, c, h, w)
    else:
        # Large images: two-tap gathers per factor (the matrices would be mostly zeros).
        for z in factors:
            acc += _zoom_gather(x, z)
    return acc / (len(factors) + 1)


def _zoom_gather(x: torch.Tensor, z: float) -> torch.Tensor:
    h, w = x.shape[-2:]
    i0, i1, wh = (torch.as_tensor(a, device=x.device) for a in _zoom_axis(h, z))
    j0, j1, ww = (torch.as_tensor(a, device=x.device) for a in _zoom_axis(w, z))
    wh = wh.to(x.dtype).view(-1, 1)
    ww = ww.to(x.dtype)
    y = x.index_select(-2, i0) * (1 - wh) + x.index_select(-2, i1) * wh
    return y.index_select(-1, j0) * (1 - ww) + y.index_select(-1, j1) * ww


# ----------------------------------------------------------------------------- gaussian
GAUSSIAN_BLUR = {"cifar": [(0.0,), (0.4,), (0.6,), (0.7,), (0.8,), (1.0,)],
                 "imagenet": [(0.0,), (1.0,), (2.0,), (3.0,), (4.0,), (6.0,)],
                 "tinyimagenet": [(0.0,), (0.5,), (0.75,), (1.0,), (1.25,), (1.5,)]}


@register_stressor("gaussian_blur", random=False, family="blur", tables=GAUSSIAN_BLUR,
                   param_names=("sigma",), benchmark=False)
def gaussian_blur(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """Gaussian blur of std ``sigma`` pixels (skimage ``gaussian``, border "nearest")."""
    (sigma,) = p
    return gaussian_filter(x, sigma)
