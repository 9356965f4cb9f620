"""The one image decoder: every command (evaluate, corrupt, probe, train) reads files here.

Rules, the same everywhere:

- EXIF orientation is applied (a phone photo stored sideways is seen upright).
- Alpha (RGBA, LA, PA, palette transparency) is composited over **white**, as the image
  looks on a page; the colour under fully transparent pixels never shows.
- 16-bit (and 32-bit integer) grey is mapped to 8 bits by a fixed ``v / 257`` rounded,
  so 65535 → 255 and the same raw value gives the same grey in every image (no
  per-image max scaling).
- Every other mode (L, P, CMYK, YCbCr, ...) goes through PIL's RGB conversion.
- Images above ``max_pixels()`` pixels (PIL's decompression-bomb limit) are refused from
  their header, before any pixel is decoded, so a 27 KB 15000² PNG costs no memory.

>>> import numpy as np, PIL.Image, io
>>> buf = io.BytesIO(); PIL.Image.new("LA", (2, 1), (0, 0)).save(buf, "PNG")
>>> decode_image(buf).tolist()   # fully transparent black over white
[[[255, 255, 255], [255, 255, 255]]]
"""
from __future__ import annotations

import os
from typing import IO

import numpy as np

from .dataset import DataError

# Resize modes: None keeps the image's size; "square" resizes to N×N (bilinear); "crop"
# resizes the shorter side to round(N·256/224) and centre-crops N×N, the ImageNet
# evaluation transform (Resize(256) + CenterCrop(224)) the ImageNet-C generator used.
RESIZE_MODES = ("square", "crop")
INTEGER_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")
ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
WHITE = (255, 255, 255)


class ImageDecodeError(DataError):
    """One file could not be decoded; the message names the file and the reason."""


def max_pixels() -> int:
    """The largest image (width × height) decoded: PIL's ``Image.MAX_IMAGE_PIXELS``."""
    from PIL import Image
    return int(Image.MAX_IMAGE_PIXELS or 89_478_485)


def crop_resize_side(size: int) -> int:
    """Shorter-side length before the centre crop: 256 for 224 (the ImageNet ratio)."""
    return int(round(size * 256 / 224))


def decode_image(source: str | os.PathLike | IO[bytes], size: int | None = None,
                 resize: str = "square") -> np.ndarray:
    """Decode one image file to uint8 H×W×3 RGB (see the module rules).

    size/resize: None keeps the file's size; ``"square"`` gives size×size (bilinear);
    ``"crop"`` gives the ImageNet transform (shorter side to size·256/224, centre crop).
    Raises ImageDecodeError (a DataError) naming the file.
    """
    from PIL import Image, UnidentifiedImageError
    name = os.fspath(source) if isinstance(source, (str, os.PathLike)) else \
        getattr(source, "name", "<image stream>")
    try:
        with Image.open(source) as im:
            w, h = im.size
            if w * h > max_pixels():
                raise ImageDecodeError(f"{name}: {w}×{h} pixels exceeds the decode limit of "
                                       f"{max_pixels()} (decompression bomb?)")
            rgb = to_rgb(im)
            if size is not None:
                rgb = _resize(rgb, size, resize)
            return np.array(rgb, dtype=np.uint8)  # writable, owns its memory
    except ImageDecodeError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, EOFError,
            Image.DecompressionBombError) as e:
        raise ImageDecodeError(f"{name}: {type(e).__name__}: {e}") from None


def to_rgb(im):
    """A PIL image of any mode as an RGB PIL image, EXIF orientation applied."""
    from PIL import Image, ImageOps
    im.load()
    if im.getexif().get(0x0112, 1) != 1:  # EXIF orientation; exif_transpose copies always
        im = ImageOps.exif_transpose(im)
    if im.mode == "RGB":
        return im
    if im.mode in INTEGER_MODES:
        a = np.asarray(im, dtype=np.float64)
        a = np.clip(np.floor(a / 257.0 + 0.5), 0, 255).astype(np.uint8)
        return Image.fromarray(a, "L").convert("RGB")
    if im.mode == "P" and "transparency" in im.info:
        im = im.convert("RGBA")
    if im.mode in ALPHA_MODES:
        im = im.convert("RGBA")
        return Image.alpha_composite(Image.new("RGBA", im.size, WHITE + (255,)), im).convert("RGB")
    return im.convert("RGB")


def _resize(im, size: int, mode: str):
    from PIL import Image
    if mode == "square":
        return im if im.size == (size, size) else im.resize((size, size),
                                                             Image.Resampling.BILINEAR)
    if mode != "crop":
        raise ValueError(f"unknown resize mode {mode!r}; choose from {RESIZE_MODES}")
    # torchvision's Resize(int) + CenterCrop on a PIL image, which the generator applied.
    from torchvision.transforms import functional as TF
    return TF.center_crop(TF.resize(im, crop_resize_side(size)), size)


def check_image_size(size: int | None) -> int | None:
    """``size`` as a positive int (or None); a one-line range error otherwise."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise DataError(f"image size must be a positive whole number of pixels, got {size!r}")
    return int(size)
