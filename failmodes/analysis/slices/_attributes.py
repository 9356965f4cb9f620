"""Interpretable attributes computed from pixels, the same way for every image, and their bins.

Regions: the **background** is the border band (``round(min(H, W) / 8)`` pixels wide, at
least 1), the **centre** the central square of half the side (rows ``H//4 .. H - H//4``).
Per image (uint8 N×H×W×3 in, float64 arrays of N out):

- ``background_hue`` / ``centre_hue`` (degrees), ``*_saturation``, ``*_brightness``: HSV of
  the region's mean colour (hue is circular: described, never binned by quantile);
- ``background`` / ``centre``: the named colour (``COLOURS``) covering most of the region's
  pixels, ties to the earlier name;
- ``contrast``: RMS contrast, the standard deviation of luma Y = 0.299 R + 0.587 G + 0.114 B
  (R, G, B in [0, 1]);
- ``colourfulness``: Hasler & Süsstrunk (2003), on the 0-255 scale: with rg = R - G and
  yb = (R + G) / 2 - B, sqrt(σ_rg² + σ_yb²) + 0.3 sqrt(μ_rg² + μ_yb²);
- ``edge_energy``: mean gradient magnitude of Y (forward differences), a texture measure;
- ``width`` / ``height`` / ``aspect`` of the original files when given and not all equal.

>>> attrs = image_attributes(dataset.images)                         # doctest: +SKIP
>>> attrs.value("background", 0), attrs.value("contrast", 0)         # doctest: +SKIP
('blue', 0.21)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._errors import SliceError

# Named colours: hue bins (degrees, [lo, hi)) for saturated pixels; red wraps around 0.
# Pixels darker than BLACK_V are black; less saturated than GREY_S are white (V >= WHITE_V)
# or grey. Thresholds on HSV with S and V in [0, 1].
HUE_BINS = (("red", 345.0, 15.0), ("orange", 15.0, 45.0), ("yellow", 45.0, 70.0),
            ("green", 70.0, 165.0), ("cyan", 165.0, 195.0), ("blue", 195.0, 255.0),
            ("purple", 255.0, 290.0), ("pink", 290.0, 345.0))
BLACK_V, GREY_S, WHITE_V = 0.2, 0.2, 0.8
COLOURS = tuple(name for name, _, _ in HUE_BINS) + ("white", "grey", "black")
REGIONS = ("background", "centre")
# Numeric attributes binned by quantile (hues are not: they are circular).
BINNED = ("background_saturation", "background_brightness", "centre_saturation",
          "centre_brightness", "contrast", "colourfulness", "edge_energy",
          "width", "height", "aspect")
LABELS = {"background_saturation": "background saturation",
          "background_brightness": "background brightness",
          "centre_saturation": "centre saturation", "centre_brightness": "centre brightness",
          "contrast": "contrast", "colourfulness": "colourfulness",
          "edge_energy": "edge energy", "width": "width", "height": "height",
          "aspect": "aspect ratio"}
UNITS = {"contrast": "RMS luma", "colourfulness": "Hasler-Süsstrunk",
         "edge_energy": "mean luma gradient", "width": "px", "height": "px",
         "aspect": "width/height"}
BIN_NAMES = {1: ("all",), 2: ("low", "high"), 3: ("low", "mid", "high"),
             4: ("low", "mid-low", "mid-high", "high")}


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1] (…×3) -> HSV (…×3): hue in degrees [0, 360), S and V in [0, 1];
    the hue of a grey (max = min) is 0, as in ``colorsys``."""
    r, g, b = rgb.unbind(-1)
    v, _ = rgb.max(-1)
    c = v - rgb.min(-1).values
    safe = torch.where(c > 0, c, torch.ones_like(c))
    s = torch.where(v > 0, c / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    # colorsys' priority when two channels tie for the max: red, then green, then blue.
    h = torch.where(r == v, ((g - b) / safe) % 6,
                    torch.where(g == v, (b - r) / safe + 2, (r - g) / safe + 4))
    h = torch.where(c > 0, h * 60.0, torch.zeros_like(h)) % 360.0
    return torch.stack([h, s, v], -1)


def named_colour_codes(hsv: torch.Tensor) -> torch.Tensor:
    """HSV (…×3, hue in degrees) -> index into ``COLOURS`` (int64, same leading shape)."""
    h, s, v = hsv.unbind(-1)
    code = torch.zeros_like(h, dtype=torch.int64)         # red: the wrap-around bin
    for i, (_, lo, hi) in enumerate(HUE_BINS[1:], start=1):
        code = torch.where((h >= lo) & (h < hi), torch.full_like(code, i), code)
    grey = torch.where(v >= WHITE_V, COLOURS.index("white"), COLOURS.index("grey"))
    code = torch.where(s < GREY_S, grey, code)
    return torch.where(v < BLACK_V, torch.full_like(code, COLOURS.index("black")), code)


def _regions(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    b = max(1, round(min(h, w) / 8))
    border = torch.ones(h, w, dtype=torch.bool)
    border[b:h - b, b:w - b] = False
    centre = torch.zeros(h, w, dtype=torch.bool)
    centre[h // 4:h - h // 4, w // 4:w - w // 4] = True
    return border, centre


@dataclass
class Attributes:
    """Per-image attributes: ``numeric`` name -> float64 N, ``categorical`` name -> int64 N
    codes into ``COLOURS``."""

    numeric: dict[str, np.ndarray]
    categorical: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.numeric.values())))

    def value(self, name: str, i: int):
        """Image ``i``'s value of attribute ``name`` (a colour name for the named ones)."""
        if name in self.categorical:
            return COLOURS[int(self.categorical[name][i])]
        if name in self.numeric:
            return float(self.numeric[name][i])
        raise SliceError(f"no attribute {name!r}; choose from "
                         f"{', '.join([*self.categorical, *self.numeric])}")

    def matrix(self) -> np.ndarray:
        """The binned numeric attributes, each standardised (z-score): N×D, for distances
        (a slice's most typical images are nearest its centroid here)."""
        cols = [self.numeric[k] for k in BINNED if k in self.numeric]
        x = np.stack(cols, 1)
        sd = x.std(0)
        return (x - x.mean(0)) / np.where(sd > 0, sd, 1.0)


