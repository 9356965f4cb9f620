"""Verdicts on parsed claims: each kind's check against an :class:`Evidence` (per-image
correctness, the curves analysis's regimes, Grad-CAM border shares), with paired-bootstrap
intervals over test images and, where two things are compared on the same images, a
paired sign-flip test."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ...store import CLEAN
from ..curves.regimes import SLOPE_RATIO
from ..paired import sign_flip_p
from ._parse import Claim, ClaimError

N_BOOT = 2000
BOOT_SEED = 0
INTEGER_SEVERITIES = (1, 2, 3, 4, 5)
# Regime confidences (Kass–Raftery reading of the BIC margin) too weak to decide a claim.
_WEAK = ("weak", "n/a", None)
# The curves analysis's per-curve fields a regime verdict shows beside the label, so that a
# reader sees the magnitude and the rates that decided it (a 6-point hinge is labelled
# threshold-collapse under the rule, and the evidence must say it is 6 points).
REGIME_EVIDENCE_KEYS = ("confidence", "breakpoint", "total_drop", "observed_drop",
                        "fitted_drop", "slope_before", "slope_after")


@dataclass
class Verdict:
    claim: str                         # the sentence checked
    kind: str
    verdict: str                       # supported | contradicted | inconclusive
    reason: str                        # one line: why this verdict
    evidence: dict = field(default_factory=dict)   # numbers (JSON scalars)
    models: list = field(default_factory=list)
    stressors: list = field(default_factory=list)


class Evidence(Protocol):
    """What claims read from a run: per-image correctness and the analyses' verdicts."""

    def correct(self, model: str, stressor: str, severity: float) -> np.ndarray | None:
        """Per-image correctness (bool, aligned by image index) of a main-dataset cell;
        ``stressor="clean"`` (severity 0) for the clean cell; None when not stored."""

    def regime(self, model: str, stressor: str) -> dict | None:
        """``{"label", "confidence", ...}`` of the curves analysis, None when absent."""

    def cam_cell(self, model: str, stressor: str, severity: float) -> dict | None:
        """Per-image CAM arrays of one cell (``cam.localisation.cell_evidence``: clean and
        stressed border share, its diffusion null, peaks); None when not analysed."""


# ----------------------------------------------------------------------------- statistics
def paired_bootstrap(diff: np.ndarray, *, n_boot: int = N_BOOT, seed: int = BOOT_SEED,
                     stat=np.mean) -> tuple[float, float, float]:
    """Estimate and 95 % percentile interval of ``stat`` of per-image values ``diff`` (N,)
    resampling images with replacement. ``diff`` may be (N, k) for a ratio ``stat``."""
    rng = np.random.default_rng(seed)
    n = diff.shape[0]
    idx = rng.integers(0, n, size=(n_boot, n))
    boots = np.array([stat(diff[i]) for i in idx])
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(stat(diff)), float(lo), float(hi)


def _verdict_from_interval(lo: float, hi: float, threshold: float) -> str:
    if lo >= threshold:
        return "supported"
    if hi < threshold:
        return "contradicted"
    return "inconclusive"


# ----------------------------------------------------------------------------- checking
def check_claims(claims: list[Claim], ev: Evidence) -> list[Verdict]:
    """A verdict for every claim, in order."""
    return [_CHECK[c.kind](c, ev) for c in claims]


def _missing(c: Claim, what: str) -> Verdict:
    return Verdict(c.describe(), c.kind, "inconclusive", f"not measured: {what}",
                   models=[m for m in (c.model, c.subject if c.kind == "more_robust" else None,
                                       c.params.get("than") if c.kind == "more_robust" else None)
                           if isinstance(m, str)])


def _model_of(c: Claim) -> str:
    if c.model is None:  # parse_claims sets it for every kind but more_robust
        raise ClaimError(f"a {c.kind} claim names no model: {c.describe()}")
    return c.model


def _check_drop(c: Claim, ev: Evidence) -> Verdict:
    s, sev, m = c.subject, c.params["severity"], _model_of(c)
    clean, shifted = ev.correct(m, CLEAN, 0), ev.correct(m, s, sev)
    if clean is None or shifted is None:
        return _missing(c, f"{s} at severity {sev:g} (or the clean cell) is not in the store")
    pair = np.stack([clean, shifted], axis=1).astype(np.float64)
    if c.params["unit"] == "points":
        est, lo, hi = paired_bootstrap(100.0 * (pair[:, 0] - pair[:, 1]))
        unit = "points"
    else:
        def rel(p):
            base = p[:, 0].mean()
            return (base - p[:, 1].mean()) / base if base > 0 else 0.0
        est, lo, hi = paired_bootstrap(pair, stat=rel)
        unit = "relative"
    thr = c.params["at_least"]
    verdict = _verdict_from_interval(lo, hi, thr)
    fmt = (lambda v: f"{v:.1f} points") if unit == "points" else (lambda v: f"{100 * v:.1f} %")
    reason = (f"measured drop {fmt(est)} (95 % CI {fmt(lo)} to {fmt(hi)}) against the claimed "
              f"≥ {fmt(thr)}")
    return Verdict(c.describe(), c.kind, verdict, reason,
                   {"drop": est, "ci_low": lo, "ci_high": hi, "at_least": thr, "unit": unit,
                    "clean_accuracy": float(clean.mean()), "accuracy": float(shifted.mean()),
                    "n_images": int(clean.size)}, [c.model], [s])


