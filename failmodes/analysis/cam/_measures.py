"""Measurements on class activation maps: batches ``N×H×W`` (float, non-negative, any
scale) in, one value per map out.

A map is a mass distribution over pixels: its values divided by their sum. Measure the
*raw* maps (``compute_cams(..., raw=True)``, upsampled by ``upsample``), never the min-max
scaled display maps: scaling hides how much evidence there is. A constant map (all equal,
all-zero included; Grad-CAM gives one when every weighted activation is negative) has no
ranking: its correlations are NaN, ``is_constant`` flags it and ``image_drift`` counts it as
maximal drift instead of dropping it.

>>> d = drift_metrics(upsample(raw_fog, (32, 32)), upsample(raw_clean, (32, 32)))  # doctest: +SKIP
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ._core import CamError

# The border band: the outer BORDER_BAND fraction of each side (8 px of a 32-px image on
# every edge). It covers 1 − (1 − 2·0.25)² = 75 % of the area; the centre is the middle
# 50 % × 50 % square, where object-centred data sets (CIFAR-10) keep the object.
BORDER_BAND = 0.25
BAND_AREA = 1 - (1 - 2 * BORDER_BAND) ** 2
BISECTION_STEPS = 50          # diffusion_null's mixing weight to 2^-50


def upsample(raw, size: tuple[int, int]) -> torch.Tensor:
    """Raw maps N×h×w to N×H×W, bilinear, mass kept proportional (no min-max scaling)."""
    t = torch.as_tensor(np.asarray(raw) if not isinstance(raw, torch.Tensor) else raw)
    t = t.detach().float().cpu()
    if tuple(t.shape[-2:]) == tuple(size):
        return t.clamp_min(0)
    return F.interpolate(t[:, None], size=tuple(size), mode="bilinear",
                         align_corners=False)[:, 0].clamp_min(0)


def raw_mass(raw) -> np.ndarray:
    """Total positive evidence of each raw map (N): the sum over its cells."""
    return _as_np(raw).clip(0, None).sum(axis=(1, 2))


def is_constant(cams, rel: float = 1e-6) -> np.ndarray:
    """True for maps whose range is at most ``rel`` of their largest value (or all zero)."""
    a = _as_np(cams).reshape(len(_as_np(cams)), -1)
    top = np.abs(a).max(axis=1)
    return (a.max(axis=1) - a.min(axis=1)) <= rel * np.where(top > 0, top, 1.0)


def image_drift(spearman_rho, constant) -> np.ndarray:
    """Drift of each map from its clean map: 1 − max(ρ, 0), in [0, 1] (0 = the same pixel
    ranking, 1 = no positive rank agreement left). A constant map (either one) has no
    ranking: maximal drift, 1."""
    rho = np.asarray(spearman_rho, dtype=np.float64)
    d = 1.0 - np.clip(np.nan_to_num(rho, nan=0.0), 0.0, None)
    return np.where(np.asarray(constant, bool) | ~np.isfinite(rho), 1.0, d)


def _as_np(cams) -> np.ndarray:
    a = cams.detach().cpu().numpy() if isinstance(cams, torch.Tensor) else np.asarray(cams)
    if a.ndim != 3:
        raise CamError(f"CAMs must be N×H×W, got shape {a.shape}")
    return a.astype(np.float64)


def _mass(cams) -> np.ndarray:
    """Maps as distributions (N×H×W, each summing to 1); all-zero maps become NaN."""
    a = np.clip(_as_np(cams), 0.0, None)
    s = a.sum(axis=(1, 2), keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(s > 0, a / np.where(s > 0, s, 1.0), np.nan)


def border_mask(h: int, w: int, band: float = BORDER_BAND) -> np.ndarray:
    """Boolean H×W, True in the outer ``band`` fraction of each side (rounded to pixels)."""
    by, bx = int(round(h * band)), int(round(w * band))
    m = np.ones((h, w), dtype=bool)
    m[by:h - by, bx:w - bx] = False
    return m


def border_share(cams, band: float = BORDER_BAND) -> np.ndarray:
    """Fraction of each map's mass in the border band (N, in [0, 1]; NaN for an empty map).

    A uniform map gives the band's area fraction (0.75 at band 0.25); an object-centred
    map gives less.
    """
    p = _mass(cams)
    return p[:, border_mask(p.shape[1], p.shape[2], band)].sum(axis=1)


def center_of_mass(cams) -> np.ndarray:
    """Centre of mass of each map, N×2 (row, column) in pixels (pixel centres at 0..H−1)."""
    p = _mass(cams)
    ys = np.arange(p.shape[1], dtype=np.float64)
    xs = np.arange(p.shape[2], dtype=np.float64)
    return np.stack([(p.sum(axis=2) * ys).sum(axis=1), (p.sum(axis=1) * xs).sum(axis=1)], 1)


def cam_entropy(cams) -> np.ndarray:
    """Shannon entropy of each map's mass over pixels divided by log(H·W): N in [0, 1],
    0 = all mass on one pixel, 1 = uniform. Higher = more diffuse attention."""
    p = _mass(cams)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(p > 0, p * np.log(p), 0.0).sum(axis=(1, 2))
    ent[np.isnan(p).any(axis=(1, 2))] = np.nan
    return ent / np.log(p.shape[1] * p.shape[2])


def _rowwise_pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    den = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (a * b).sum(axis=1) / np.where(den > 0, den, 1.0), np.nan)


def pearson(cams, ref) -> np.ndarray:
    """Pearson correlation of each map with its reference over pixels (N; NaN if constant)."""
    a, b = _as_np(cams), _as_np(ref)
    return _rowwise_pearson(a.reshape(len(a), -1), b.reshape(len(b), -1))


def spearman(cams, ref) -> np.ndarray:
    """Spearman rank correlation of each map with its reference (average ranks for ties,
    which matter: Grad-CAM's ReLU leaves many exact zeros)."""
    from scipy.stats import rankdata
    a, b = _as_np(cams), _as_np(ref)
    ra = rankdata(a.reshape(len(a), -1), axis=1)
    rb = rankdata(b.reshape(len(b), -1), axis=1)
    return _rowwise_pearson(ra, rb)


def overlap(cams, ref) -> np.ndarray:
    """Histogram intersection of the two maps' masses, Σ min(p, q): N in [0, 1],
    1 = the same distribution, 0 = disjoint support."""
    return np.minimum(_mass(cams), _mass(ref)).sum(axis=(1, 2))


def _entropy(p: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=(1, 2))


def diffusion_null(cams, ref, band: float = BORDER_BAND) -> tuple[np.ndarray, np.ndarray]:
    """Per map (N): the border share of ``(1 − w)·ref + w·uniform`` with ``w`` in [0, 1]
    chosen so that the mixture has the entropy of ``cams``, and ``w`` itself. ``w`` = 0
    when ``cams`` is no more diffuse than ``ref``; NaN where either map is all-zero.

    Entropy rises monotonically along the mixing path (concave, largest at the uniform
    end), so bisection finds ``w``; the border share is linear in the mixture, so the null
    share is ``(1 − w)·share(ref) + w·band area``.
    """
    q, p = _mass(cams), _mass(ref)
    n, h, w_ = p.shape
    target = _entropy(q)
    u = 1.0 / (h * w_)
    lo, hi = np.zeros(n), np.ones(n)
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2
        below = _entropy((1 - mid)[:, None, None] * p + mid[:, None, None] * u) < target
        lo, hi = np.where(below, mid, lo), np.where(below, hi, mid)
    w = np.where(target <= _entropy(p), 0.0, (lo + hi) / 2)
    mask = border_mask(h, w_, band)
    null = (1 - w) * p[:, mask].sum(axis=1) + w * mask.mean()
    bad = np.isnan(q).any(axis=(1, 2)) | np.isnan(p).any(axis=(1, 2))
    return np.where(bad, np.nan, null), np.where(bad, np.nan, w)


def peak_in_border(cams, band: float = BORDER_BAND) -> np.ndarray:
    """1.0 where a map's largest value lies in the border band, 0.0 where in the centre,
    NaN for an all-zero map (N)."""
    p = _mass(cams)
    n, h, w = p.shape
    flat = np.nan_to_num(p.reshape(n, -1), nan=0.0)
    inside = border_mask(h, w, band).reshape(-1)[flat.argmax(axis=1)]
    return np.where(np.isnan(p).any(axis=(1, 2)), np.nan, inside.astype(np.float64))


def drift_metrics(cams, ref, band: float = BORDER_BAND) -> dict[str, np.ndarray]:
    """Per-map drift of ``cams`` from ``ref`` (both N×H×W, raw maps upsampled): pearson,
    spearman, com_shift_px (Euclidean, pixels), entropy and border_share of ``cams``,
    ``constant`` (either map constant), ``drift`` (``image_drift``), ``mass_ratio``
    (mass of ``cams`` over mass of ``ref``; NaN where ``ref`` is empty),
    ``border_share_null`` (``diffusion_null``: the share ``ref`` diffused to the entropy of
    ``cams`` would have) and ``peak_in_border``.

    >>> d = drift_metrics(cams_fog5, cams_clean); d["drift"].mean()   # doctest: +SKIP
    """
    a, b = _as_np(cams), _as_np(ref)
    if a.shape != b.shape:
        raise CamError(f"CAM shapes differ: {a.shape} vs {b.shape}")
    shift = np.linalg.norm(center_of_mass(a) - center_of_mass(b), axis=1)
    rho = spearman(a, b)
    constant = is_constant(a) | is_constant(b)
    ma, mb = a.clip(0, None).sum(axis=(1, 2)), b.clip(0, None).sum(axis=(1, 2))
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(mb > 0, ma / np.where(mb > 0, mb, 1.0), np.nan)
    return {"pearson": pearson(a, b), "spearman": rho, "com_shift_px": shift,
            "entropy": cam_entropy(a), "border_share": border_share(a, band),
            "constant": constant, "drift": image_drift(rho, constant), "mass_ratio": ratio,
            "border_share_null": diffusion_null(a, b, band)[0],
            "peak_in_border": peak_in_border(a, band)}
