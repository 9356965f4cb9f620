"""The regime of a degradation curve: which simple shape explains accuracy vs severity.

Five shapes compete, each fitted by least squares to the curve in percentage points
(``x`` = severity, clean = 0):

=============  ==============================================  =====================
shape          model                                           parameters k
=============  ==============================================  =====================
``flat``       y = a                                           1
``linear``     y = a + b·x                                     2
``hinge``      y = a + b·max(0, x − t)  (flat, then a fall)   3 (t on the same grid as
                                                               piecewise)
``piecewise``  y = a + b1·x + (b2 − b1)·max(0, x − t)          4 (t on a 41-point grid
                                                               between the 2nd and the
                                                               2nd-to-last severity, plus
                                                               the severities between)
``saturating`` y = a + d·exp(−x/τ)                             3 (τ on a 40-point log grid,
                                                               5 % to 300 % of the range)
=============  ==============================================  =====================

**Choice (BIC).** The winner has the lowest ``BIC = n·ln σ̂² + k·ln n`` with
``σ̂² = max(RSS/n, σ_s²)``, where σ_s² is the sampling variance of the points (binomial,
p(1−p)/N from the images behind each point). The floor is the rule for small samples
and few points: once a shape fits down to the sampling noise, a more complex one buys
nothing, so the simpler shape wins. A shape is a candidate only when the curve has at least
enough distinct severities (``SHAPE_MIN_POINTS``): 2 for flat, 4 linear, 4 hinge,
4 saturating, 6 piecewise, so that no shape is chosen because it passes through every
level by construction. Contrast sampled at {0, 1, 3, 5} can thus read as a collapse (the
hinge) and, with the same number of parameters, as a plateau (the saturating shape:
``[0, 1, 3, 5] -> [.90, .60, .50, .45]`` is not a line), while three levels
([0, 1, 2] -> [.95, .5, .1]) are ``undetermined``: with fewer than two candidate shapes the
curve is ``undetermined`` and ``reason`` says why.

**Labels.** ``graceful`` when the winner's fitted drop (clean minus the lowest fitted
point) *and* the observed drop (clean minus the lowest observed level) are both below
``GRACEFUL_DROP_POINTS`` = 5 points, whatever shape won. A flat winner with a larger
observed drop is ``undetermined`` (the levels are too noisy to tell a shape). Otherwise from
the winner's average drop rates (points per unit severity) before and after its knee
(piecewise: the breakpoint t; hinge: t with no fall before it; saturating: read on the
piecewise fit when six or more levels allow one — the rule's own parameterisation —
else τ clipped to 10–90 % of the range):
``threshold-collapse`` when the rate after is at least ``SLOPE_RATIO`` = 2× the rate
before *and* the fit loses at least ``REGIME_MIN_LOSS_POINTS`` = 10 points from the knee to
the end; ``early-damage-plateau`` when the rate before is at least 2× the rate after and
the fit loses at least 10 points from clean to the knee; else ``linear`` (a fall in which
no stage is both steeper and large; ``linear`` also for the linear winner). The magnitude
gate keeps the words honest: brightness losing 6.6 points after severity 3 is not a
collapse.

**Delayed onset vs collapse.** A collapse-shaped fit reads ``delayed-onset`` ("unaffected
at the mildest severities, then a steady fall") when its knee sits in the lower half of the
severity range (``ONSET_KNEE_FRACTION`` = 0.5: the fall runs over most of the range) *and*
the fall is seen at ``ONSET_MIN_LEVELS`` = 3 or more severities after the knee (enough to
call it steady). A threshold collapse is a fall that starts in the upper half: the model
holds over most of the range, then breaks. Gaussian noise in the seed study (flat to
severity 1, then a near-straight fall, ``[.90, .89, .80, .70, .60, .50]``) is a delayed
onset; fog (knee 3.7, 20 points lost after it) and contrast (knee 3.5) are collapses.
Contrast sampled at {0, 1, 3, 5} with its knee at 1 keeps ``threshold-collapse``: two
levels after a knee cannot show a steady fall. Calibrated at N = 2000 per severity
(``tests/test_regime_onset.py``): the ``[.90 … .50]`` truth reads delayed-onset in 1000 of
1000 binomial test sets; fog, contrast and a flat-to-3 collapse read it in 0 of 1000.

**Uncertainty of the label.** ``label_shares`` refits the curve on paired resamples of its
test images (image indices drawn once per resample and reused at every severity, so the
levels keep their correlation) and returns each label's share of the resamples, e.g.
linear 0.67 / early-damage-plateau 0.33 for a knee whose rate ratio sits near the 2× rule.
This is the uncertainty of the decision actually made (shape *and* rule); the curves
analysis reports it per curve and the claims decide regime claims on it.

The BIC margins are kept as fit diagnostics: ``bic_margin`` (runner-up shape minus the
winner) and ``label_margin`` (the best shape whose label differs; None when every candidate
gives the same label). ``confidence`` reads ``label_margin`` on the Kass–Raftery scale
(< 2 weak, 2–6 positive, 6–10 strong, > 10 very strong; ``n/a`` when no candidate gives
another label, i.e. the shapes are *unanimous*). It measures the distance to the nearest
*other shape*, not to the same shape with slightly different rates: motion blur's knee with
ratio 1.93 reads "strong" against the hinge while a third of its resamples say plateau.

>>> r = classify_regime([0, 1, 2, 3, 4, 5], [0.9, 0.9, 0.9, 0.9, 0.6, 0.3], n_images=10000)
>>> r.label, r.breakpoint
('threshold-collapse', 3.0)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ...constants import REGIME_MIN_LOSS_POINTS, REGIME_RESAMPLE_SEED, REGIME_RESAMPLES

GRACEFUL_DROP_POINTS = 5.0   # percentage points of accuracy
SLOPE_RATIO = 2.0            # a rate at least this many times the other makes a regime
SHAPES = ("flat", "linear", "hinge", "piecewise", "saturating")
SHAPE_K = {"flat": 1, "linear": 2, "hinge": 3, "piecewise": 4, "saturating": 3}
# Distinct severities a shape needs to be a candidate. Two more than its parameters for
# the line and the piecewise shape: a fit must leave a level over to be judged against the
# noise, so three levels never pick a shape. The hinge (the cheapest collapse) and the
# saturating shape (the cheapest plateau) need one more than their parameters, so a curve
# sampled at {0, 1, 3, 5} can read as a collapse or as a plateau when the data says so.
SHAPE_MIN_POINTS = {"flat": 2, "linear": 4, "hinge": 4, "saturating": 4, "piecewise": 6}
REGIMES = ("graceful", "linear", "threshold-collapse", "delayed-onset", "early-damage-plateau")
# A collapse-shaped fit reads delayed-onset when its knee sits below this fraction of the
# severity range and its fall is seen at this many severities after the knee (a steady fall).
ONSET_KNEE_FRACTION = 0.5
ONSET_MIN_LEVELS = 3
UNDETERMINED = "undetermined"
_T_GRID = 41
_TAU_GRID = 40
_MIN_VAR = 1e-4              # points², keeps ln σ̂² finite when N is unknown and the fit exact


@dataclass(frozen=True)
class ShapeFit:
    """One fitted shape: parameters (points, severity units), RSS (points²) and BIC."""

    shape: str
    params: dict
    rss: float
    bic: float

    def predict(self, x) -> np.ndarray:
        """Fitted accuracy in points at severities ``x``."""
        x = np.asarray(x, dtype=np.float64)
        p = self.params
        if self.shape == "flat":
            return np.full_like(x, p["a"])
        if self.shape == "linear":
            return p["a"] + p["b"] * x
        if self.shape == "piecewise":
            return p["a"] + p["b1"] * x + (p["b2"] - p["b1"]) * np.maximum(0.0, x - p["t"])
        if self.shape == "hinge":
            return p["a"] + p["b"] * np.maximum(0.0, x - p["t"])
        return p["a"] + p["d"] * np.exp(-x / p["tau"])


@dataclass(frozen=True)
class Regime:
    """The verdict on one curve. Drops and rates in percentage points (per unit severity)."""

    label: str
    shape: str
    breakpoint: float | None
    slope_before: float
    slope_after: float
    total_drop: float
    fitted_drop: float
    bic_margin: float | None
    runner_up: str | None
    label_margin: float | None
    confidence: str
    fits: dict = field(repr=False)
    observed_drop: float = 0.0        # clean minus the lowest observed level (points)
    reason: str | None = None         # why the curve is undetermined, else None

    def predict(self, x) -> np.ndarray:
        """The winning shape's accuracy in points at severities ``x``."""
        return self.fits[self.shape].predict(x)

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in (
            "label", "shape", "breakpoint", "slope_before", "slope_after", "total_drop",
            "fitted_drop", "observed_drop", "bic_margin", "runner_up", "label_margin",
            "confidence", "reason")}
        d["bic"] = {s: f.bic for s, f in self.fits.items()}
        d["params"] = self.fits[self.shape].params
        return d


