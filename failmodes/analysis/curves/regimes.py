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
5 saturating, 6 piecewise, so that no shape is chosen because it passes through every
level by construction. Contrast sampled at {0, 1, 3, 5} can thus still read as a
collapse (the hinge), while three levels ([0, 1, 2] -> [.95, .5, .1]) are ``undetermined``:
with fewer than two candidate shapes the curve is ``undetermined`` and ``reason`` says why.

**Labels.** ``graceful`` when the winner's fitted drop (clean minus the lowest fitted
point) *and* the observed drop (clean minus the lowest observed level) are both below
``GRACEFUL_DROP_POINTS`` = 5 points, whatever shape won. A flat winner with a larger
observed drop is ``undetermined`` (the levels are too noisy to tell a shape). Otherwise from
the winner's average drop rates (points per unit severity) before and after its knee
(piecewise: the breakpoint t; saturating: τ clipped to 10–90 % of the range):
``threshold-collapse`` when the rate after is at least ``SLOPE_RATIO`` = 2× the rate
before, ``early-damage-plateau`` when the rate before is at least 2× the rate after,
else ``linear`` (and ``linear`` for the linear winner).

**Confidence.** ``bic_margin``: BIC of the runner-up shape minus the winner's;
``label_margin``: the same against the best shape whose label differs (None when every
candidate shape gives the same label). ``confidence`` reads ``label_margin`` on the
Kass–Raftery scale: < 2 weak, 2–6 positive, 6–10 strong, > 10 very strong; ``n/a`` when
no candidate gives another label (nothing competes) or the curve is undetermined.

>>> r = classify_regime([0, 1, 2, 3, 4, 5], [0.9, 0.9, 0.9, 0.9, 0.6, 0.3], n_images=10000)
>>> r.label, r.breakpoint
('threshold-collapse', 3.0)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

