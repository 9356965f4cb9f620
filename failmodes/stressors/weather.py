"""Weather corruptions (CIFAR-10-C family "weather": snow, frost, fog; extra: spatter).

Ported from ``make_cifar_c.py`` / ``make_imagenet_c.py`` (hendrycks/robustness) with
their quirks: snow streaks through ImageMagick's one-sided motion kernel, frost crops
from ``randint(5)`` textures (frost1–5) resized by 0.2 for 32-px images, fog from a
diamond-square plasma fractal whose noise amplitude is wibble², spatter's liquid
branch through OpenCV's Canny/distance transform and its mud branch.

Parameters are in pixels of the table's resolution and are not rescaled for other
image sizes, except: the fog map grows to the next power of two that covers the image,
and frost textures are enlarged (bilinear) when an image is larger than a texture.
"""
from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch

from ._motion import motion_blur_u8
from ._rng import ImageRNG
from ._spatial import clipped_zoom, gaussian_filter, to_u8
from .registry import register_stressor

ASSETS = Path(__file__).with_name("assets")
# make_cifar_c.py lists frost1..frost6 but draws randint(5): frost6 is never used.
FROST_FILES = ("frost1.png", "frost2.png", "frost3.png", "frost4.jpg", "frost5.jpg")

# Severity tables: row 0 = identity, rows 1..5 = make_cifar_c.py / make_imagenet_c.py.
# snow: noise mean, noise std, zoom, threshold, blur radius px, blur sigma px, image keep.
SNOW = {"cifar": [(0.0, 0.0, 1, 0.6, 8, 3, 1.0),
                  (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
                  (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
                  (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
                  (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
                  (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8)],
        "imagenet": [(0.0, 0.0, 3, 0.5, 10, 4, 1.0),
                     (0.1, 0.3, 3, 0.5, 10, 4, 0.8),
                     (0.2, 0.3, 2, 0.5, 12, 4, 0.7),
                     (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
                     (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65),
                     (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55)]}
# Tiny ImageNet-C's snow is CIFAR-10-C's flakes (the first six columns) on an image kept
# less: only the image keep differs (make_tinyimagenet_c.py).
SNOW["tinyimagenet"] = [(*row[:6], keep) for row, keep in
                        zip(SNOW["cifar"], (1.0, 0.8, 0.8, 0.7, 0.65, 0.6))]
# frost: image weight, frost weight, texture scale (CIFAR shrinks the textures by 0.2).
FROST = {"cifar": [(1.0, 0.0, 0.2), (1, 0.2, 0.2), (1, 0.3, 0.2), (0.9, 0.4, 0.2),
                   (0.85, 0.4, 0.2), (0.75, 0.45, 0.2)],
         "imagenet": [(1.0, 0.0, 1.0), (1, 0.4, 1.0), (0.8, 0.6, 1.0), (0.7, 0.7, 1.0),
                      (0.65, 0.7, 1.0), (0.6, 0.75, 1.0)],
         "tinyimagenet": [(1.0, 0.0, 0.3), (1, 0.3, 0.3), (0.9, 0.4, 0.3), (0.8, 0.45, 0.3),
                          (0.75, 0.5, 0.3), (0.7, 0.55, 0.3)]}
# fog: fog amount, wibble decay, plasma map size px.
FOG = {"cifar": [(0.0, 3, 32), (0.2, 3, 32), (0.5, 3, 32), (0.75, 2.5, 32), (1, 2, 32),
                 (1.5, 1.75, 32)],
       "imagenet": [(0.0, 2, 256), (1.5, 2, 256), (2, 2, 256), (2.5, 1.7, 256),
                    (2.5, 1.5, 256), (3, 1.4, 256)],
       "tinyimagenet": [(0.0, 3, 64), (0.4, 3, 64), (0.7, 3, 64), (1, 2.5, 64), (1.5, 2, 64),
                        (2, 1.75, 64)]}
# spatter: noise mean, noise std, blur sigma px, threshold, intensity (liquid) or mask
# sigma px (mud), branch (0 = liquid, 1 = mud; a fractional value blends the two).
SPATTER = {"cifar": [(0.62, 0.1, 0.7, 0.7, 0.0, 0),
                     (0.62, 0.1, 0.7, 0.7, 0.5, 0),
                     (0.65, 0.1, 0.8, 0.7, 0.5, 0),
                     (0.65, 0.3, 1, 0.69, 0.5, 0),
                     (0.65, 0.1, 0.7, 0.69, 0.6, 1),
                     (0.65, 0.1, 0.5, 0.68, 0.6, 1)],
           "imagenet": [(0.65, 0.3, 4, 0.69, 0.0, 0),
                        (0.65, 0.3, 4, 0.69, 0.6, 0),
                        (0.65, 0.3, 3, 0.68, 0.6, 0),
                        (0.65, 0.3, 2, 0.68, 0.5, 0),
                        (0.65, 0.3, 1, 0.65, 1.5, 1),
                        (0.67, 0.4, 1, 0.65, 1.5, 1)],
           "tinyimagenet": [(0.62, 0.1, 0.7, 0.7, 0.0, 0),
                            (0.62, 0.1, 0.7, 0.7, 0.6, 0),
                            (0.65, 0.1, 0.8, 0.7, 0.6, 0),
                            (0.65, 0.3, 1, 0.69, 0.6, 0),
                            (0.65, 0.1, 0.7, 0.68, 0.6, 1),
                            (0.65, 0.1, 0.5, 0.67, 0.6, 1)]}


def _gray(x: torch.Tensor) -> torch.Tensor:
    # cv2.COLOR_RGB2GRAY weights (ITU-R BT.601), (N, 1, H, W).
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
    return (x * w.view(1, 3, 1, 1)).sum(1, keepdim=True)


@register_stressor("snow", family="weather", tables=SNOW,
                   param_names=("mean", "std", "zoom", "threshold", "radius_px", "sigma_px",
                                "keep"), benchmark=True, chunk_scale=4)
def snow(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """Snow flakes motion-blurred along −135…−45°, over a greyed, brightened image."""
    mean, std, zoom, thresh, radius, sigma, keep = p
    n, _, h, w = x.shape
    layer = rng.normal((1, h, w), dtype=torch.float64) * std + mean
    layer = clipped_zoom(layer, zoom)
    layer = torch.where(layer < thresh, torch.zeros_like(layer), layer)
    # The layer goes through an 8-bit 'L' PNG: astype(uint8) truncates.
    layer = torch.floor(layer.clamp(0, 1) * 255.0)
    angles = rng.uniform((), dtype=torch.float64) * 90.0 - 135.0
    layer = (motion_blur_u8(layer, radius, sigma, angles) / 255.0).to(x.dtype)
    x = keep * x + (1 - keep) * torch.maximum(x, _gray(x) * 1.5 + 0.5)
    return x + layer + layer.flip(-1, -2)


def _next_pow2(v: int) -> int:
    return 1 << max(0, int(v - 1).bit_length())


@functools.lru_cache(maxsize=8)
def _frost_textures_cpu(scale: float, min_h: int, min_w: int):
    import cv2

    texs = []
    for name in FROST_FILES:
        t = cv2.imread(str(ASSETS / name))  # BGR uint8, as the reference reads it
        if t is None:
            raise FileNotFoundError(f"frost texture missing: {ASSETS / name}")
        if scale != 1.0:
            t = cv2.resize(t, (0, 0), fx=scale, fy=scale)  # bilinear, as the reference
        # An image as large as the texture leaves no room for randint(0, side - size):
        # enlarge the texture so that every crop offset range is non-empty.
        grow = max((min_h + 1) / t.shape[0], (min_w + 1) / t.shape[1], 1.0)
        if grow > 1.0:
            t = cv2.resize(t, (int(np.ceil(t.shape[1] * grow)), int(np.ceil(t.shape[0] * grow))))
        texs.append(torch.from_numpy(np.ascontiguousarray(t[..., ::-1])).permute(2, 0, 1))
    hmax = max(t.shape[1] for t in texs)
    wmax = max(t.shape[2] for t in texs)
    stack = torch.zeros(len(texs), 3, hmax, wmax, dtype=torch.uint8)
    for i, tex in enumerate(texs):
        stack[i, :, :tex.shape[1], :tex.shape[2]] = tex
    sizes = torch.tensor([[t.shape[1], t.shape[2]] for t in texs])
    return stack, sizes


@functools.lru_cache(maxsize=8)
def frost_textures(scale: float, min_h: int, min_w: int, device: str):
    """The RGB frost textures (5, 3, Hmax, Wmax) uint8, zero-padded, and their (5, 2)
    sizes, resized by ``scale``; cached per device."""
    stack, sizes = _frost_textures_cpu(scale, min_h, min_w)
    return stack.to(device), sizes.to(device)


@register_stressor("frost", monotone=False, family="weather", tables=FROST,
                   param_names=("image_weight", "frost_weight", "texture_scale"),
                   benchmark=True, chunk_scale=4)
def frost(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """A random crop of one of frost1–5 added onto the dimmed image."""
    c_img, c_frost, scale = p
    n, _, h, w = x.shape
    stack, sizes = frost_textures(round(float(scale), 6), h, w, str(x.device))
    idx = rng.randint(0, len(FROST_FILES), ())
    th, tw = sizes[idx, 0], sizes[idx, 1]
    # randint(0, side - size): the high end is exclusive, so the last offset is never used.
    r0 = (rng.uniform((), dtype=torch.float64) * (th - h)).floor().long()
    c0 = (rng.uniform((), dtype=torch.float64) * (tw - w)).floor().long()
    windows = stack.unfold(2, h, 1).unfold(3, w, 1)  # (5, 3, Hmax-h+1, Wmax-w+1, h, w) view
    crop = windows[idx, :, r0, c0].to(x.dtype)
    x255 = to_u8(x)
    return (c_img * x255 + c_frost * crop).clamp(0, 255) / 255.0


def plasma_fractal(rng: ImageRNG, mapsize: int, decay: float,
                   dtype=torch.float64) -> torch.Tensor:
    """Diamond-square height maps (N, mapsize, mapsize) in [0, 1], one per image.

    As the reference: the random term is ``wibble * U(-wibble, wibble)`` and wibble is
    divided by ``decay`` after every scale; edges wrap around (np.roll).
    """
    if mapsize & (mapsize - 1):
        raise ValueError(f"plasma map size must be a power of two, got {mapsize}")
    n = len(rng)
    m = torch.zeros(n, mapsize, mapsize, dtype=dtype, device=rng.device)
    step, wibble = mapsize, 100.0

    def wibbled_mean(a):
        u = rng.uniform(a.shape[1:], dtype=dtype)
        return a / 4 + wibble * (u * (2 * wibble) - wibble)

    while step >= 2:
        half = step // 2
        corner = m[:, 0::step, 0::step]
        sq = corner + torch.roll(corner, -1, 1)
        sq = sq + torch.roll(sq, -1, 2)
        m[:, half::step, half::step] = wibbled_mean(sq)
        dr = m[:, half::step, half::step]
        ul = m[:, 0::step, 0::step]
        lt = dr + torch.roll(dr, 1, 1) + ul + torch.roll(ul, -1, 2)
        m[:, 0::step, half::step] = wibbled_mean(lt)
        tt = dr + torch.roll(dr, 1, 2) + ul + torch.roll(ul, -1, 1)
        m[:, half::step, 0::step] = wibbled_mean(tt)
        step //= 2
        wibble /= decay
    m = m - m.amin((1, 2), keepdim=True)
    return m / m.amax((1, 2), keepdim=True)


@register_stressor("fog", family="weather", tables=FOG,
                   param_names=("amount", "wibble_decay", "map_px"), benchmark=True,
                   chunk_scale=4)
def fog(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """A plasma-fractal fog layer added, then the image rescaled to its old maximum."""
    amount, decay, mapsize = p
    n, _, h, w = x.shape
    size = max(int(round(mapsize)), _next_pow2(max(h, w)))
    layer = plasma_fractal(rng, size, float(decay))[:, :h, :w].to(x.dtype)
    max_val = x.amax((1, 2, 3), keepdim=True)
    y = x + amount * layer.unsqueeze(1)
    return y * max_val / (max_val + amount)


_SPATTER_KERNEL = np.array([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]], np.float32)


def _liquid_edges(layer_u8: np.ndarray) -> np.ndarray:
    """The reference's OpenCV chain for one liquid layer (H, W) uint8 -> float32.

    Per image on CPU with OpenCV itself: Canny's hysteresis and the chamfer distance
    transform are sequential algorithms whose exact output only OpenCV gives.
    """
    import cv2

    dist = 255 - cv2.Canny(layer_u8, 50, 150)
    dist = cv2.distanceTransform(dist, cv2.DIST_L2, 5)
    _, dist = cv2.threshold(dist, 20, 20, cv2.THRESH_TRUNC)
    dist = cv2.blur(dist, (3, 3)).astype(np.uint8)
    dist = cv2.equalizeHist(dist)
    dist = cv2.filter2D(dist, cv2.CV_8U, _SPATTER_KERNEL)
    return cv2.blur(dist, (3, 3)).astype(np.float32)


def _spatter_liquid(x: torch.Tensor, liquid: torch.Tensor, intensity: float) -> torch.Tensor:
    # astype(np.uint8) of liquid*255: truncation, and values past 255 wrap around.
    u8 = torch.remainder(torch.floor(liquid * 255.0), 256.0)
    arr = u8.to("cpu", torch.uint8).numpy()
    dist = np.stack([_liquid_edges(a) for a in arr[:, 0]])
    m = u8.to(torch.float32) * torch.from_numpy(dist).to(x.device).unsqueeze(1)
    mx = m.amax((2, 3), keepdim=True)
    m = torch.where(mx > 0, m / mx.clamp_min(1e-30), torch.zeros_like(m)) * intensity
    # Pale turquoise; the reference adds (175, 238, 238)/255 to channels 0, 1, 2 of RGB.
    color = torch.tensor([175.0, 238.0, 238.0], device=x.device).view(1, 3, 1, 1) / 255.0
    return x + m.to(x.dtype) * color.to(x.dtype)


def _spatter_mud(x: torch.Tensor, liquid: torch.Tensor, thresh: float,
                 sigma: float) -> torch.Tensor:
    mask = (liquid > thresh).to(torch.float32)
    m = gaussian_filter(mask, sigma, "nearest", 4.0)
    m = torch.where(m < 0.8, torch.zeros_like(m), m).to(x.dtype)
    color = torch.tensor([63.0, 42.0, 20.0], device=x.device).view(1, 3, 1, 1) / 255.0
    return x * (1 - m) + color.to(x.dtype) * m


@register_stressor("spatter", monotone=False, family="weather", tables=SPATTER,
                   param_names=("mean", "std", "sigma_px", "threshold", "intensity", "mud"))
def spatter(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """Water drops (severities 1–3) or mud splashes (4–5) from a blurred noise layer."""
    mean, std, sigma, thresh, intensity, mud = p
    n, _, h, w = x.shape
    liquid = rng.normal((1, h, w), dtype=torch.float64) * std + mean
    liquid = gaussian_filter(liquid, float(sigma), "nearest", 4.0)
    liquid = torch.where(liquid < thresh, torch.zeros_like(liquid), liquid)
    out: torch.Tensor | int = 0
    if mud < 1:
        out = out + (1 - mud) * _spatter_liquid(x, liquid, intensity).clamp(0, 1)
    if mud > 0:
        out = out + mud * _spatter_mud(x, liquid, thresh, intensity).clamp(0, 1)
    assert isinstance(out, torch.Tensor)  # every mud is < 1 or > 0
    return out