def classify_regime(severity, accuracy, n_images=None) -> Regime:
    """Fit the candidate shapes to one curve and name its regime.

    severity: K values (clean = 0; repeats allowed, e.g. several seeds), at least 2
        distinct (with 2 only the flat shape fits: the result is ``undetermined``).
    accuracy: K accuracies in [0, 1].
    n_images: distinct test images behind each point (scalar or K), for the sampling-noise
        floor; None means unknown (no floor beyond numerical safety). Several stressor seeds
        on the same images are still that many images, not more.
    """
    x = np.asarray(severity, dtype=np.float64)
    y = np.asarray(accuracy, dtype=np.float64) * 100.0
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"severity and accuracy must be 1-D of equal length, got "
                         f"{x.shape} and {y.shape}")
    levels = np.unique(x)
    if len(levels) < 2:
        raise ValueError(f"a regime needs at least 2 distinct severities, got {sorted(set(x))}")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    n = None if n_images is None else _ordered_n(n_images, order)
    batch = _fit_batch(x, y[None, :], n)
    fits = {s: ShapeFit(s, {k: float(v[0]) for k, v in f.params.items()}, float(f.rss[0]),
                        float(f.bic[0])) for s, f in batch.fits.items()}
    ranked = sorted(fits.values(), key=lambda f: f.bic)
    best = ranked[0]
    observed = float(batch.observed[0])
    labels = {s: str(f.label[0]) for s, f in batch.fits.items()}
    lb = batch.fits[best.shape]
    label = labels[best.shape]
    knee = None if np.isnan(lb.knee[0]) else float(lb.knee[0])
    reason = None
    if len(ranked) < 2:
        label = UNDETERMINED
        reason = (f"{len(levels)} distinct severities: only the {best.shape} shape can be "
                  f"fitted (linear and hinge need {SHAPE_MIN_POINTS['linear']}, saturating "
                  f"{SHAPE_MIN_POINTS['saturating']}, piecewise "
                  f"{SHAPE_MIN_POINTS['piecewise']})")
    elif label == UNDETERMINED:
        reason = (f"the best fit is flat but the observed drop is {observed:.1f} points: the "
                  "levels are too noisy to tell a shape")
    others = [f.bic - best.bic for f in ranked[1:] if labels[f.shape] != label]
    label_margin = min(others) if others and label != UNDETERMINED else None
    xmax = float(x.max())
    y0 = float(y[x == x.min()].mean())
    y_end = float(y[x == xmax].mean())
    return Regime(label=label, shape=best.shape, breakpoint=knee,
                  slope_before=float(lb.before[0]), slope_after=float(lb.after[0]),
                  total_drop=y0 - y_end, fitted_drop=float(lb.fitted_drop[0]),
                  bic_margin=(ranked[1].bic - best.bic) if len(ranked) > 1 else None,
                  runner_up=ranked[1].shape if len(ranked) > 1 else None,
                  label_margin=label_margin, confidence=_confidence(label_margin), fits=fits,
                  observed_drop=observed, reason=reason)