def attribute_values() -> dict[str, tuple[str, ...]]:
    """Every attribute a slice (or a claim) can name, with the values it can take."""
    labels = tuple(dict.fromkeys(v for n in (2, 3, 4) for v in BIN_NAMES[n]))
    return {**{r: COLOURS for r in REGIONS}, **{b: labels for b in BINNED}}


def _check_images(images) -> torch.Tensor:
    x = torch.as_tensor(images)
    if x.dtype != torch.uint8:
        raise SliceError(f"attributes need uint8 images (N×H×W×3, 0-255), got {x.dtype}")
    if x.ndim != 4 or x.shape[-1] != 3 or len(x) == 0:
        raise SliceError(f"attributes need images as N×H×W×3 uint8, got shape "
                         f"{tuple(x.shape)}")
    return x


def image_attributes(images, *, batch_size: int = 512, sizes=None) -> Attributes:
    """The attributes of every image (uint8 N×H×W×3 tensor or array), in batches of
    ``batch_size`` images, vectorised (float64). ``sizes``: optional N×2 (width, height) of
    the original files (folder data); kept only when they are not all equal."""
    x = _check_images(images)
    n, h, w, _ = x.shape
    border, centre = _regions(h, w)
    k = len(COLOURS)
    out: dict[str, list[torch.Tensor]] = {}

    def put(name, t):
        out.setdefault(name, []).append(t)

    for i in range(0, n, batch_size):
        rgb = x[i:i + batch_size].to(torch.float64) / 255.0           # B×H×W×3
        m = len(rgb)
        for region, mask in zip(REGIONS, (border, centre), strict=True):
            px = rgb[:, mask]                                          # B×P×3
            hsv = rgb_to_hsv(px.mean(1))
            put(f"{region}_hue", hsv[:, 0])
            put(f"{region}_saturation", hsv[:, 1])
            put(f"{region}_brightness", hsv[:, 2])
            codes = named_colour_codes(rgb_to_hsv(px))                 # B×P
            counts = torch.zeros(m, k, dtype=torch.int64).scatter_add_(
                1, codes, torch.ones_like(codes))
            put(region, counts.argmax(1))
        y = rgb @ torch.tensor([0.299, 0.587, 0.114], dtype=torch.float64)   # B×H×W
        put("contrast", y.flatten(1).std(1, unbiased=False))
        r, g, b = (rgb[..., c].flatten(1) * 255.0 for c in range(3))
        rg, yb = r - g, 0.5 * (r + g) - b
        put("colourfulness", torch.hypot(rg.std(1, unbiased=False), yb.std(1, unbiased=False))
            + 0.3 * torch.hypot(rg.mean(1), yb.mean(1)))
        gx = (y[:, :-1, 1:] - y[:, :-1, :-1])
        gy = (y[:, 1:, :-1] - y[:, :-1, :-1])
        put("edge_energy", (gx ** 2 + gy ** 2).sqrt().flatten(1).mean(1))
    cat = {r: torch.cat(out.pop(r)).numpy() for r in REGIONS}
    num = {name: torch.cat(v).numpy() for name, v in out.items()}
    if sizes is not None:
        wh = np.asarray(sizes, dtype=np.float64)
        if wh.shape != (n, 2):
            raise SliceError(f"sizes must be N×2 (width, height) for {n} images, got "
                             f"{wh.shape}")
        for name, col in (("width", wh[:, 0]), ("height", wh[:, 1]),
                          ("aspect", wh[:, 0] / wh[:, 1])):
            if np.ptp(col) > 0:
                num[name] = col
    return Attributes(num, cat)