GRACEFUL_DROP_POINTS = 5.0   # percentage points of accuracy
SLOPE_RATIO = 2.0            # a rate at least this many times the other makes a regime
SHAPES = ("flat", "linear", "hinge", "piecewise", "saturating")
SHAPE_K = {"flat": 1, "linear": 2, "hinge": 3, "piecewise": 4, "saturating": 3}
# Distinct severities a shape needs to be a candidate. Two more than its parameters for
# the line, the saturating and the piecewise shape: a fit must leave a level over to be
# judged against the noise, so three levels never pick a shape. The hinge (the cheapest
# collapse) needs one more than its parameters, so a curve sampled at {0, 1, 3, 5} can
# still read as a collapse when the data says so.
SHAPE_MIN_POINTS = {"flat": 2, "linear": 4, "hinge": 4, "saturating": 5, "piecewise": 6}
REGIMES = ("graceful", "linear", "threshold-collapse", "early-damage-plateau")
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
    """Fit the four shapes to one curve and name its regime.

    severity: K values (clean = 0; repeats allowed, e.g. several seeds), at least 2
        distinct (with 2 only the flat shape fits: the result is ``undetermined``).
    accuracy: K accuracies in [0, 1].
    n_images: images behind each point (scalar or K), for the sampling-noise floor; None
        means unknown (no floor beyond numerical safety).
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
    var_floor = _sampling_variance(y, n_images, order)
    fits = {s: f for s in SHAPES if (f := _fit(s, x, y, var_floor)) is not None}
    ranked = sorted(fits.values(), key=lambda f: f.bic)
    best = ranked[0]
    xmax = float(x.max())
    y0 = float(y[x == x.min()].mean())
    observed = y0 - min(float(y[x == u].mean()) for u in levels)
    labels = {f.shape: _label(f, x, xmax, observed)[0] for f in ranked}
    label, knee, before, after, fitted_drop = _label(best, x, xmax, observed)
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
    y_end = float(y[x == xmax].mean())
    return Regime(label=label, shape=best.shape, breakpoint=knee, slope_before=before,
                  slope_after=after, total_drop=y0 - y_end, fitted_drop=fitted_drop,
                  bic_margin=(ranked[1].bic - best.bic) if len(ranked) > 1 else None,
                  runner_up=ranked[1].shape if len(ranked) > 1 else None,
                  label_margin=label_margin, confidence=_confidence(label_margin), fits=fits,
                  observed_drop=observed, reason=reason)


def _sampling_variance(y_points, n_images, order) -> float:
    if n_images is None:
        return _MIN_VAR
    n = np.broadcast_to(np.asarray(n_images, dtype=np.float64), y_points.shape)
    if n.ndim and n.shape == order.shape:
        n = n[order]
    p = np.clip(y_points / 100.0, 0.5 / n, 1.0 - 0.5 / n)  # an empirical 0 or 1 still has noise
    return max(float(np.mean(p * (1 - p) / n)) * 1e4, _MIN_VAR)


def _bic(rss: float, n: int, k: int, var_floor: float) -> float:
    return n * math.log(max(rss / n, var_floor)) + k * math.log(n)


def _lstsq(A: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, float]:
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    r = y - A @ coef
    return coef, float(r @ r)


def _fit(shape: str, x: np.ndarray, y: np.ndarray, var_floor: float) -> ShapeFit | None:
    n, k = len(x), SHAPE_K[shape]
    ux = np.unique(x)
    if len(ux) < SHAPE_MIN_POINTS[shape]:
        return None
    one = np.ones_like(x)
    if shape == "flat":
        (a,), rss = _lstsq(one[:, None], y)
        params = {"a": a}
    elif shape == "linear":
        (a, b), rss = _lstsq(np.stack([one, x], 1), y)
        params = {"a": a, "b": b}
    elif shape == "hinge":
        best: tuple[float, float, np.ndarray] | None = None
        for t in _breaks(ux):
            coef, rss = _lstsq(np.stack([one, np.maximum(0.0, x - t)], 1), y)
            if best is None or rss < best[1] - 1e-9:
                best = (t, rss, coef)
        assert best is not None  # the grid is never empty
        t, rss, (a, b) = best
        params = {"a": a, "b": b, "t": t}
    elif shape == "piecewise":
        best = None
        for t in _breaks(ux):
            coef, rss = _lstsq(np.stack([one, x, np.maximum(0.0, x - t)], 1), y)
            if best is None or rss < best[1] - 1e-9:
                best = (t, rss, coef)
        assert best is not None  # the grid is never empty
        t, rss, (a, b1, db) = best
        params = {"a": a, "b1": b1, "b2": b1 + db, "t": t}
    else:
        span = float(x.max() - x.min()) or 1.0
        best = None
        for tau in np.geomspace(0.05 * span, 3.0 * span, _TAU_GRID):
            coef, rss = _lstsq(np.stack([one, np.exp(-x / tau)], 1), y)
            if best is None or rss < best[1] - 1e-9:
                best = (tau, rss, coef)
        assert best is not None  # the grid is never empty
        tau, rss, (a, d) = best
        params = {"a": a, "d": d, "tau": tau}
    params = {key: float(v) for key, v in params.items()}
    return ShapeFit(shape, params, rss, _bic(rss, n, k, var_floor))


def _breaks(ux: np.ndarray) -> np.ndarray:
    # The observed severities join the grid so a break exactly at a level is found.
    return np.union1d(np.linspace(ux[1], ux[-2], _T_GRID), ux[1:-1])


def _label(fit: ShapeFit, x: np.ndarray, xmax: float, observed_drop: float):
    """(label, knee, rate before, rate after, fitted drop) for one fit; rates = points lost
    per unit severity."""
    x0 = float(x.min())
    grid = np.linspace(x0, xmax, 201)
    f = fit.predict(grid)
    fitted_drop = float(f[0] - f.min())
    p = fit.params
    if fit.shape == "flat":
        knee, before, after = None, 0.0, 0.0
    elif fit.shape == "linear":
        knee, before, after = None, -p["b"], -p["b"]
    elif fit.shape == "piecewise":
        knee, before, after = p["t"], -p["b1"], -p["b2"]
    elif fit.shape == "hinge":
        knee, before, after = p["t"], 0.0, -p["b"]
    else:
        span = xmax - x0
        knee = float(np.clip(x0 + p["tau"], x0 + 0.1 * span, x0 + 0.9 * span))
        fk = float(fit.predict(knee))
        before = (float(f[0]) - fk) / (knee - x0)
        after = (fk - float(f[-1])) / (xmax - knee)
    small = fitted_drop < GRACEFUL_DROP_POINTS and observed_drop < GRACEFUL_DROP_POINTS
    if small:
        label = "graceful"
    elif fit.shape == "flat":
        label = UNDETERMINED
    elif fit.shape == "linear":
        label = "linear"
    else:
        rb, ra = max(before, 0.0), max(after, 0.0)
        if ra >= SLOPE_RATIO * rb:
            label = "threshold-collapse"
        elif rb >= SLOPE_RATIO * ra:
            label = "early-damage-plateau"
        else:
            label = "linear"
    return label, knee, float(before), float(after), fitted_drop


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
