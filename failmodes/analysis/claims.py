"""Claims: statements a study makes about its models, checked against the stored predictions.

A study file may list ``claims:``; each is one of six kinds (keys as in the YAML)::

    {drop: contrast, model: r18, severity: 5, at_least: 40}          # points (default)
    {drop: contrast, model: r18, severity: 5, at_least: 0.43, unit: relative}
    {regime: fog, model: r18, is: threshold-collapse}
    {harder: [contrast, fog, motion_blur], than: [gaussian_noise, jpeg_compression], model: r18}
    {graceful: [jpeg_compression, brightness], model: r18}
    {more_robust: dn121, than: r18, on: all}                          # or a list of corruptions
    {cam_drift: background, model: r18, severity: 5}

Every claim gets a verdict — ``supported``, ``contradicted`` or ``inconclusive`` — and its
evidence: the numbers, a 95 % interval and, where two things are compared on the same
images, a paired test's p-value. Inconclusive is a real answer: the interval straddles the
claimed value, a regime is undetermined or only weakly preferred, or too few images.

Intervals are percentile intervals of a paired bootstrap over test images (the unit that
is sampled: cells of the same images are not independent), ``N_BOOT`` resamples with a
fixed seed, so verdicts are reproducible. Comparisons of corruption groups or models use
each image's mean correctness over the cells involved (corruptions × severities 1–5).

>>> c = parse_claims([{"regime": "fog", "model": "m", "is": "threshold-collapse"}],
...                  models={"m"})[0]
>>> c.kind, c.subject
('regime', 'fog')
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..errors import FailmodesError
from ..store import CLEAN, MAIN, ResultsStore, RunFolder, dataset_role
from .paired import sign_flip_p
from .registry import register_analysis, write_result
from .result import AnalysisResult

N_BOOT = 2000
BOOT_SEED = 0
KINDS = ("drop", "regime", "harder", "graceful", "more_robust", "cam_drift")
REGIMES = ("graceful", "linear", "threshold-collapse", "early-damage-plateau")
INTEGER_SEVERITIES = (1, 2, 3, 4, 5)
# Regime confidences (Kass–Raftery reading of the BIC margin) too weak to decide a claim.
_WEAK = ("weak", "n/a", None)
_KEYS = {
    "drop": {"drop", "model", "severity", "at_least", "unit", "text"},
    "regime": {"regime", "model", "is", "text"},
    "harder": {"harder", "than", "model", "text"},
    "graceful": {"graceful", "model", "text"},
    "more_robust": {"more_robust", "than", "on", "by", "text"},
    "cam_drift": {"cam_drift", "model", "severity", "text"},
}


class ClaimError(ValueError, FailmodesError):
    """A claim that cannot be checked (unknown kind, model, corruption or regime)."""


@dataclass(frozen=True)
class Claim:
    kind: str
    subject: Any                       # the corruption(s), model or target named by the kind key
    model: str | None = None
    params: dict = field(default_factory=dict)
    text: str = ""

    def describe(self) -> str:
        if self.text:
            return self.text
        p = self.params
        if self.kind == "drop":
            unit = " points" if p["unit"] == "points" else " (relative to clean)"
            amount = (f"{p['at_least']:g}{unit}" if p["unit"] == "points"
                      else f"{100 * p['at_least']:g} %{unit}")
            return (f"{self.model} loses at least {amount} of accuracy under "
                    f"{self.subject} at severity {p['severity']:g}")
        if self.kind == "regime":
            return f"{self.subject} degrades {self.model} as {p['is']}"
        if self.kind == "harder":
            return (f"for {self.model}, {', '.join(self.subject)} are more damaging than "
                    f"{', '.join(p['than'])}")
        if self.kind == "graceful":
            return f"{', '.join(self.subject)} degrade {self.model} gracefully"
        if self.kind == "more_robust":
            on = "all corruptions" if p["on"] == "all" else ", ".join(p["on"])
            return f"{self.subject} is more robust than {p['than']} on {on} (by {p['by']})"
        return (f"{self.model}'s attention drifts toward the {self.subject} at severity "
                f"{p['severity']:g}")


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

    def cam_border(self, model: str, stressor: str,
                   severity: float) -> tuple[np.ndarray, np.ndarray, float] | None:
        """Per-image CAM border share clean and stressed (same images), and the share a
        structureless map would have (the null); None when the CAM analysis did not run."""


# ----------------------------------------------------------------------------- parsing
def normalize_claim_keys(raw: list) -> list:
    """YAML 1.1 reads an unquoted key ``on`` as the boolean true: give it back its name
    (JSON and sorting need string keys)."""
    # "true" is the same key after a trip through JSON (a study.resolved.json saved before).
    return [{("on" if k is True or k == "true" else k): v for k, v in c.items()}
            if isinstance(c, dict) else c for c in (raw or [])]


def parse_claims(raw, *, models: set[str], stressors: set[str] | None = None,
                 where: str = "claims") -> list[Claim]:
    """Validate a study's ``claims:`` list at load time; one-line ClaimError on the first
    unknown kind, key, model, corruption or regime."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise ClaimError(f"{where}: must be a list of claims, got {type(raw).__name__}")
    if stressors is None:
        from ..stressors import list_stressors
        stressors = {n for n in list_stressors()}
    return [_parse_one(c, f"{where}[{i}]", models, stressors) for i, c in enumerate(raw)]


