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

from ._chunks import in_worker
from ._rng import ImageRNG
from ._spatial import (
    bilinear_gather,
    cv2_nearest_is_box_upscale,
    gaussian_filter,
    pil_box_resize,
    pil_box_upscale_flat_index,
    to_u8,
    u8_to_unit,
    unit_to_u8,
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


def _hsv_edit_reference(x: torch.Tensor, channel: int, scale: float, shift: float) -> torch.Tensor:
    """The reference's steps one by one (the slow, obvious version of ``_hsv_edit_u8``):
    rgb2hsv, ``c * scale + shift`` clipped to [0, 1] in one channel, hsv2rgb, and
    ``np.uint8(np.clip(y, 0, 1) * 255)``, all in float64; uint8 (N, 3, H, W)."""
    hsv = rgb_to_hsv(_as_reference_float(x))
    hsv[:, channel] = (hsv[:, channel] * scale + shift).clamp(0, 1)
    return hsv_to_rgb(hsv).clamp_(0, 1).mul_(255.0).floor_().to(torch.uint8)


def _floor_u8(y: torch.Tensor) -> torch.Tensor:
    # np.uint8(np.clip(y, 0, 1) * 255) in float64: results that are integers in exact
    # arithmetic but land a hair below in floating point drop a level, as they did in the
    # reference. In place: y is always a temporary of the caller's.
    return y.clamp_(0, 1).mul_(255.0).floor_().to(torch.uint8)


def _hsv_edit_u8(x: torch.Tensor, channel: int, scale: float, shift: float) -> torch.Tensor:
    """``_hsv_edit_reference`` in fewer passes over the batch, bit for bit: the same float64
    operations on every value, but the hue's three candidate quotients become one (the
    numerator picked first), and v, p, q, t are truncated to 8 bits before each output
    channel picks one of them by sector (truncation commutes with picking), so the picks
    move bytes instead of gathering float64 through an int64 index. 1.25x on one thread
    at 32 px; equal to the reference on all 2^24 colours for every table row (checked
    once; the tests check a grid of them)."""
    rgb = _as_reference_float(x)
    r, g, b = rgb.unbind(1)
    v = rgb.amax(1)
    delta = v - rgb.amin(1)
    grey = delta == 0
    s = delta / v.masked_fill(grey, 1.0)  # rgb2hsv: 0 where grey (v == 0 only there)
    bmax = b == v
    gmax = (g == v) & ~bmax  # where two channels tie for the maximum, blue wins, then green
    h = torch.where(bmax, r - g, torch.where(gmax, b - r, g - b)).div_(delta.masked_fill_(grey, 1.0))
    h = torch.where(bmax, h + 4.0, torch.where(gmax, h + 2.0, h))
    h = torch.remainder(h.div_(6.0), 1.0).masked_fill_(grey, 0.0)
    if channel == 2:
        v = (v * scale + shift).clamp_(0, 1)
    else:
        s = (s * scale + shift).clamp_(0, 1)
    h6 = h.mul_(6.0)
    hi = torch.floor(h6)
    f = h6.sub_(hi)
    sector = torch.remainder(hi, 6.0).to(torch.uint8)
    p8 = _floor_u8(v * (1 - s))
    q8 = _floor_u8(v * (1 - f * s))
    t8 = _floor_u8((1 - f).mul_(s).neg_().add_(1.0).mul_(v))  # v * (1 - (1 - f) * s)
    v8 = _floor_u8(v)
    out = torch.empty(x.shape, dtype=torch.uint8, device=x.device)
    # hsv2rgb's six sectors: (r, g, b) = (v,t,p) (q,v,p) (p,v,t) (p,q,v) (t,p,v) (v,p,q)
    torch.where(sector == 1, q8, torch.where(sector == 4, t8, torch.where(
        (sector == 2) | (sector == 3), p8, v8)), out=out[:, 0])
    torch.where(sector == 0, t8, torch.where(sector == 3, q8, torch.where(
        sector >= 4, p8, v8)), out=out[:, 1])
    torch.where(sector == 2, t8, torch.where(sector == 5, q8, torch.where(
        sector <= 1, p8, v8)), out=out[:, 2])
    return out


def _brightness_u8(x: torch.Tensor, p: tuple, out: torch.Tensor | None = None) -> torch.Tensor:
    return _hsv_edit_u8(x, 2, 1.0, p[0])


def _saturate_u8(x: torch.Tensor, p: tuple, out: torch.Tensor | None = None) -> torch.Tensor:
    return _hsv_edit_u8(x, 1, p[0], p[1])


# Hendrycks & Dietterich (2019) file brightness under weather (snow, frost, fog, brightness).
@register_stressor("brightness", random=False, u8_op=_brightness_u8, family="weather",
                   tables=BRIGHTNESS, param_names=("value_shift",), benchmark=True)
def brightness(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """HSV value raised by ``c`` (clipped to 1)."""
    return _brightness_u8(x, p).to(x.dtype).div_(255.0)


@register_stressor("saturate", random=False, monotone=False, u8_op=_saturate_u8,
                   family="digital", tables=SATURATE,
                   param_names=("saturation_factor", "saturation_shift"))
def saturate(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """HSV saturation scaled by ``c0`` and shifted by ``c1`` (clipped to [0, 1])."""
    return _saturate_u8(x, p).to(x.dtype).div_(255.0)


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
def _pixelate_u8(x: torch.Tensor, p: tuple, out: torch.Tensor | None = None) -> torch.Tensor:
    h, w = x.shape[-2:]
    sh, sw = max(1, int(h * p[0])), max(1, int(w * p[0]))
    if x.device.type == "cpu" and _PIXELATE_CPU_VIA_PIL:
        return _pixelate_pil(x, sh, sw, out)
    small = pil_box_resize(to_u8(x), sh, sw)
    return pil_box_resize(small, h, w).to(torch.uint8)


@register_stressor("pixelate", random=False, u8_op=_pixelate_u8, family="digital",
                   tables=PIXELATE, param_names=("fraction",), benchmark=True, chunk_scale=4)
def pixelate(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """PIL BOX resize to ``int(side * c)`` and back."""
    return _pixelate_u8(x, p).to(x.dtype).div_(255.0)


# On the CPU, PIL's own resampler (C) in two calls per chunk beats the batched tap
# matmuls (the CUDA path) at every size: 10.6 vs 25 us per image at 32 px, 376 vs 473 at
# 224 px on one thread; both give the same bytes (a test checks).
_PIXELATE_CPU_VIA_PIL = True


def _pixelate_pil(x: torch.Tensor, sh: int, sw: int,
                  out: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 pixelated images, or with ``out`` (float32, contiguous, x's shape) their
    k/255 written there and ``out`` returned.

    PIL resizes a 2-D "L" image with a horizontal pass, then a vertical one, each rounded
    to 8 bits; a resize that changes one side runs that pass alone. So the whole chunk
    takes two calls: every plane's rows stacked into one tall image for the horizontal
    pass (rows are independent there), then the planes side by side in one wide image for
    the vertical pass (columns are independent there). The bytes are those of the
    reference's RGB resize: PIL computes each band with the same integer arithmetic.

    Horizontal first, always: the reference generator's PIL (and the CUDA port) did so.
    Pillow 13 runs the vertical pass first when the height shrinks much more than the
    width (tall images, about H > 2.1 W); for square images, the benchmarks' and the
    original generator's, both orders are the same call (checked at every side up to 519
    px and every table fraction), so only tall non-square images see the difference.
    """
    from PIL import Image

    n, c, h, w = x.shape
    box = Image.Resampling.BOX
    u8 = unit_to_u8(x).numpy().reshape(n * c * h, w)
    tall = np.asarray(Image.fromarray(u8).resize((sw, n * c * h), box))
    wide = np.ascontiguousarray(tall.reshape(n * c, h, sw).transpose(1, 0, 2))
    small = np.asarray(Image.fromarray(wide.reshape(h, n * c * sw)).resize((n * c * sw, sh), box))
    # PIL's BOX upscale copies one input pixel per output pixel: a gather per plane from
    # the small plane. Done in float32 (the small planes divided by 255 first), it runs
    # ~4x faster than on bytes and writes the output's values at once; OpenCV's nearest
    # resize, where it copies the same pixels (checked per size pair), 1.4x faster again.
    index = pil_box_upscale_flat_index(sh, sw, h, w)
    if out is not None and out.dtype == torch.float32 and out.is_contiguous():
        small_f = np.empty(small.shape, dtype=np.float32)
        u8_to_unit(small, small_f)
        if cv2_nearest_is_box_upscale(sh, sw, h, w):
            import cv2
            dst = out.numpy().reshape(n * c, h, w)
            by_plane = small_f.reshape(sh, n * c, sw)
            for i in range(n * c):
                cv2.resize(by_plane[:, i], (w, h), dst=dst[i],
                           interpolation=cv2.INTER_NEAREST_EXACT)
            return out
        planes = torch.from_numpy(small_f).view(sh, n * c, sw).transpose(0, 1)
        torch.index_select(planes.reshape(n * c, sh * sw), 1, index, out=out.view(n * c, h * w))
        return out
    planes = torch.from_numpy(small.copy()).view(sh, n * c, sw).transpose(0, 1)
    return planes.reshape(n * c, sh * sw).index_select(1, index).view(n, c, h, w)


def _jpeg_u8(x: torch.Tensor, p: tuple, out: torch.Tensor | None = None) -> torch.Tensor:
    quality = int(round(p[0]))
    u8 = unit_to_u8(x.to("cpu"))
    if x.device.type != "cpu" or out is None or out.dtype != torch.float32 \
            or not out.is_contiguous():
        out = None
    small = u8.shape[-2] * u8.shape[-1] < _PIL_JPEG_MIN_PIXELS
    if small and in_worker() and _codec_matches_pil("torchvision", quality):
        # On several stressor threads, small images take torchvision's batched codec
        # first: one call per chunk outside the GIL, where OpenCV's per-image calls
        # (and their Python between) serialise on it. 2000 32-px images, two threads:
        # 29-32 k vs 20-26 k img/s (one thread: 20 k vs 27 k, hence OpenCV there).
        y = _jpeg_torchvision(u8, quality)
    elif _codec_matches_pil("opencv", quality):
        # Why OpenCV: its imencode/imdecode wrap libjpeg-turbo in one C call per image
        # (PIL's save/decode take several Python steps), 1.65x PIL's round trip at 224 px
        # and 1.2x torchvision's batched codec at 32 px on one thread, and, checked on
        # this very build, give PIL's pixels.
        y = _jpeg_planar(u8, quality, out, opencv=True)
    elif not small:
        y = _jpeg_planar(u8, quality, out, opencv=False)
    elif _codec_matches_pil("torchvision", quality):
        # torchvision's batched codec: no Python round trip per image (2.2x PIL at 32 px).
        y = _jpeg_torchvision(u8, quality)
    else:
        arr = jpeg_pil(u8.permute(0, 2, 3, 1).contiguous().numpy(), quality)
        y = torch.from_numpy(arr).permute(0, 3, 1, 2)
    if y is out:
        return out
    if out is not None:
        u8_to_unit(y.contiguous().numpy().reshape(-1, y.shape[-1]),
                   out.numpy().reshape(-1, y.shape[-1]))
        return out
    return y.to(x.device)


def _jpeg_torchvision(u8: torch.Tensor, quality: int) -> torch.Tensor:
    # torchvision 0.29 deprecates its codecs (a DeprecationWarning, for TorchCodec): once
    # they are gone, _codec_matches_pil("torchvision", q) fails and OpenCV's path is taken.
    from torchvision.io import decode_jpeg, encode_jpeg
    return torch.stack(decode_jpeg(encode_jpeg(list(u8), quality=quality)))


@register_stressor("jpeg_compression", random=False, u8_op=_jpeg_u8, family="digital",
                   tables=JPEG, param_names=("quality",), benchmark=True, chunk_scale=4)
def jpeg_compression(x: torch.Tensor, p: tuple, rng: ImageRNG) -> torch.Tensor:
    """PIL JPEG encode/decode at ``quality`` (4:2:0 chroma, PIL's defaults)."""
    return _jpeg_u8(x, p).to(x.dtype).div_(255.0)


# Without OpenCV's codec: from 64 x 64 px up PIL itself with OpenCV's SIMD channel
# interleave (cv2.merge/split) beats torchvision's codec, whose CHW <-> HWC copies cost as
# much as the encode there (686 vs 954 CPU-us per 224-px image at quality 25, same bytes);
# below, PIL's per-image Python calls dominate and torchvision's batched call wins.
_PIL_JPEG_MIN_PIXELS = 64 * 64


def _jpeg_planar(u8: torch.Tensor, quality: int, out: torch.Tensor | None = None, *,
                 opencv: bool) -> torch.Tensor:
    """The JPEG round trip of uint8 N×3×H×W images, image by image, through OpenCV's codec
    or PIL's (the reference's), the planes interleaved and split again by OpenCV; with
    ``out`` (float32, contiguous, CPU) their k/255 go there and ``out`` is returned."""
    import cv2
    from PIL import Image

    n, _, h, w = u8.shape
    planes = u8.contiguous().numpy()
    dst = np.empty_like(planes)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality]
    for i in range(n):
        r, g, b = planes[i]
        if opencv:  # OpenCV's images are BGR
            ok, data = cv2.imencode(".jpg", cv2.merge((b, g, r)), params)
            decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else None
            if decoded is None or decoded.shape != (h, w, 3):
                raise RuntimeError(f"OpenCV's JPEG codec failed on a {h}x{w} image")
            dst[i, 2], dst[i, 1], dst[i, 0] = cv2.split(decoded)
        else:
            buf = io.BytesIO()
            Image.fromarray(cv2.merge((r, g, b))).save(buf, "JPEG", quality=quality)
            decoded = np.asarray(Image.frombytes("RGB", (w, h), buf.getvalue(), "jpeg", "RGB",
                                                 ""))
            dst[i, 0], dst[i, 1], dst[i, 2] = cv2.split(decoded)
    if out is None:
        return torch.from_numpy(dst)
    u8_to_unit(dst.reshape(-1, w), out.numpy().reshape(-1, w))
    return out


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
def _codec_matches_pil(codec: str, quality: int) -> bool:
    """Whether ``codec`` ("opencv" or "torchvision") reproduces PIL's JPEG pixels at
    ``quality`` on this install (all wrap libjpeg(-turbo), possibly different builds):
    checked once per quality on probe images with smooth areas, edges, noise and partial
    8x8 blocks; any difference, error or missing codec keeps PIL."""
    if codec not in ("opencv", "torchvision"):
        raise ValueError(f"unknown JPEG codec {codec!r}")
    g = np.random.default_rng(7)
    probes = []
    for h, w in ((32, 32), (37, 53), (64, 80)):
        ramp = np.linspace(0, 255, w)[None, :, None] * np.linspace(0.2, 1, h)[:, None, None]
        img = ramp + g.normal(0, 18, (h, w, 3)) + 60 * (np.arange(w) % 9 < 3)[None, :, None]
        probes.append(np.clip(img, 0, 255).astype(np.uint8))
    batch = [torch.from_numpy(a).permute(2, 0, 1).contiguous()[None] for a in probes]
    try:
        # the very functions the stressor calls, on batches of one
        if codec == "opencv":
            got = [_jpeg_planar(t, quality, opencv=True) for t in batch]
        else:
            got = [_jpeg_torchvision(t, quality) for t in batch]
        return all(np.array_equal(y[0].permute(1, 2, 0).numpy(), jpeg_pil(a[None], quality)[0])
                   for y, a in zip(got, probes))
    except Exception:  # noqa: BLE001 - a probe: any failure of the codec (cv2.error,
        return False   # a torchvision ValueError, a missing library) keeps PIL
