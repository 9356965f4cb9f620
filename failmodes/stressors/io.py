"""Corrupt image files on disk and draw contact sheets (the ``failmodes corrupt`` command).

>>> res = corrupt_path("cat.jpg", "fog", 3, out="out/")       # doctest: +SKIP
>>> res.written, res.sheet  # doctest: +SKIP
([PosixPath('out/cat_fog-3.png')], PosixPath('out/contact_sheet.png'))

Images are read by the one decoder, ``failmodes.data.decode`` (alpha over white, 16-bit
grey as v/257, EXIF orientation applied); files it cannot read are reported and skipped.
Image *i* of the sorted file list gets dataset index *i*, so its corruption does not
depend on which other files are in the folder's batches.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .._atomic import save_atomic
from .._device import resolve_device
from ..errors import FailmodesError
from .registry import get_stressor, suite

SHEET_NAME = "contact_sheet.png"
SHEET_SEVERITIES = (0, 1, 2, 3, 4, 5)
# Contact-sheet tiles: small images are enlarged by an integer factor (nearest, so the
# pixels stay visible) up to this side; large ones are shrunk to it.
TILE_PX = 128
_BATCH = 256  # images per stressor call when a folder holds many same-size images


class ImageInputError(ValueError, FailmodesError):
    """A path that is missing, empty of images, or not a readable image (one line)."""


@dataclass
class CorruptResult:
    """What ``corrupt_path`` wrote: corrupted PNGs, skipped inputs with reasons, the sheet."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    sheet: Path | None = None


def _image_suffixes() -> set[str]:
    from PIL import Image

    Image.init()
    return {ext.lower() for ext in Image.registered_extensions()}


def find_images(path: str | Path) -> list[Path]:
    """The image files under ``path`` (a file, or a folder searched recursively), sorted.

    Files whose suffix PIL does not know (``.txt``, ``.DS_Store``) are ignored.
    """
    path = Path(path)
    if not path.exists():
        raise ImageInputError(f"no such file or folder: {path}")
    if path.is_file():
        return [path]
    exts = _image_suffixes()
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in exts)
    if not files:
        looked = ", ".join(sorted(exts)[:6])
        raise ImageInputError(f"no image files in {path} (looked for {looked}, ...)")
    return files


def load_image(path: str | Path) -> torch.Tensor:
    """Read one image as float32 3×H×W in [0, 1] (RGB); raises ImageInputError.

    Decoded by ``failmodes.data.decode_image``, the decoder evaluate and probe use too
    (EXIF orientation applied, alpha over white, 16-bit grey as v/257).
    """
    from ..data.decode import ImageDecodeError, decode_image

    try:
        rgb = decode_image(Path(path))
    except ImageDecodeError as e:
        raise ImageInputError(f"cannot read image {e}") from None
    return torch.from_numpy(rgb).permute(2, 0, 1).float() / 255.0


def save_image(image: torch.Tensor, path: str | Path) -> Path:
    """Write a 3×H×W [0, 1] tensor as an 8-bit RGB PNG (rounded), creating folders."""
    from PIL import Image

    arr = (image.detach().clamp(0, 1) * 255.0).round().to("cpu", torch.uint8)
    img = Image.fromarray(arr.permute(1, 2, 0).numpy())
    return save_atomic(path, lambda f: img.save(f, format="PNG"))


def _out_name(src: Path, root: Path, stressor: str, severity: float) -> Path:
    rel = src.relative_to(root) if root.is_dir() else Path(src.name)
    return rel.with_name(f"{rel.stem}_{stressor}-{severity:g}.png")


def _check_out_apart(root: Path, out: Path) -> None:
    # Corrupted copies written into the input folder would be read as data by the next run
    # (and by an evaluation of that folder): the output must lie outside it.
    if not root.is_dir():
        return
    folder, target = root.expanduser().resolve(), out.expanduser().resolve()
    if target == folder or folder in target.parents:
        raise ImageInputError(f"--out {out} is {'the' if target == folder else 'inside the'} "
                              f"input folder {root}; corrupted copies would mix with the "
                              "originals: write them elsewhere")