def _parse_one(c, where: str, models: set[str], stressors: set[str]) -> Claim:
    if not isinstance(c, dict):
        raise ClaimError(f"{where}: a claim is a mapping such as {{regime: fog, model: M, "
                         f"is: threshold-collapse}}")
    c = normalize_claim_keys([c])[0]
    kinds = [k for k in KINDS if k in c]
    if len(kinds) != 1:
        raise ClaimError(f"{where}: a claim names exactly one of {', '.join(KINDS)}; got "
                         f"{', '.join(map(str, c)) or 'nothing'}")
    kind = kinds[0]
    extra = set(c) - _KEYS[kind]
    if extra:
        raise ClaimError(f"{where}: unknown key {sorted(extra)[0]!r} for a {kind} claim; "
                         f"allowed: {', '.join(sorted(_KEYS[kind]))}")
    text = str(c.get("text", ""))

    def model(key="model"):
        m = c.get(key)
        if m not in models:
            raise ClaimError(f"{where}: {key} {m!r} is not a model of this study "
                             f"({', '.join(sorted(models)) or 'none'})")
        return m

    def corruption(name, key):
        if not isinstance(name, str) or name not in stressors:
            raise ClaimError(f"{where}: {key} names unknown stressor {name!r}")
        return name

    def corruptions(key):
        v = c.get(key)
        v = [v] if isinstance(v, str) else v
        if not isinstance(v, list) or not v:
            raise ClaimError(f"{where}: {key} must be a stressor name or a non-empty list")
        return tuple(corruption(n, key) for n in v)

    def number(key, lo, hi, default=None):
        v = c.get(key, default)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise ClaimError(f"{where}: {key} must be a number in [{lo:g}, {hi:g}], got {v!r}")
        return float(v)

    if kind == "drop":
        unit = c.get("unit", "points")
        if unit not in ("points", "relative"):
            raise ClaimError(f"{where}: unit must be points or relative, got {unit!r}")
        hi = 100.0 if unit == "points" else 1.0
        return Claim(kind, corruption(c["drop"], "drop"), model(),
                     {"severity": number("severity", 0, 5, 5), "unit": unit,
                      "at_least": number("at_least", 0, hi)}, text)
    if kind == "regime":
        if c.get("is") not in REGIMES:
            raise ClaimError(f"{where}: is {c.get('is')!r} is not a regime; choose from "
                             f"{', '.join(REGIMES)}")
        return Claim(kind, corruption(c["regime"], "regime"), model(), {"is": c["is"]}, text)
    if kind == "harder":
        return Claim(kind, corruptions("harder"), model(), {"than": corruptions("than")}, text)
    if kind == "graceful":
        return Claim(kind, corruptions("graceful"), model(), {}, text)
    if kind == "more_robust":
        on = c.get("on", "all")
        on = "all" if on == "all" else corruptions("on")
        by = c.get("by", "accuracy")
        if by not in ("accuracy", "drop"):
            raise ClaimError(f"{where}: by must be accuracy or drop, got {by!r}")
        a, b = model("more_robust"), model("than")
        if a == b:
            raise ClaimError(f"{where}: more_robust compares two different models")
        return Claim(kind, a, None, {"than": b, "on": on, "by": by}, text)
    target = c.get("cam_drift")
    if target != "background":
        raise ClaimError(f"{where}: cam_drift supports 'background', got {target!r}")
    return Claim(kind, target, model(), {"severity": number("severity", 1, 5, 5)}, text)


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
    clean, shifted = ev.correct(m, "clean", 0), ev.correct(m, s, sev)
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
              + f"); claimed {c.params['is']}")
    if v == "inconclusive" and r.get("label") not in (None, "undetermined"):
        reason += "; the evidence is too weak to decide"
    return Verdict(c.describe(), c.kind, v, reason,
                   {k: r.get(k) for k in ("label", "confidence", "breakpoint", "total_drop")},
                   [c.model], [c.subject])