@dataclass
class Condition:
    """One attribute bin (or a cluster): ``key`` = (attribute, value), e.g. ("background",
    "blue") or ("contrast", "low"); ``mask`` bool N; ``text`` its description in words."""

    key: tuple[str, str]
    mask: np.ndarray
    text: str


def _colour_text(region: str, name: str) -> str:
    where = "border" if region == "background" else "centre"
    hue = {n: (lo, hi) for n, lo, hi in HUE_BINS}
    if name in hue:
        lo, hi = hue[name]
        return f"{name} {region} ({where} hue {lo:g}–{hi:g}°)"
    if name == "black":
        return f"black {region} ({where} brightness < {BLACK_V:g})"
    cond = f"≥ {WHITE_V:g}" if name == "white" else f"{BLACK_V:g}–{WHITE_V:g}"
    return f"{name} {region} ({where} saturation < {GREY_S:g}, brightness {cond})"


def _fmt(x: float) -> str:
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.0f}"


def attribute_conditions(attrs: Attributes, *, n_bins: int = 4) -> list[Condition]:
    """Every attribute bin as a ``Condition``: each named colour present in a region, and each
    binned numeric attribute cut at its ``n_bins``-quantiles (ties stay in one bin, so an
    attribute with few distinct values gets fewer bins; a constant one none)."""
    if n_bins not in BIN_NAMES or n_bins < 2:
        raise SliceError(f"n_bins must be 2, 3 or 4, got {n_bins!r}")
    out = []
    for region in REGIONS:
        codes = attrs.categorical[region]
        for c in np.unique(codes):
            name = COLOURS[int(c)]
            out.append(Condition((region, name), codes == c, _colour_text(region, name)))
    for name in BINNED:
        if name not in attrs.numeric:
            continue
        v = attrs.numeric[name]
        edges = np.unique(np.quantile(v, np.arange(1, n_bins) / n_bins))
        bins = np.searchsorted(edges, v, side="right")
        present = np.unique(bins)
        if len(present) < 2:
            continue
        labels = BIN_NAMES[len(present)]
        unit = f"{UNITS[name]} " if name in UNITS else ""
        for label, b in zip(labels, present, strict=True):
            m = bins == b
            lo, hi = v[m].min(), v[m].max()
            out.append(Condition((name, label), m,
                                 f"{label} {LABELS[name]} ({unit}{_fmt(lo)}–{_fmt(hi)})"))
    return out
