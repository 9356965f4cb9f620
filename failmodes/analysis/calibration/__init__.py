"""Calibration and uncertainty under shift: can a user trust the confidence when the input
shifts?

For every model in a run's store this analysis

1. fits a temperature T by minimising the NLL on images the model never trained on
   (``temperature.py``): the clean validation cell (``<name>:train-val[@n]``) when the
   model's checkpoint held out exactly that split, else a seeded random half of the clean
   test cell, reporting every cell on the other half only (and saying so in the notes);
2. stores T in ``out_dir/calibration.json`` and in the store's ``temperatures`` table
   (read it back with ``read_temperatures``; a read-only store is left as it is);
3. scores every done cell before and after T: ECE (equal-width float64 bins, top-label,
   the same bins as the reliability diagram), adaptive ECE (equal-mass), MCE, NLL (from
   log_softmax), Brier summed over classes (0–2), the dangerous-failure rate (wrong with
   confidence > ``confidence_threshold``), AUROC / AUPR of max-probability, entropy and
   margin as error detectors
   (errors are positives), accuracy at 80 % / 90 % coverage and AURC;
4. averages the cells per family (noise, blur, weather, digital, sweep) and per severity,
   and draws reliability diagrams (clean vs the most severe level), confidence
   histograms, ECE vs severity per corruption and risk-coverage curves.

Table rows are wide: a metric ``m`` before scaling and ``m_ts`` after it. All rates are
fractions in [0, 1]; NLL in nats.

>>> result = calibrate_run("runs/quick", "runs/quick/analysis")      # doctest: +SKIP
>>> result.per_model["r18"]["temperature"]                          # doctest: +SKIP
1.71
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...constants import CALIBRATION_BINS, CONFIDENT_THRESHOLD
from ...store import (
    CLEAN,
    OFFICIAL,
    Cell,
    ResultsStore,
    RunFolder,
    StoreError,
    dataset_role,
    is_validation,
    store_writable,
    stressor_family,
)
from ...stressors import CORRUPTION_FAMILIES
from ..registry import Headline, register_analysis, write_result
from ..result import AnalysisResult, Figure
from ._core import (
    CalibrationInputError,
    Scores,
    TemperatureFit,
    bins_ece,
    cell_metrics,
    fit_temperature,
    reliability_bins,
    risk_coverage,
    scores_from_logits,
    scores_from_rows,
)
from ._tables import (
    SURVIVES_FACTOR,
    SURVIVES_SLACK,
    family_rows,
    floor_findings,
    model_findings,
    model_row,
    severity_rows,
    shift_table,
)
from .temperature import fit_for_model, read_temperatures, save_temperature

__all__ = ["CalibrationInputError", "TemperatureFit", "calibrate_run", "fit_temperature",
           "read_temperatures", "save_temperature", "shift_table"]

# Metrics that temperature scaling can change; accuracy and n cannot.
SCALED = ("mean_conf", "ece", "ece_adaptive", "mce", "nll", "brier_sum", "dangerous_rate",
          "dangerous_share", "auroc_msp", "aupr_msp", "auroc_entropy", "aupr_entropy",
          "auroc_margin", "aupr_margin", "acc_at_cov80", "acc_at_cov90", "aurc")
# Coverage grid (fraction kept) at which risk-coverage curves are saved to JSON.
RC_GRID = np.linspace(0.01, 1.0, 100)


# ============================================================== the analysis
@dataclass
class CalibrationOptions:
    n_bins: int = field(default=CALIBRATION_BINS, metadata={
        "help": "equal-width (and equal-mass) ECE bins", "flags": ("--bins",), "min": 1})
    confidence_threshold: float = field(default=CONFIDENT_THRESHOLD, metadata={
        "help": "confidence above which an error is a dangerous failure",
        "min": 0.0, "max": 0.999999})
    strict: bool = field(default=False, metadata={
        "help": "refuse instead of falling back to half of the clean test cell when the "
                "checkpoint does not prove it held the validation images out"})


INTRO = ("Whether confidence can be trusted under shift: expected calibration error on clean "
         "and corrupted data, before and after temperature scaling, and how well confidence "
         "flags errors.")
HEADLINES = (
    Headline("ece_clean", "ECE clean", "fraction", higher_is_better=False,
             note="expected calibration error (before temperature scaling) on the clean "
                  "images"),
    Headline("ece_shifted", "ECE shifted, mean of cells", "fraction", higher_is_better=False,
             note="the mean of the corruption cells' ECEs (not the ECE of all cells pooled)"),
)


@register_analysis("calibration", title="Calibration and uncertainty under shift", order=40,
                   options=CalibrationOptions, intro=INTRO, headlines=HEADLINES)
def calibrate_run(run_dir: str | Path, out_dir: str | Path | None = None, *,
                  n_bins: int = CALIBRATION_BINS, confidence_threshold: float = CONFIDENT_THRESHOLD,
                  strict: bool = False) -> AnalysisResult:
    """Run the calibration analysis on ``run_dir/results.sqlite``; write
    ``out_dir/calibration.json`` and ``out_dir/figures/calibration_*.png``.

    ``out_dir`` defaults to ``run_dir/analysis``. ``strict``: refuse (one line) instead of
    falling back to half of the clean test cell when a validation cell exists but the
    model's checkpoint does not prove it held those images out. Returns the
    ``AnalysisResult`` (tables: models / cells / families / severities / temperatures;
    ``data``: temperatures, reliability bins and risk-coverage curves).
    """
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else RunFolder(run_dir).analysis
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise CalibrationInputError(f"--bins must be an integer >= 2, got {n_bins!r}")
    if not 0.0 < confidence_threshold < 1.0:
        raise CalibrationInputError(f"confidence_threshold must lie in (0, 1), got {confidence_threshold!r}")
    path = RunFolder(run_dir).store
    if not path.is_file():
        raise StoreError(f"no results store at {path}; run `failmodes evaluate --out {run_dir}` "
                         "first")
    # On read-only media the analysis still runs; T is then only in calibration.json.
    store = ResultsStore(path, readonly=not store_writable(path))
    try:
        records = store.models()
        models = [m["name"] for m in records]
        reports = [_calibrate_model(store, m["name"], m.get("meta"), n_bins, confidence_threshold,
                                    strict) for m in records]
        failed = store.cells(status="failed")
    finally:
        store.close()
    result = _assemble([r for r in reports if r is not None], out_dir, n_bins, confidence_threshold, models)
    if failed:
        result.notes.append(f"{len(failed)} cell(s) failed during evaluation and are left "
                            "out (see the store's cells.error).")
    if store.readonly:
        result.notes.append(f"{path} is read-only: the temperatures are saved in "
                            "calibration.json only, not in the store.")
    write_result(out_dir, "calibration", result)
    return result


@dataclass
class _ModelReport:
    model: str
    dataset: str                      # the primary test dataset
    fit: TemperatureFit | None
    fitted_on: str
    rows: list = field(default_factory=list)         # per-cell table rows
    pools: dict = field(default_factory=dict)        # label -> {"raw","ts","correct"} lists
    # The cells behind the shifted mean of cells: (image ids, raw conf, T conf or None,
    # correct) each, for its paired interval and noise floor.
    shifted: list = field(default_factory=list)
    notes: list = field(default_factory=list)


def _calibrate_model(store: ResultsStore, model: str, meta: dict | None, n_bins: int,
                     confidence_threshold: float, strict: bool) -> _ModelReport | None:
    cells = store.cells(model=model)
    val = [c for c in cells if is_validation(c.dataset) and c.stressor == CLEAN]
    test = [c for c in cells if not is_validation(c.dataset)]
    if not test:
        return None
    dataset = _primary_dataset(test)
    clean = [c for c in test if c.stressor == CLEAN and c.dataset == dataset]
    fit, fitted_on, keep_idx, notes = fit_for_model(store, model, meta, val, clean, strict)
    if not store.readonly:
        save_temperature(store, model, fit, fitted_on)
    rep = _ModelReport(model, dataset, fit, fitted_on, notes=notes)
    ignored = [c for c in cells if is_validation(c.dataset) and c.stressor != CLEAN]
    if ignored:
        rep.notes.append(f"{model}: {len(ignored)} shifted cell(s) on the validation split are "
                         "not reported (validation is only used to fit T).")
    no_logits = 0
    for cell in sorted(test, key=lambda c: (c.dataset != dataset, c.stressor != CLEAN)):
        raw, ts, idx = _cell_scores(store, cell, fit, keep_idx)
        no_logits += raw.sq_norm is None
        row = _cell_row(model, cell, raw, ts, n_bins, confidence_threshold)
        rep.rows.append(row)
        if cell.dataset == dataset:
            label = _pool_label(row)
            _pool(rep.pools, label, raw, ts)
            if label not in (None, CLEAN):     # a corruption cell at severity 1-5: "shifted"
                rep.shifted.append((idx, raw.conf, None if ts is None else ts.conf,
                                    raw.correct))
    unknown = sorted({r["stressor"] for r in rep.rows if r["family"] == "other"})
    if unknown:
        rep.notes.append(f"{model}: stressor(s) {', '.join(unknown)} are not in the stressor "
                         "registry (family 'other'): listed per cell but left out of the "
                         "corruption averages and figures.")
    if no_logits:
        rep.notes.append(f"{model}: {no_logits} cell(s) have no stored logits; their Brier "
                         "score and every after-T number are blank.")
    return rep


def _primary_dataset(test: list[Cell]) -> str:
    """The dataset the summary and figures follow: a generated (not official CIFAR-10-C)
    one with a clean cell and the most cells; else simply the one with the most cells."""
    counts = Counter(c.dataset for c in test)
    has_clean = {c.dataset for c in test if c.stressor == CLEAN}
    main = [d for d in counts if d in has_clean and dataset_role(d) != OFFICIAL]
    return max(main or counts, key=lambda d: counts[d])


def _cell_scores(store, cell: Cell, fit, keep_idx) -> tuple[Scores, Scores | None, np.ndarray]:
    """(raw scores, scores after T or None, the image ids they belong to)."""
    rows = store.predictions(cell, logits=True)
    where = f"cell {cell.stressor}@{cell.severity:g} ({cell.dataset}, model {cell.model})"
    mask = None if keep_idx is None else np.isin(rows["idx"], keep_idx)
    idx = np.asarray(rows["idx"]) if mask is None else np.asarray(rows["idx"])[mask]
    if rows["logits"] is None:
        raw = scores_from_rows(rows, len(store.class_names(cell.model)))
        return (raw if mask is None else raw.subset(torch.from_numpy(mask))), None, idx
    logits, labels = torch.from_numpy(rows["logits"]), torch.from_numpy(rows["label"])
    if mask is not None:
        logits, labels = logits[torch.from_numpy(mask)], labels[torch.from_numpy(mask)]
    raw = scores_from_logits(logits, labels, where=where)
    ts = scores_from_logits(logits, labels, fit.temperature, where) if fit else None
    return raw, ts, idx


def _cell_row(model, cell: Cell, raw: Scores, ts: Scores | None, n_bins, confidence_threshold) -> dict:
    m = cell_metrics(raw, n_bins, confidence_threshold)
    mt = cell_metrics(ts, n_bins, confidence_threshold) if ts is not None else {}
    row = {"model": model, "dataset": cell.dataset, "stressor": cell.stressor,
           "family": stressor_family(cell.stressor), "severity": cell.severity, "seed": cell.seed}
    for k, v in m.items():
        row[k] = v
        if k in SCALED:
            row[f"{k}_ts"] = mt.get(k, float("nan"))
    return row


def _pool_label(row: dict):
    """Pools for figures: "clean", or the integer severity of a corruption cell; sweeps
    (natural units), fractional severities and unknown stressors are not pooled."""
    if row["family"] == CLEAN:
        return CLEAN
    sev = float(row["severity"])
    return sev if row["family"] in CORRUPTION_FAMILIES and sev in (1, 2, 3, 4, 5) else None


def _pool(pools: dict, label, raw: Scores, ts: Scores | None) -> None:
    if label is None:
        return
    p = pools.setdefault(label, {"raw": [], "ts": [], "correct": []})
    p["raw"].append(raw.conf)
    p["correct"].append(raw.correct)
    if ts is not None:
        p["ts"].append(ts.conf)


def _cat(ts: list) -> torch.Tensor | None:
    return torch.cat(ts) if ts else None


def _assemble(reports: list[_ModelReport], out_dir: Path, n_bins: int, confidence_threshold: float,
              models: list[str]) -> AnalysisResult:
    from . import _figures as figs
    notes, figures, temps = [], [], {}
    cells, families, severities, model_rows = [], [], [], []
    reliability, rc = {}, {}
    per_model: dict = {}
    fig_dir = Path(out_dir) / "figures"
    for rep in reports:
        notes += rep.notes
        cells += rep.rows
        fam = family_rows(rep)
        families += fam
        severities += severity_rows(rep)
        f = rep.fit
        temps[rep.model] = ({"temperature": f.temperature, "fitted_on": rep.fitted_on,
                             "n_fit": f.n, "nll_before": f.nll_before, "nll_after": f.nll_after,
                             "at_bound": f.at_bound} if f else
                            {"temperature": None, "fitted_on": "not fitted"})
        head = model_row(rep, fam, n_bins)
        model_rows.append(head)
        per_model[rep.model] = {k: v for k, v in head.items() if k != "model"}
        notes += model_findings(rep, fam, confidence_threshold) + floor_findings(head)
        rel, curves, figs_m = _model_views(rep, n_bins, fig_dir)
        reliability[rep.model] = rel
        rc[rep.model] = {"coverage": RC_GRID.round(4).tolist(), "curves": curves}
        figures += figs_m
    if families:
        figures.append(figs.family_bars(fig_dir / "calibration_ece_by_family.png", families))
    figures = [Figure(str(p.relative_to(out_dir)), c) for p, c in figures]
    missing = [m for m in models if m not in temps]
    if missing:
        notes.append(f"no test cells for model(s) {', '.join(missing)}; nothing to report.")
    if not reports:
        notes.append("the store has no test cells; evaluate a model first.")
    return AnalysisResult(
        "calibration",
        params={"n_bins": n_bins, "confidence_threshold": confidence_threshold,
                "survives_factor": SURVIVES_FACTOR, "survives_slack": SURVIVES_SLACK,
                "binning": "equal-width, float64, last bin closed at 1",
                "brier": "summed over classes, range 0-2", "nll": "nats, from log_softmax"},
        per_model=per_model, figures=figures,
        tables={"models": model_rows, "cells": cells, "families": families,
                "severities": severities,
                "temperatures": [{"model": m, **t} for m, t in temps.items()]},
        notes=notes, data={"temperatures": temps, "reliability": reliability,
                           "risk_coverage": rc})


def _model_views(rep: _ModelReport, n_bins: int, fig_dir: Path) -> tuple[list, dict, list]:
    """Pooled views of one model: reliability bins (clean, most severe level), risk-coverage
    curves per severity, and its figures as (path, caption)."""
    from . import _figures as figs
    panels = []
    for label, title in ((CLEAN, "clean"), _most_severe(rep)):
        p = rep.pools.get(label)
        if p is None:
            continue
        correct, raw, ts = _cat(p["correct"]), _cat(p["raw"]), _cat(p["ts"])
        assert correct is not None and raw is not None  # _pool appends to both at once
        panels.append({"title": title, "correct": correct, "raw": raw, "ts": ts,
                       "pooled": label != CLEAN,
                       "bins_raw": reliability_bins(raw, correct, n_bins),
                       "bins_ts": reliability_bins(ts, correct, n_bins) if ts is not None
                       else None})
    reliability = [{"title": p["title"], "n": int(p["correct"].numel()),
                    "ece_kind": "pooled" if p["pooled"] else "cell",
                    "raw": _bins_json(p["bins_raw"]), "ts": _bins_json(p["bins_ts"])}
                   for p in panels]
    curves = {}
    for label in sorted(rep.pools, key=lambda x: (-1.0 if x == CLEAN else x)):
        p = rep.pools[label]
        correct = _cat(p["correct"])
        assert correct is not None  # _pool appends to "correct" whenever it makes a pool
        name = "clean" if label == CLEAN else f"severity {label:g}"
        curves[name] = {k: _rc_grid(*risk_coverage(torch.cat(p[k]), correct))
                        for k in ("raw", "ts") if p[k]}
    slug, out = _slug(rep.model), []
    if panels:
        out.append(figs.reliability(fig_dir / f"calibration_reliability_{slug}.png",
                                    rep.model, panels, bins_ece))
        out.append(figs.confidence_hist(fig_dir / f"calibration_confidence_{slug}.png",
                                        rep.model, panels))
    by_corr = [r for r in rep.rows if r["dataset"] == rep.dataset
               and r["family"] in CORRUPTION_FAMILIES]
    if by_corr:
        clean_row = next((r for r in rep.rows if r["family"] == CLEAN
                          and r["dataset"] == rep.dataset), None)
        out.append(figs.ece_vs_severity(fig_dir / f"calibration_ece_severity_{slug}.png",
                                        rep.model, by_corr, clean_row))
    if curves:
        out.append(figs.risk_coverage(fig_dir / f"calibration_risk_coverage_{slug}.png",
                                      rep.model, RC_GRID, curves))
    return reliability, curves, out


def _most_severe(rep: _ModelReport) -> tuple:
    sev = [k for k in rep.pools if k != CLEAN]
    if not sev:
        return None, ""
    s = max(sev)
    n_cells = sum(1 for r in rep.rows if r["dataset"] == rep.dataset and _pool_label(r) == s)
    return s, f"severity {s:g}, all {n_cells} corruption cells pooled"


def _bins_json(b: dict | None):
    if b is None:
        return None
    return {"edges": b["edges"].round(6).tolist(), "count": b["count"].tolist(),
            "confidence": [None if math.isnan(v) else v for v in b["confidence"].tolist()],
            "accuracy": [None if math.isnan(v) else v for v in b["accuracy"].tolist()]}


def _rc_grid(cov: np.ndarray, risk: np.ndarray) -> list[float]:
    n = len(risk)
    k = np.clip(np.ceil(RC_GRID * n - 1e-9).astype(int), 1, n)
    return risk[k - 1].round(6).tolist()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"


