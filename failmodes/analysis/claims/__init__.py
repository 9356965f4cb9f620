"""Claims: statements a study makes about its models, checked against the stored predictions.

A study file may list ``claims:``; each is one of eight kinds (keys as in the YAML)::

    {drop: contrast, model: r18, severity: 5, at_least: 40}          # points (default)
    {drop: contrast, model: r18, severity: 5, at_least: 0.43, unit: relative}
    {drop: contrast, model: r18, severity: 5, about: 43}             # "up to / about 43"
    {regime: fog, model: r18, is: threshold-collapse}
    {harder: [contrast, fog, motion_blur], than: [gaussian_noise, jpeg_compression], model: r18}
    {harder: [...], than: [...], model: r18, population: kinds}       # kinds of corruption
    {graceful: [jpeg_compression, brightness], model: r18}            # absolute: < 5 points
    {gentlest: [jpeg_compression, brightness], model: r18, top: 5}    # "comparatively graceful"
    {more_robust: dn121, than: r18, on: all}                          # or a list of corruptions
    {cam_drift: background, model: r18, severity: 5}
    {errors_concentrate: {background: blue}, model: r18, classes: [ship, bird],
     confused_with: airplane}                                        # slices analysis

The forms say what the sentence said: ``at_least`` is one-sided, ``about`` two-sided (the
claimed value inside the interval; an interval above or below it contradicts, saying
which); ``graceful`` is an absolute bound, ``gentlest`` a rank among all corruptions;
``harder`` rests on the image-level test (these corruptions on these images) or, with
``population: kinds``, on the corruption-level permutation test (kinds of corruption), and
reports both. Regime claims are decided on the share of paired resamples in which the
claimed label wins (curves analysis). The result's ``family_wise`` counts how many of the
study's claims would get a decisive verdict by chance and adjusts the claims' p-values by
Holm.

Every claim gets a verdict — ``supported``, ``contradicted`` or ``inconclusive`` — and its
evidence: the numbers, a 95 % interval and, where two things are compared on the same
images, a paired test's p-value. Inconclusive is a real answer: the interval straddles the
claimed value, a regime is undetermined or only weakly preferred, or too few images.

Intervals are percentile intervals of a paired bootstrap over test images (the unit that
is sampled: cells of the same images are not independent), ``N_BOOT`` resamples with a
fixed seed, so verdicts are reproducible. Comparisons of corruption groups or models use
each image's mean correctness over the cells involved (corruptions × severities 1–5).

Reading and validating the ``claims:`` list lives in ``_claims_parse``, each kind's check in
``_claims_verdicts``; this module reads the evidence from a run folder and is the analysis.

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

from ...store import CLEAN, MAIN, ResultsStore, RunFolder, dataset_role
from ..registry import register_analysis, write_result
from ..result import AnalysisResult
from ._parse import KINDS, REGIMES, Claim, ClaimError, normalize_claim_keys, parse_claims
from ._verdicts import (
    BOOT_SEED,
    INTEGER_SEVERITIES,
    N_BOOT,
    REGIME_EVIDENCE_KEYS,
    Evidence,
    Verdict,
    check_claims,
    family_wise,
    graceful_bounds,
    group_permutation_p,
    paired_bootstrap,
    regime_verdict,
)

__all__ = ["BOOT_SEED", "INTEGER_SEVERITIES", "KINDS", "N_BOOT", "REGIMES", "Claim", "ClaimError",
           "Evidence", "RunEvidence", "Verdict", "check_claims", "claims", "family_wise",
           "graceful_bounds", "group_permutation_p", "normalize_claim_keys",
           "paired_bootstrap", "parse_claims", "regime_verdict"]


class RunEvidence:
    """Evidence read from a run folder: per-image correctness from the store (main dataset),
    regimes from ``analysis/curves.json``, per-image CAM border shares from
    ``analysis/cam.json`` (written by the curves and cam analyses, which run before this one)."""

    def __init__(self, run_dir: str | Path):
        folder = RunFolder(run_dir)
        self.run_dir = Path(run_dir)
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
                out = {"label": row.get("regime", row.get("label")),
                       **{k: row.get(k) for k in REGIME_EVIDENCE_KEYS}}
                # Each label's share of the paired resamples (curves' share_* columns).
                shares = {lab: float(row[k]) for lab in (*REGIMES, "undetermined")
                          if row.get(k := "share_" + lab.replace("-", "_"))}
                out["label_shares"] = dict(sorted(shares.items(), key=lambda t: -t[1])) or None
                return out
        return None

    def concentration(self, claim: dict):
        from ..slices import check_claim
        return check_claim(self.run_dir, claim)

    def cam_cell(self, model, stressor, severity):
        from ..cam.localisation import cell_evidence
        models = ((self._cam or {}).get("data") or {}).get("models") or {}
        return cell_evidence((models.get(model) or {}).get("per_image"), stressor, severity)


def _scalar(v):
    """Evidence values are JSON scalars in the evidence table; a dict (label shares) reads
    as 'linear 0.67 / early-damage-plateau 0.33'."""
    if isinstance(v, dict):
        return " / ".join(f"{k} {x:.2f}" if isinstance(x, float) else f"{k} {x}"
                          for k, x in v.items())
    return v


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _claims_from_run(run_dir: Path) -> list | None:
    resolved = _read(RunFolder(run_dir).resolved) or {}
    return (resolved.get("config") or {}).get("claims")


@dataclass
class ClaimsOptions:
    claims: list | None = field(default=None, metadata={
        "help": "the claims, as in a study file [default: the run's study.resolved.json]"})


INTRO = ("The study's claims checked against the stored predictions: each verdict "
         "(supported, contradicted or inconclusive) with its evidence and the uncertainty "
         "of the decision.")


@register_analysis("claims", title="Claims checked against the data", order=90,
                   options=ClaimsOptions, intro=INTRO)
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
        evidence += [{"claim": i, "key": k, "value": _scalar(val)} for k, val in e.items()]
    fw = family_wise(rows)
    res.tables = {"claims": rows, "claims_evidence": evidence}
    counts = Counter(v.verdict for v in verdicts)
    res.summary = {"n_claims": len(verdicts), **{k: counts.get(k, 0) for k in
                                                 ("supported", "contradicted", "inconclusive")},
                   "expected_by_chance": fw["expected_by_chance"],
                   "n_significant_holm": fw["n_significant_holm"],
                   "family_wise": fw["sentence"]}
    res.params["family_wise"] = "Holm over the claims' p-values; chance count α·m"
    res.notes = [f"{v.verdict}: {v.claim} — {v.reason}" for v in verdicts] + [fw["sentence"]]
    write_result(Path(out_dir), "claims", res.to_dict())
    return res
