"""Digital corruptions (CIFAR-10-C family "digital": brightness, contrast,
elastic_transform, pixelate, jpeg_compression; extra: saturate).

Ported from ``make_cifar_c.py`` / ``make_imagenet_c.py`` (hendrycks/robustness):
brightness and saturate go through scikit-image's HSV round trip (rgb2hsv/hsv2rgb,
batched here in float64); elastic_transform is cv2.warpAffine of a random affine
(bilinear, reflect-101 border, OpenCV 3.4's 1/32-px fixed-point coordinates), then
scipy's order-1 map_coordinates (reflect border) along a Gaussian-smoothed random
field; pixelate is PIL's BOX resize down and up (its fixed-point arithmetic emulated
exactly); jpeg_compression goes through PIL itself.

Elastic parameters are fractions of the image side (the reference multiplies by 32 for
CIFAR and by 244 for 224-px ImageNet); pixelate keeps the published fraction of the
side; the others do not depend on the image size.
"""
from __future__ import annotations

import functools
import io

import numpy as np
import torch

from ._rng import ImageRNG
from ._spatial import (
    bilinear_gather,
    gaussian_filter,
    pil_box_resize,
    pil_box_upscale_index,
    to_u8,
)
from .registry import register_stressor

# Severity tables: row 0 = identity, rows 1..5 = make_cifar_c.py / make_imagenet_c.py.
BRIGHTNESS = {"cifar": [(0.0,), (0.05,), (0.1,), (0.15,), (0.2,), (0.3,)],
              "imagenet": [(0.0,), (0.1,), (0.2,), (0.3,), (0.4,), (0.5,)],
              "tinyimagenet": [(0.0,), (0.1,), (0.2,), (0.3,), (0.4,), (0.5,)]}
CONTRAST = {"cifar": [(1.0,), (0.75,), (0.5,), (0.4,), (0.3,), (0.15,)],
            "imagenet": [(1.0,), (0.4,), (0.3,), (0.2,), (0.1,), (0.05,)],
            "tinyimagenet": [(1.0,), (0.4,), (0.3,), (0.2,), (0.1,), (0.05,)]}
# saturate: saturation factor, saturation offset.
SATURATE = {"cifar": [(1.0, 0.0), (0.3, 0), (0.1, 0), (1.5, 0), (2, 0.1), (2.5, 0.2)],
            "imagenet": [(1.0, 0.0), (0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (20, 0.2)],
            "tinyimagenet": [(1.0, 0.0), (0.3, 0), (0.1, 0), (2, 0), (5, 0.1), (30, 0.2)]}
# PIL JPEG quality (rounded to an integer for fractional severities).
JPEG = {"cifar": [(100,), (80,), (65,), (58,), (50,), (40,)],
        "imagenet": [(100,), (25,), (18,), (15,), (10,), (7,)],
        "tinyimagenet": [(100,), (65,), (58,), (50,), (40,), (25,)]}
# pixelate: side fraction of the intermediate image, int(side * fraction).
PIXELATE = {"cifar": [(1.0,), (0.95,), (0.9,), (0.85,), (0.75,), (0.65,)],
            "imagenet": [(1.0,), (0.6,), (0.5,), (0.4,), (0.3,), (0.25,)],
            "tinyimagenet": [(1.0,), (0.9,), (0.8,), (0.7,), (0.6,), (0.5,)]}
# elastic: field amplitude, field smoothing sigma, affine jitter, as fractions of the
# image side. CIFAR: IMSIZE (32) * k. ImageNet: 244 * k px on 224-px images ("244
# should have been 224" in the reference), i.e. 244/224 * k of the side.
_IN = 244.0 / 224.0
ELASTIC = {"cifar": [(0.0, 0.0, 0.0), (0.0, 0.0, 0.08), (0.05, 0.2, 0.07),
                     (0.08, 0.06, 0.06), (0.1, 0.04, 0.05), (0.1, 0.03, 0.03)],
           "imagenet": [(0.0, 0.0, 0.0), (_IN * 2, _IN * 0.7, _IN * 0.1),
                        (_IN * 2, _IN * 0.08, _IN * 0.2), (_IN * 0.05, _IN * 0.01, _IN * 0.02),
                        (_IN * 0.07, _IN * 0.01, _IN * 0.02),
                        (_IN * 0.12, _IN * 0.01, _IN * 0.02)],
           "tinyimagenet": [(0.0, 0.0, 0.0), (0.0, 0.0, 0.08), (0.05, 0.3, 0.06),
                               (0.1, 0.08, 0.06), (0.1, 0.03, 0.03), (0.16, 0.03, 0.02)]}


# ----------------------------------------------------------------------------- HSV
def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """skimage.color.rgb2hsv on (N, 3, H, W): hue in [0, 1), grey pixels get h = s = 0.

    Where two channels tie for the maximum, blue wins over green over red, as the
    reference's successive masked assignments do.
    """
    r, g, b = rgb.unbind(1)
    v = rgb.amax(1)
    delta = v - rgb.amin(1)
    safe = torch.where(delta == 0, torch.ones_like(delta), delta)
    s = torch.where(delta == 0, torch.zeros_like(v), delta / torch.where(v == 0, torch.ones_like(v), v))
    h = (g - b) / safe
    h = torch.where(g == v, 2.0 + (b - r) / safe, h)
    h = torch.where(b == v, 4.0 + (r - g) / safe, h)
    h = torch.remainder(h / 6.0, 1.0)
    h = torch.where(delta == 0, torch.zeros_like(h), h)
    return torch.stack((h, s, v), 1)


# hsv2rgb's six sectors pick (r, g, b) from (v, p, q, t): np.choose in the reference.
_SECTOR_PICK = torch.tensor([[0, 3, 1], [2, 0, 1], [1, 0, 3], [1, 2, 0], [3, 1, 0], [0, 1, 2]])


def hsv_to_rgb(hsv: torch.Tensor) -> torch.Tensor:
    """skimage.color.hsv2rgb on (N, 3, H, W)."""
    h, s, v = hsv.unbind(1)
    hi = torch.floor(h * 6)
    f = h * 6 - hi
    vpqt = torch.stack((v, v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)), 1)
    sector = torch.remainder(hi, 6).long()  # (N, H, W)
    pick = _SECTOR_PICK.to(hsv.device)[sector].permute(0, 3, 1, 2)  # (N, 3, H, W)
    return vpqt.gather(1, pick)