def _regime_verdict(label: str | None, confidence: str | None, want_graceful: bool | str):
    if label in (None, "undetermined"):
        return "inconclusive"
    match = label == want_graceful if isinstance(want_graceful, str) else label == "graceful"
    if confidence in _WEAK:
        return "inconclusive"
    return "supported" if match else "contradicted"


def _check_regime(c: Claim, ev: Evidence) -> Verdict:
    r = ev.regime(_model_of(c), c.subject)
    if r is None:
        return _missing(c, f"no regime for {c.subject} (curves analysis)")
    v = _regime_verdict(r.get("label"), r.get("confidence"), c.params["is"])
    reason = (f"fitted regime {r.get('label')} ({r.get('confidence')} confidence"
              + (f", breakpoint {r['breakpoint']:.2g}" if r.get("breakpoint") is not None else "")
              + f"){_shape_facts(r)}; claimed {c.params['is']}")
    if v == "inconclusive" and r.get("label") not in (None, "undetermined"):
        reason += "; the evidence is too weak to decide"
    return Verdict(c.describe(), c.kind, v, reason,
                   {k: r.get(k) for k in ("label", *REGIME_EVIDENCE_KEYS)},
                   [c.model], [c.subject])


def _num(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f


def _drop_fact(r: dict | None) -> str:
    """", drop 6.6 points (fitted 6.4)": the magnitude behind a label, when known."""
    obs, fit = _num((r or {}).get("observed_drop")), _num((r or {}).get("fitted_drop"))
    if obs is None:
        return ""
    return f", drop {obs:.1f} points" + (f" (fitted {fit:.1f})" if fit is not None else "")


def _shape_facts(r: dict) -> str:
    """The drop and, for a knee, the rates before and after it against the 2x rule."""
    out = _drop_fact(r)
    before, after = _num(r.get("slope_before")), _num(r.get("slope_after"))
    if before is not None and after is not None and r.get("breakpoint") is not None:
        out += (f", {before:.1f} then {after:.1f} points per severity unit (collapse or "
                f"plateau needs one rate ≥ {SLOPE_RATIO:g}× the other)")
    return out


def _check_graceful(c: Claim, ev: Evidence) -> Verdict:
    """Graceful = the accuracy lost at the worst severity stays under ``max_drop`` points.

    The statistic is the largest drop over severities 1–5, recomputed in every bootstrap
    resample (the same images at every severity), so choosing the worst severity from the
    data is part of its interval. Supported when the whole interval lies below the bound,
    contradicted when it lies at or above it, inconclusive when it straddles. The fitted
    regime is shown beside it for the shape; it does not decide the verdict.
    """
    m, bound = _model_of(c), c.params["max_drop"]
    clean = ev.correct(m, CLEAN, 0)
    parts, verdicts, ev_out = [], [], {"max_drop": bound}
    for s in c.subject:
        got = [ev.correct(m, s, v) for v in INTEGER_SEVERITIES]
        cols = [col for col in got if col is not None]
        if clean is None or len(cols) < len(got):
            verdicts.append("inconclusive")
            parts.append(f"{s}: not measured at every severity 1–5")
            continue
        # (N, 1 + 5) per-image correctness; drop in points per severity, max over them.
        pair = np.stack([clean, *cols], axis=1).astype(np.float64)

        def worst(p):
            acc = p.mean(axis=0)
            return 100.0 * float((acc[0] - acc[1:]).max())
        est, lo, hi = paired_bootstrap(pair, stat=worst)
        verdict = ("supported" if hi < bound else "contradicted" if lo >= bound
                   else "inconclusive")
        verdicts.append(verdict)
        r = ev.regime(m, s)
        shape = "" if r is None else f"; fitted {r.get('label')} ({r.get('confidence')})"
        parts.append(f"{s}: worst drop {est:.1f} points (95 % CI {lo:.1f} to {hi:.1f}){shape}")
        ev_out.update({f"{s}_drop": est, f"{s}_ci_low": lo, f"{s}_ci_high": hi,
                       f"{s}_regime": None if r is None else r.get("label")})
    verdict = ("contradicted" if "contradicted" in verdicts else
               "supported" if all(v == "supported" for v in verdicts) else "inconclusive")
    rule = f" (graceful: the worst drop under {bound:g} points)"
    return Verdict(c.describe(), c.kind, verdict, "; ".join(parts) + rule, ev_out, [c.model],
                   list(c.subject))


def _mean_correct(ev: Evidence, model: str, stressors, sev=INTEGER_SEVERITIES):
    cols = [ev.correct(model, s, v) for s in stressors for v in sev]
    present = [col for col in cols if col is not None]
    if len(present) < len(cols) or not cols:
        return None
    return np.mean(np.stack(present, axis=1).astype(np.float64), axis=1)


def _check_harder(c: Claim, ev: Evidence) -> Verdict:
    m = _model_of(c)
    hard = _mean_correct(ev, m, c.subject)
    easy = _mean_correct(ev, m, c.params["than"])
    if hard is None or easy is None:
        return _missing(c, "some corruption × severity 1–5 cells are not in the store")
    diff = 100.0 * (easy - hard)          # > 0: the "harder" group costs more accuracy
    est, lo, hi = paired_bootstrap(diff)
    p = sign_flip_p(diff, seed=BOOT_SEED)[0]
    verdict = "supported" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"
    per = {s: 100.0 * float(_mean_correct(ev, m, [s]).mean())
           for s in (*c.subject, *c.params["than"])}
    worst_easy = min(per[s] for s in c.params["than"])
    best_hard = max(per[s] for s in c.subject)
    reason = (f"mean accuracy {100 * hard.mean():.1f} % vs {100 * easy.mean():.1f} %: "
              f"{est:.1f} points harder (95 % CI {lo:.1f} to {hi:.1f}, paired p = {p:.2g})")
    if verdict == "supported" and best_hard > worst_easy:
        reason += (f"; as groups only: {max(c.subject, key=per.__getitem__)} ({best_hard:.1f} %) is not "
                   f"below every listed easier corruption")
    return Verdict(c.describe(), c.kind, verdict, reason,
                   {"difference_points": est, "ci_low": lo, "ci_high": hi, "p_value": p,
                    "n_images": int(hard.size), **{f"accuracy:{k}": v for k, v in per.items()}},
                   [c.model], [*c.subject, *c.params["than"]])


def _check_more_robust(c: Claim, ev: Evidence, stressors_all=None) -> Verdict:
    a, b, p = c.subject, c.params["than"], c.params
    on = p["on"]
    if on == "all":
        from ...stressors import suite
        on = tuple(suite("cifar10-c"))
    acc_a, acc_b = _mean_correct(ev, a, on), _mean_correct(ev, b, on)
    if acc_a is None or acc_b is None:
        return _missing(c, "both models need every listed corruption at severities 1–5")
    if p["by"] == "drop":
        ca, cb = ev.correct(a, CLEAN, 0), ev.correct(b, CLEAN, 0)
        if ca is None or cb is None:
            return _missing(c, "a clean cell")
        diff = 100.0 * ((cb - acc_b) - (ca - acc_a))   # > 0: a loses less than b
        what = "accuracy lost to corruption"
    else:
        diff = 100.0 * (acc_a - acc_b)
        what = "mean corruption accuracy"
    if acc_a.shape != acc_b.shape:
        return _missing(c, "the two models were not evaluated on the same images")
    est, lo, hi = paired_bootstrap(diff)
    pval = sign_flip_p(diff, seed=BOOT_SEED)[0]
    verdict = "supported" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"
    reason = (f"{what}: {a} {'better' if est > 0 else 'worse'} by {abs(est):.2f} points "
              f"(95 % CI {lo:.2f} to {hi:.2f}, paired sign-flip p = {pval:.2g}, "
              f"{diff.size} images × {len(on)} corruptions × 5 severities); conditional on one "
              f"trained network per model")
    return Verdict(c.describe(), c.kind, verdict, reason,
                   {"difference_points": est, "ci_low": lo, "ci_high": hi, "p_value": pval,
                    "n_images": int(diff.size), "by": p["by"],
                    f"accuracy:{a}": 100 * float(acc_a.mean()),
                    f"accuracy:{b}": 100 * float(acc_b.mean())}, [a, b], list(on))


def _check_cam(c: Claim, ev: Evidence) -> Verdict:
    """``cam_drift`` (beyond the diffusion null) and ``cam_localisation``: the statistics
    and the rule live with the cam analysis (``cam/localisation.py``)."""
    from ...stressors import suite
    from ..cam.localisation import attention_verdict
    sev = c.params["severity"]
    names = [s for s in suite("cifar10-c") if ev.cam_cell(_model_of(c), s, sev) is not None]
    if not names:
        return _missing(c, f"no Grad-CAM drift at severity {sev:g} (cam analysis)")
    cells = [ev.cam_cell(_model_of(c), s, sev) for s in names]
    got = attention_verdict(c.kind, cells, sev, lambda d: paired_bootstrap(d))
    if got is None:
        return _missing(c, "fewer than two images with usable Grad-CAM maps")
    return Verdict(c.describe(), c.kind, *got, [c.model], names)


_CHECK = {"drop": _check_drop, "regime": _check_regime, "harder": _check_harder,
          "graceful": _check_graceful, "more_robust": _check_more_robust,
          "cam_drift": _check_cam,
          "cam_localisation": _check_cam}