def classify_many(severity, accuracy, n_images=None) -> np.ndarray:
    """Labels of B curves at once: ``accuracy`` (B, K) on the shared ``severity`` (K,).
    The same fits, BIC and rules as :func:`classify_regime` (which calls the same code with
    B = 1), vectorised for resampling. Returns B label strings."""
    x = np.asarray(severity, dtype=np.float64)
    y = np.atleast_2d(np.asarray(accuracy, dtype=np.float64)) * 100.0
    if y.shape[1] != x.shape[0]:
        raise ValueError(f"accuracy must be (B, {x.shape[0]}), got {y.shape}")
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[:, order]
    n = None if n_images is None else _ordered_n(n_images, order)
    batch = _fit_batch(x, y, n)
    if len(batch.fits) < 2:
        return np.full(y.shape[0], UNDETERMINED, dtype=object)
    shapes = list(batch.fits)
    bic = np.stack([batch.fits[s].bic for s in shapes], 1)          # (B, shapes)
    best = np.argmin(bic, axis=1)
    lab = np.stack([batch.fits[s].label for s in shapes], 1)
    return lab[np.arange(y.shape[0]), best]


def label_shares(severity, correct, n_resamples: int = REGIME_RESAMPLES,
                 seed: int = REGIME_RESAMPLE_SEED) -> dict[str, float]:
    """Each label's share of ``n_resamples`` paired resamples of a curve's test images.

    severity: K values (clean = 0). correct: (N, K) per-image correctness (0/1, or a
    fraction when several seeds of a cell are averaged per image) of the same N images at
    every point. Each resample draws N image indices with replacement *once* and uses them
    at every severity; the curve is refitted with N as its sampling floor. Shares sum to 1,
    largest first."""
    x = np.asarray(severity, dtype=np.float64)
    c = np.asarray(correct, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != x.shape[0] or c.shape[0] < 1:
        raise ValueError(f"correct must be (N, {x.shape[0]}) per-image values, got {c.shape}")
    n = c.shape[0]
    rng = np.random.default_rng(seed)
    acc = resample_counts(n, n_resamples, rng) @ c / n               # (R, K)
    labels = classify_many(x, acc, n_images=n)
    names, k = np.unique(labels.astype(str), return_counts=True)
    pairs = sorted(zip(names, k, strict=True), key=lambda t: (-t[1], t[0]))
    return {str(a): float(b) / n_resamples for a, b in pairs}


def resample_counts(n: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """(R, n) float counts of each of n images in R bootstrap resamples (n draws with
    replacement each): ``counts @ values / n`` is every resample's mean at once."""
    idx = rng.integers(0, n, size=(n_resamples, n)) + n * np.arange(n_resamples)[:, None]
    return np.bincount(idx.ravel(), minlength=n * n_resamples).reshape(
        n_resamples, n).astype(np.float64)


def _ordered_n(n_images, order: np.ndarray):
    n = np.asarray(n_images, dtype=np.float64)
    return n[order] if n.ndim and n.shape == order.shape else n


@dataclass
class _BatchFit:
    """One shape's best fit for each of B curves (arrays of length B)."""

    params: dict
    rss: np.ndarray
    bic: np.ndarray
    knee: np.ndarray
    before: np.ndarray
    after: np.ndarray
    fitted_drop: np.ndarray
    label: np.ndarray


@dataclass
class _Batch:
    fits: dict
    observed: np.ndarray


def _fit_batch(x: np.ndarray, y: np.ndarray, n_images) -> _Batch:
    """Every candidate shape fitted to every row of ``y`` (B, K), points; ``x`` sorted."""
    ux = np.unique(x)
    var_floor = _sampling_variance(y, n_images)
    level = (x[:, None] == ux[None, :]).astype(np.float64)
    means = (y @ level) / level.sum(0)                               # (B, levels)
    observed = means[:, 0] - means.min(1)
    grid = np.linspace(float(x.min()), float(x.max()), 201)
    fits = {}
    for shape in SHAPES:
        if len(ux) < SHAPE_MIN_POINTS[shape]:
            continue
        fits[shape] = _fit_shape(shape, x, y, ux, grid, var_floor, observed)
    if "saturating" in fits and "piecewise" in fits:
        # The rule is about rates before and after a knee: read it on the piecewise fit,
        # the rule's own parameterisation. The saturating shape's τ-based rates are a
        # different quantity: a true 7.3-then-3.3 knee (a plateau by the rule) read through
        # it gives a ratio near 1.5 (linear) in 58 of 60 simulated 2000-image test sets.
        sat, pw = fits["saturating"], fits["piecewise"]
        fits["saturating"] = _BatchFit(sat.params, sat.rss, sat.bic, pw.knee, pw.before,
                                       pw.after, sat.fitted_drop,
                                       np.where(sat.label == "graceful", "graceful", pw.label))
    return _Batch(fits, observed)


def _sampling_variance(y_points: np.ndarray, n_images) -> np.ndarray:
    """Per curve (B,): mean binomial variance of its points in points², floored."""
    if n_images is None:
        return np.full(y_points.shape[0], _MIN_VAR)
    n = np.broadcast_to(np.asarray(n_images, dtype=np.float64), y_points.shape[1:])
    p = np.clip(y_points / 100.0, 0.5 / n, 1.0 - 0.5 / n)  # an empirical 0 or 1 still has noise
    return np.maximum(np.mean(p * (1 - p) / n, axis=1) * 1e4, _MIN_VAR)


def _designs(shape: str, x: np.ndarray, ux: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(G, K, p) design matrices over the shape's parameter grid, and the grid (G,)."""
    one = np.ones_like(x)
    if shape == "flat":
        return one[None, :, None], np.array([np.nan])
    if shape == "linear":
        return np.stack([one, x], 1)[None], np.array([np.nan])
    if shape in ("hinge", "piecewise"):
        ts = _breaks(ux)
        cols = [np.stack([one, np.maximum(0.0, x - t)], 1) if shape == "hinge"
                else np.stack([one, x, np.maximum(0.0, x - t)], 1) for t in ts]
        return np.stack(cols), ts
    span = float(x.max() - x.min()) or 1.0
    taus = np.geomspace(0.05 * span, 3.0 * span, _TAU_GRID)
    return np.stack([np.stack([one, np.exp(-x / tau)], 1) for tau in taus]), taus


def _fit_shape(shape, x, y, ux, grid, var_floor, observed) -> _BatchFit:
    d, g = _designs(shape, x, ux)
    pinv = np.linalg.pinv(d)                                         # (G, p, K)
    coef = np.einsum("bk,gpk->bgp", y, pinv)                         # (B, G, p)
    resid = y[:, None, :] - np.einsum("gkp,bgp->bgk", d, coef)
    rss = np.einsum("bgk,bgk->bg", resid, resid)
    # The first grid value within 1e-9 of the least RSS (ties: the earliest break).
    pick = np.argmax(rss <= rss.min(1, keepdims=True) + 1e-9, axis=1)
    rows = np.arange(y.shape[0])
    c = coef[rows, pick]                                             # (B, p)
    rss_b = rss[rows, pick]
    par = g[pick]
    n, k = x.shape[0], SHAPE_K[shape]
    bic = n * np.log(np.maximum(rss_b / n, var_floor)) + k * math.log(n)
    if shape == "flat":
        params = {"a": c[:, 0]}
    elif shape == "linear":
        params = {"a": c[:, 0], "b": c[:, 1]}
    elif shape == "hinge":
        params = {"a": c[:, 0], "b": c[:, 1], "t": par}
    elif shape == "piecewise":
        params = {"a": c[:, 0], "b1": c[:, 1], "b2": c[:, 1] + c[:, 2], "t": par}
    else:
        params = {"a": c[:, 0], "d": c[:, 1], "tau": par}
    knee, before, after, fitted_drop, label = _labels(shape, params, x, grid, observed)
    return _BatchFit(params, rss_b, bic, knee, before, after, fitted_drop, label)


def _predict(shape: str, p: dict, x) -> np.ndarray:
    """(B, len(x)) predictions of B fits of one shape; ``x`` (M,) or (B, M)."""
    x = np.asarray(x, dtype=np.float64)
    x = np.broadcast_to(x, (p["a"].shape[0], x.shape[-1])) if x.ndim == 1 else x
    col = lambda v: v[:, None]  # noqa: E731
    if shape == "flat":
        return np.broadcast_to(col(p["a"]), x.shape).copy()
    if shape == "linear":
        return col(p["a"]) + col(p["b"]) * x
    if shape == "piecewise":
        return col(p["a"]) + col(p["b1"]) * x + col(p["b2"] - p["b1"]) * np.maximum(
            0.0, x - col(p["t"]))
    if shape == "hinge":
        return col(p["a"]) + col(p["b"]) * np.maximum(0.0, x - col(p["t"]))
    return col(p["a"]) + col(p["d"]) * np.exp(-x / col(p["tau"]))


def _breaks(ux: np.ndarray) -> np.ndarray:
    # The observed severities join the grid so a break exactly at a level is found.
    return np.union1d(np.linspace(ux[1], ux[-2], _T_GRID), ux[1:-1])


def _labels(shape: str, p: dict, x: np.ndarray, grid: np.ndarray, observed: np.ndarray):
    """(knee, rate before, rate after, fitted drop, label) of B fits of one shape; rates =
    points lost per unit severity, NaN knee where the shape has none."""
    x0, xmax = float(x.min()), float(x.max())
    b = p["a"].shape[0]
    f = _predict(shape, p, grid)
    fitted_drop = f[:, 0] - f.min(1)
    nan = np.full(b, np.nan)
    if shape == "flat":
        knee, before, after = nan, np.zeros(b), np.zeros(b)
    elif shape == "linear":
        knee, before, after = nan, -p["b"], -p["b"]
    elif shape == "piecewise":
        knee, before, after = p["t"], -p["b1"], -p["b2"]
    elif shape == "hinge":
        knee, before, after = p["t"], np.zeros(b), -p["b"]
    else:
        span = xmax - x0
        knee = np.clip(x0 + p["tau"], x0 + 0.1 * span, x0 + 0.9 * span)
        fk = _predict(shape, p, knee[:, None])[:, 0]
        before = (f[:, 0] - fk) / (knee - x0)
        after = (fk - f[:, -1]) / (xmax - knee)
    if shape in ("flat", "linear"):
        loss_before = loss_after = np.zeros(b)
    else:
        fk = _predict(shape, p, knee[:, None])[:, 0]
        loss_before, loss_after = f[:, 0] - fk, fk - f[:, -1]
    small = (fitted_drop < GRACEFUL_DROP_POINTS) & (observed < GRACEFUL_DROP_POINTS)
    rb, ra = np.maximum(before, 0.0), np.maximum(after, 0.0)
    label = np.full(b, "linear", dtype=object)
    if shape not in ("flat", "linear"):
        collapse = (ra >= SLOPE_RATIO * rb) & (loss_after >= REGIME_MIN_LOSS_POINTS)
        # A steady fall from an early knee: the knee in the lower half of the range (the
        # fall runs over most of it) and the fall seen at >= ONSET_MIN_LEVELS severities.
        early = knee - x0 < ONSET_KNEE_FRACTION * (xmax - x0)
        seen = (np.unique(x)[None, :] > knee[:, None] + 1e-9).sum(1)
        steady = early & (seen >= ONSET_MIN_LEVELS)
        label[collapse] = "threshold-collapse"
        label[collapse & steady] = "delayed-onset"
        plateau = (rb >= SLOPE_RATIO * ra) & (loss_before >= REGIME_MIN_LOSS_POINTS)
        label[plateau & (label == "linear")] = "early-damage-plateau"
    if shape == "flat":
        label[:] = UNDETERMINED
    label[small] = "graceful"
    return knee, before, after, fitted_drop, label


def _confidence(margin: float | None) -> str:
    if margin is None:
        return "n/a"
    if margin > 10:
        return "very strong"
    if margin > 6:
        return "strong"
    if margin > 2:
        return "positive"
    return "weak"