def _as_reference_float(x: torch.Tensor) -> torch.Tensor:
    # The reference computes np.array(uint8_image) / 255. in float64; recover those exact
    # doubles (a float32 k/255 widened to float64 is a different number).
    return x.to(torch.float64).mul_(255.0).round_().div_(255.0)


def _truncate(y: torch.Tensor, dtype) -> torch.Tensor:
    # np.uint8(np.clip(y, 0, 1) * 255) in float64, so that results that are integers in
    # exact arithmetic but land a hair below in floating point drop a level exactly as
    # they did in the reference (the registry's own quantisation forgives that hair).
    # In place: y is always a temporary of the caller's.
    return y.clamp_(0, 1).mul_(255.0).floor_().div_(255.0).to(dtype)


def _hsv_edit(x: torch.Tensor, channel: int, scale: float, shift: float) -> torch.Tensor:
    hsv = rgb_to_hsv(_as_reference_float(x))
    hsv[:, channel] = (hsv[:, channel] * scale + shift).clamp(0, 1)
    return _truncate(hsv_to_rgb(hsv), x.dtype)


# Hendrycks & Dietterich (2019) file brightness under weather (snow, frost, fog, brightness).
@register_stressor("brightness", random=False, family="weather", tables=BRIGHTNESS,
                   param_names=("value_shift",), benchmark=True)