def _check_graceful(c: Claim, ev: Evidence) -> Verdict:
    parts, verdicts, ev_out = [], [], {}
    for s in c.subject:
        r = ev.regime(_model_of(c), s)
        v = "inconclusive" if r is None else _regime_verdict(r.get("label"),
                                                              r.get("confidence"), True)
        verdicts.append(v)
        label = "not measured" if r is None else f"{r.get('label')} ({r.get('confidence')})"
        parts.append(f"{s}: {label}")
        ev_out[f"{s}"] = None if r is None else r.get("label")
    verdict = ("contradicted" if "contradicted" in verdicts else
               "supported" if all(v == "supported" for v in verdicts) else "inconclusive")
    return Verdict(c.describe(), c.kind, verdict, "; ".join(parts), ev_out, [c.model],
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
        from ..stressors import suite
        on = tuple(suite("cifar10-c"))
    acc_a, acc_b = _mean_correct(ev, a, on), _mean_correct(ev, b, on)
    if acc_a is None or acc_b is None:
        return _missing(c, "both models need every listed corruption at severities 1–5")
    if p["by"] == "drop":
        ca, cb = ev.correct(a, "clean", 0), ev.correct(b, "clean", 0)
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


def _check_cam_drift(c: Claim, ev: Evidence) -> Verdict:
    sev = c.params["severity"]
    from ..stressors import suite
    clean_all, shifted_all, nulls = [], [], []
    for s in suite("cifar10-c"):
        got = ev.cam_border(_model_of(c), s, sev)
        if got is not None:
            clean_all.append(got[0])
            shifted_all.append(got[1])
            nulls.append(got[2])
    if not clean_all:
        return _missing(c, f"no Grad-CAM drift at severity {sev:g} (cam analysis)")
    # Per image: mean border share over the corruptions at this severity, minus clean;
    # images whose maps were unusable (NaN) in some cell average over the others.
    with np.errstate(all="ignore"):
        diff = np.nanmean(np.stack(shifted_all, 1), 1) - np.nanmean(np.stack(clean_all, 1), 1)
    diff = diff[np.isfinite(diff)]
    if diff.size < 2:
        return _missing(c, "fewer than two images with usable Grad-CAM maps")
    est, lo, hi = paired_bootstrap(diff)
    null = float(np.mean(nulls))
    verdict = "supported" if lo > 0 else "contradicted" if hi < 0 else "inconclusive"
    clean_mean = float(np.nanmean(np.stack(clean_all)))
    reason = (f"CAM mass in the border band rises by {est:+.3f} (95 % CI {lo:+.3f} to "
              f"{hi:+.3f}) from {clean_mean:.3f} on clean images; a structureless map puts "
              f"{null:.3f} there")
    return Verdict(c.describe(), c.kind, verdict, reason,
                   {"border_share_clean": clean_mean, "change": est, "ci_low": lo,
                    "ci_high": hi, "null_share": null, "n_images": int(diff.size),
                    "n_corruptions": len(clean_all)}, [c.model], list(suite("cifar10-c")))


_CHECK = {"drop": _check_drop, "regime": _check_regime, "harder": _check_harder,
          "graceful": _check_graceful, "more_robust": _check_more_robust,
          "cam_drift": _check_cam_drift}


# ----------------------------------------------------------------------------- from a run
class RunEvidence:
    """Evidence read from a run folder: per-image correctness from the store (main dataset),
    regimes from ``analysis/curves.json``, per-image CAM border shares from
    ``analysis/cam.json`` (written by the curves and cam analyses, which run before this one)."""

    def __init__(self, run_dir: str | Path):
        folder = RunFolder(run_dir)
        self.store = ResultsStore(folder.store, readonly=True)
        done = [c for c in self.store.cells() if dataset_role(c.dataset) == MAIN]
        main = Counter(c.dataset for c in done).most_common(1)
        self.dataset = main[0][0] if main else None
        self._cells = {(c.model, c.stressor, float(c.severity)): c for c in done
                       if c.dataset == self.dataset}
        self._curves = _read(folder.analysis / "curves.json")
        self._cam = _read(folder.analysis / "cam.json")

    def close(self) -> None:
        self.store.close()

    def correct(self, model, stressor, severity):
        cell = self._cells.get((model, stressor, 0.0 if stressor == CLEAN else float(severity)))
        if cell is None:
            return None
        r = self.store.predictions(cell)
        return r["pred"] == r["label"]

    def regime(self, model, stressor):
        for row in ((self._curves or {}).get("tables") or {}).get("regimes", []):
            if row.get("model") == model and row.get("stressor") == stressor:
                return {"label": row.get("regime", row.get("label")),
                        "confidence": row.get("confidence"),
                        "breakpoint": row.get("breakpoint"),
                        "total_drop": row.get("total_drop")}
        return None

    def cam_border(self, model, stressor, severity):
        cam = self._cam or {}
        per = (((cam.get("data") or {}).get("models") or {}).get(model) or {}).get("per_image")
        if not per:
            return None
        cell = (per.get("cells") or {}).get(f"{stressor}@{float(severity):g}")
        if cell is None:
            return None
        # Full sample, in sample order (NaN where a map was unusable): the checker
        # averages over corruptions per image, so every cell must keep the same images.
        clean = np.asarray([np.nan if v is None else v for v in per["clean"]["border_share"]],
                           dtype=np.float64)
        shifted = np.asarray([np.nan if v is None else v for v in cell["border_share"]],
                             dtype=np.float64)
        null = float((cam.get("params") or {}).get("border_area", float("nan")))
        return clean, shifted, null


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _claims_from_run(run_dir: Path) -> list | None:
    resolved = _read(RunFolder(run_dir).resolved) or {}
    return (resolved.get("config") or {}).get("claims")


@register_analysis("claims", title="Claims checked against the data", order=90)
def claims(run_dir: Path, out_dir: Path, *, claims: list | None = None) -> AnalysisResult:
    """Check the study's claims (``claims`` as in the study file; default: the run's
    ``study.resolved.json``) and write ``out_dir/claims.json``."""
    raw = claims if claims is not None else _claims_from_run(Path(run_dir))
    ev = RunEvidence(run_dir)
    try:
        models = {m["name"] for m in ev.store.models()}
        parsed = parse_claims(raw or [], models=models)
        verdicts = check_claims(parsed, ev)
    finally:
        ev.close()
    res = AnalysisResult(name="claims", params={"n_boot": N_BOOT, "boot_seed": BOOT_SEED,
                                                "interval": "95 % percentile, paired bootstrap "
                                                            "over test images",
                                                "dataset": ev.dataset})
    rows, evidence = [], []
    for i, v in enumerate(verdicts):
        e = v.evidence
        rows.append({"claim": v.claim, "kind": v.kind, "verdict": v.verdict, "reason": v.reason,
                     "models": ", ".join(v.models), "stressors": ", ".join(v.stressors),
                     "p_value": e.get("p_value"), "ci_low": e.get("ci_low"),
                     "ci_high": e.get("ci_high")})
        evidence += [{"claim": i, "key": k, "value": val} for k, val in e.items()]
    res.tables = {"claims": rows, "claims_evidence": evidence}
    counts = Counter(v.verdict for v in verdicts)
    res.summary = {"n_claims": len(verdicts), **{k: counts.get(k, 0) for k in
                                                 ("supported", "contradicted", "inconclusive")}}
    res.notes = [f"{v.verdict}: {v.claim} — {v.reason}" for v in verdicts]
    write_result(Path(out_dir), "claims", res.to_dict())
    return res