def corrupt_path(path: str | Path, stressor: str | None, severity: float = 3.0, *,
                 out: str | Path, seed: int = 0, params: str = "auto", sheet: bool = True,
                 sheet_stressors: Sequence[str] | None = None,
                 device: str = "cpu") -> CorruptResult:
    """Corrupt an image file or every image under a folder and write PNGs into ``out``.

    ``stressor`` None writes only the contact sheet (``sheet`` must then be True).
    Outputs keep the folder layout: ``out/<rel dir>/<stem>_<stressor>-<severity>.png``.
    The contact sheet (``out/contact_sheet.png``) shows the first readable image under
    ``sheet_stressors`` (default: all 19 corruptions) at severities 0..5.
    """
    if stressor is None and not sheet:
        raise ImageInputError("nothing to do: give --stressor NAME and/or --sheet")
    st = get_stressor(stressor) if stressor is not None else None
    if st is not None:
        st.check_value(severity)  # fail before reading any file
    rows = list(sheet_stressors) if sheet_stressors else suite("all")
    for name in rows:
        get_stressor(name)
    root = Path(path)
    out = Path(out)
    _check_out_apart(root, out)
    files = find_images(root)
    dev = resolve_device(device)
    res = CorruptResult()

    images: list[tuple[int, Path, torch.Tensor]] = []
    for i, f in enumerate(files):
        try:
            images.append((i, f, load_image(f)))
        except ImageInputError as e:
            res.skipped.append((f, str(e).split(": ", 1)[-1]))
    if not images:
        if root.is_file():
            raise ImageInputError(f"cannot read image {root}: {res.skipped[0][1]}")
        raise ImageInputError(f"none of the {len(files)} image files under {root} could be read")

    if st is not None:
        for idx, group in _same_size_batches(images):
            x = torch.stack([img for _, _, img in group]).to(dev)
            y = st(x, severity, seed=seed, indices=torch.tensor(idx), params=params)
            for (_, f, _), yi in zip(group, y, strict=True):
                res.written.append(save_image(yi, out / _out_name(f, root, st.name, severity)))
    if sheet:
        first = images[0]
        res.sheet = save_contact_sheet(first[2], rows, out / SHEET_NAME, seed=seed,
                                       params=params, index=first[0], device=dev,
                                       title=first[1].name)
    return res


def _same_size_batches(images):
    by_size: dict[tuple, list] = {}
    for item in images:
        by_size.setdefault(tuple(item[2].shape), []).append(item)
    for group in by_size.values():
        for k in range(0, len(group), _BATCH):
            chunk = group[k:k + _BATCH]
            yield [i for i, _, _ in chunk], chunk


def contact_sheet(image: torch.Tensor, stressors: Iterable[str], *, seed: int = 0,
                  params: str = "auto", index: int = 0, severities=SHEET_SEVERITIES,
                  device="cpu", title: str = ""):
    """A labelled PIL image: one row per stressor, one column per severity.

    image: 3×H×W in [0, 1]. Each row is one stressor call on the image repeated once
    per severity (same dataset ``index``, so the noise pattern matches the CLI's PNGs).
    """
    from PIL import Image, ImageDraw

    names = list(stressors)
    x = image.unsqueeze(0).to(device)
    h, w = image.shape[-2:]
    side = max(h, w)
    scale = max(1, TILE_PX // side) if side < TILE_PX else TILE_PX / side
    tw, th = max(1, int(round(w * scale))), max(1, int(round(h * scale)))
    resample = Image.Resampling.NEAREST if scale >= 1 else Image.Resampling.LANCZOS
    label_w, head_h, pad = 130, 34, 4
    W = label_w + len(severities) * (tw + pad) + pad
    H = head_h + len(names) * (th + pad) + pad
    sheet = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    font = _font(13)
    draw.text((pad, 2), title[:60], fill=(0, 0, 0), font=font)
    for j, s in enumerate(severities):
        draw.text((label_w + j * (tw + pad) + pad, head_h - 16), f"severity {s:g}",
                  fill=(0, 0, 0), font=font)
    for r, name in enumerate(names):
        st = get_stressor(name)
        top = head_h + r * (th + pad) + pad
        draw.text((pad, top + th // 2 - 7), name, fill=(0, 0, 0), font=font)
        for j, s in enumerate(severities):
            y = st(x, float(s), seed=seed, indices=[index], params=params)[0]
            arr = (y.clamp(0, 1) * 255).round().to("cpu", torch.uint8).permute(1, 2, 0).numpy()
            tile = Image.fromarray(arr).resize((tw, th), resample)
            sheet.paste(tile, (label_w + j * (tw + pad) + pad, top))
    return sheet


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:
        return ImageFont.load_default()


def save_contact_sheet(image: torch.Tensor, stressors: Iterable[str], path: str | Path,
                       **kw) -> Path:
    """``contact_sheet(...)`` written to ``path`` as PNG."""
    sheet = contact_sheet(image, stressors, **kw)
    return save_atomic(path, lambda f: sheet.save(f, format="PNG"))