def brightness(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """HSV value raised by ``c`` (clipped to 1)."""
    return _hsv_edit(x, 2, 1.0, p[0])


@register_stressor("saturate", random=False, monotone=False, family="digital", tables=SATURATE,
                   param_names=("saturation_factor", "saturation_shift"))
def saturate(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """HSV saturation scaled by ``c0`` and shifted by ``c1`` (clipped to [0, 1])."""
    return _hsv_edit(x, 1, p[0], p[1])


@register_stressor("contrast", random=False, family="digital", tables=CONTRAST,
                   param_names=("factor",), benchmark=True)
def contrast(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """Each channel pulled towards its image mean by the factor ``c``."""
    # float32 is enough: numpy's mean sums in another order anyway (mad 0.002 levels).
    means = x.mean((2, 3), keepdim=True)
    return (x - means).mul_(p[0]).add_(means)


# ----------------------------------------------------------------------------- elastic
def _affine_source_coords(pts_src: torch.Tensor, pts_dst: torch.Tensor, h: int, w: int):
    """For cv2.warpAffine(img, getAffineTransform(src, dst)): where each output pixel
    samples the input, (N, h, w) rows and cols, on cv2's 1/32-px grid."""
    n = pts_src.shape[0]
    ones = torch.ones(n, 3, 1, dtype=pts_dst.dtype, device=pts_dst.device)
    # The inverse map takes dst points to src points: [x y 1] @ A = src.
    a = torch.linalg.solve(torch.cat([pts_dst, ones], 2), pts_src)  # (N, 3, 2)
    ys = torch.arange(h, dtype=a.dtype, device=a.device).view(1, h, 1, 1)
    xs = torch.arange(w, dtype=a.dtype, device=a.device).view(1, 1, w, 1)
    a = a.view(n, 1, 1, 3, 2)
    # OpenCV 3.4 (the reference's) warpAffine works in fixed point: the row term and the
    # column term are each rounded to 1/1024 px, then the sum to 1/32 px (INTER_BITS = 5).
    row_term = torch.round((a[..., 1, :] * ys + a[..., 2, :]) * 1024.0)
    col_term = torch.round(a[..., 0, :] * xs * 1024.0)
    src = torch.floor((row_term + col_term + 16.0) / 32.0) / 32.0  # (N, h, w, 2)
    return src[..., 1], src[..., 0]


@register_stressor("elastic_transform", monotone=False, family="digital", tables=ELASTIC,
                   param_names=("alpha", "sigma", "affine"), benchmark=True)
def elastic_transform(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """A random affine warp, then a smooth random displacement field (fractions of side)."""
    n, _, h, w = x.shape
    side = min(h, w)
    alpha, sigma, jitter = (float(v) * side for v in p)
    # As the reference: centre from (h, w) // 2 used as (x, y), square of side // 3.
    c0, c1, sq = float(h // 2), float(w // 2), float(side // 3)
    pts1 = torch.tensor([[c0 + sq, c1 + sq], [c0 + sq, c1 - sq], [c0 - sq, c1 - sq]],
                        dtype=torch.float32, device=x.device).expand(n, 3, 2)
    jit = (rng.uniform((3, 2), dtype=torch.float64) * (2 * jitter) - jitter).to(torch.float32)
    pts2 = pts1 + jit
    sy, sx = _affine_source_coords(pts1.double(), pts2.double(), h, w)
    img = bilinear_gather(x, sy, sx, "reflect101")

    def field():
        u = rng.uniform((h, w), dtype=torch.float64) * 2 - 1
        return (gaussian_filter(u, sigma, "reflect", 3.0) * alpha).to(torch.float32)

    dx, dy = field(), field()
    rows = torch.arange(h, device=x.device, dtype=torch.float32).view(1, h, 1)
    cols = torch.arange(w, device=x.device, dtype=torch.float32).view(1, 1, w)
    return bilinear_gather(img, rows + dy, cols + dx, "reflect")


# ----------------------------------------------------------------------------- PIL ops
def _pixelate_u8(x: torch.Tensor, p: tuple) -> torch.Tensor:
    h, w = x.shape[-2:]
    sh, sw = max(1, int(h * p[0])), max(1, int(w * p[0]))
    if x.device.type == "cpu" and h * w >= _PIL_BOX_MIN_PIXELS:
        return _pixelate_pil(x, sh, sw)
    small = pil_box_resize(to_u8(x), sh, sw)
    return pil_box_resize(small, h, w).to(torch.uint8)


@register_stressor("pixelate", random=False, u8_op=_pixelate_u8, family="digital",
                   tables=PIXELATE, param_names=("fraction",), benchmark=True)
def pixelate(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """PIL BOX resize to ``int(side * c)`` and back."""
    return _pixelate_u8(x, p).to(x.dtype).div_(255.0)


# From 64 x 64 px up PIL's own resampler (C, per image) beats the batched tap matmuls on
# CPU (measured 1.4x at 64 px, 2.4x at 224 px; 0.5x at 32 px); both give the same bytes.
_PIL_BOX_MIN_PIXELS = 64 * 64


def _pixelate_pil(x: torch.Tensor, sh: int, sw: int) -> torch.Tensor:
    from PIL import Image

    h, w = x.shape[-2:]
    # One channel plane at a time ("L" images): PIL's 8-bit BOX pass computes each band
    # with the same integer arithmetic, so the bytes equal an RGB resize's, and the
    # planes need no NCHW <-> NHWC transposition (which cost more than the resizes).
    planes = to_u8(x).to(torch.uint8).reshape(-1, h, w).numpy()
    small = np.empty((len(planes), sh, sw), dtype=np.uint8)
    for i, plane in enumerate(planes):
        small[i] = np.asarray(Image.fromarray(plane).resize((sw, sh), Image.Resampling.BOX))
    # PIL's BOX upscale copies one input pixel per output pixel: two gathers on the whole
    # batch instead of a PIL resample per plane (~10 % of pixelate at 224 px: the byte-wise
    # gather along the last axis costs nearly what PIL's upscale did).
    up = torch.from_numpy(small).view(len(x), -1, sh, sw)
    return up.index_select(2, pil_box_upscale_index(sh, h)).index_select(
        3, pil_box_upscale_index(sw, w))


def _jpeg_u8(x: torch.Tensor, p: tuple) -> torch.Tensor:
    quality = int(round(p[0]))
    u8 = to_u8(x).to("cpu", torch.uint8)
    if u8.shape[-2] * u8.shape[-1] >= _PIL_JPEG_MIN_PIXELS:
        return _jpeg_pil_planar(u8, quality).to(x.device)
    if _codec_matches_pil(quality):
        # Why not PIL per image: torchvision's batched codec wraps the same libjpeg(-turbo)
        # calls without a Python round trip per image (2.2x at 32 px, 1.4x at 224 px on
        # one thread) and, checked on this very build, gives PIL's bytes.
        from torchvision.io import decode_jpeg, encode_jpeg
        out = torch.stack(decode_jpeg(encode_jpeg(list(u8), quality=quality)))
    else:
        arr = jpeg_pil(u8.permute(0, 2, 3, 1).contiguous().numpy(), quality)
        out = torch.from_numpy(arr).permute(0, 3, 1, 2)
    return out.to(x.device)


@register_stressor("jpeg_compression", random=False, u8_op=_jpeg_u8, family="digital",
                   tables=JPEG, param_names=("quality",), benchmark=True)
def jpeg_compression(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """PIL JPEG encode/decode at ``quality`` (4:2:0 chroma, PIL's defaults)."""
    return _jpeg_u8(x, p).to(x.dtype).div_(255.0)


# From 64 x 64 px up PIL itself with OpenCV's SIMD channel interleave (cv2.merge/split)
# beats torchvision's codec, whose CHW <-> HWC copies cost as much as the encode there
# (686 vs 954 CPU-us per 224-px image at quality 25, same bytes); below, PIL's per-image
# Python calls dominate and torchvision's batched call wins (2.2x at 32 px).
_PIL_JPEG_MIN_PIXELS = 64 * 64


def _jpeg_pil_planar(u8: torch.Tensor, quality: int) -> torch.Tensor:
    """PIL's JPEG round trip of uint8 N×3×H×W images (the reference's codec, so the same
    bytes by construction), planes interleaved and split again by OpenCV."""
    import cv2
    from PIL import Image

    n, _, h, w = u8.shape
    planes = u8.contiguous().numpy()
    out = np.empty_like(planes)
    for i in range(n):
        buf = io.BytesIO()
        Image.fromarray(cv2.merge(list(planes[i]))).save(buf, "JPEG", quality=quality)
        decoded = np.asarray(Image.frombytes("RGB", (w, h), buf.getvalue(), "jpeg", "RGB", ""))
        for c, plane in enumerate(cv2.split(decoded)):
            out[i, c] = plane
    return torch.from_numpy(out)


def jpeg_pil(arr: np.ndarray, quality: int) -> np.ndarray:
    """The reference: N×H×W×3 uint8 through PIL's JPEG save and decoder, image by image."""
    from PIL import Image

    out = np.empty_like(arr)
    h, w = arr.shape[1:3]
    # The codec (quantisation tables, 4:2:0, libjpeg's DCT and upsampling) is where the
    # reference's numbers come from. Decoding with frombytes' "jpeg" decoder gives
    # Image.open's pixels without its header parsing.
    for i, a in enumerate(arr):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, "JPEG", quality=quality)
        out[i] = np.asarray(Image.frombytes("RGB", (w, h), buf.getvalue(), "jpeg", "RGB", ""))
    return out


@functools.cache
def _codec_matches_pil(quality: int) -> bool:
    """Whether torchvision's JPEG codec reproduces PIL's pixels at ``quality`` on this
    install (both wrap libjpeg(-turbo), possibly different builds): checked once per
    quality on probe images with smooth areas, edges and noise; any difference (or no
    torchvision image codec) keeps PIL."""
    try:
        from torchvision.io import decode_jpeg, encode_jpeg
    except ImportError:
        return False
    g = np.random.default_rng(7)
    probes = []
    for h, w in ((32, 32), (37, 53)):
        ramp = np.linspace(0, 255, w)[None, :, None] * np.linspace(0.2, 1, h)[:, None, None]
        img = ramp + g.normal(0, 18, (h, w, 3)) + 60 * (np.arange(w) % 9 < 3)[None, :, None]
        probes.append(np.clip(img, 0, 255).astype(np.uint8))
    try:
        for a in probes:
            t = torch.from_numpy(a).permute(2, 0, 1).contiguous()
            got = decode_jpeg(encode_jpeg(t, quality=quality)).permute(1, 2, 0).numpy()
            if not np.array_equal(got, jpeg_pil(a[None], quality)[0]):
                return False
    except (RuntimeError, ValueError):
        return False
    return True
