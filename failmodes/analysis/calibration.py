"""Calibration and uncertainty under shift: can a user trust the confidence when the input
shifts?

For every model in a run's store this analysis

1. fits a temperature T on the clean validation cell (dataset key ``<name>:train-val``,
   optionally ``@<n>``, stressor ``clean``) by minimising the NLL; without one it fits on a
   seeded random half of the clean test cell and reports every cell on the other half
   only (and says so loudly in the notes);
2. stores T in ``out_dir/calibration.json`` and in the store's ``temperatures`` table
   (read it back with ``read_temperatures``; a read-only store is left as it is);
3. scores every done cell before and after T: ECE (equal-width bins, top-label), adaptive
   ECE (equal-mass), MCE, NLL, Brier, the dangerous-failure rate (wrong with confidence
   > 0.9), AUROC / AUPR of max-probability, entropy and margin as error detectors
   (errors are positives), accuracy at 80 % / 90 % coverage and AURC;
4. averages the cells per family (noise, blur, weather, digital, sweep) and per severity,
   and draws reliability diagrams (clean vs the most severe level), confidence
   histograms, ECE vs severity per corruption and risk-coverage curves.

Table rows are wide: a metric ``m`` before scaling and ``m_ts`` after it. All rates are
fractions in [0, 1]; NLL in nats.

>>> result = calibrate_run("runs/quick", "runs/quick/analysis", n_bins=15)  # doctest: +SKIP
>>> result["tables"]["temperatures"][0]["temperature"]  # doctest: +SKIP
1.71
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..store import (Cell, ResultsStore, RunFolder, StoreError, is_official, is_validation,
                     store_writable, stressor_family)
from ..stressors import CORRUPTION_FAMILIES
from ._calibration_core import (DANGEROUS_CONF, CalibrationInputError, Scores,
                                TemperatureFit, bins_ece, cell_metrics, fit_temperature,
                                reliability_bins, risk_coverage, scores_from_logits,
                                scores_from_rows)
from .registry import register_analysis, write_result

__all__ = ["CalibrationInputError", "calibrate_run", "read_temperatures", "save_temperature",
           "shift_table"]

# The seeded split of the clean test cell used when no validation cell exists.
FALLBACK_SPLIT_SEED = 0
FAMILY_ORDER = ("clean", "noise", "blur", "weather", "digital", "other", "sweep", "corruptions")
# Metrics that temperature scaling can change; accuracy and n cannot.
SCALED = ("mean_conf", "ece", "ece_adaptive", "mce", "nll", "brier", "dangerous_rate",
          "dangerous_share", "auroc_msp", "aupr_msp", "auroc_entropy", "aupr_entropy",
          "auroc_margin", "aupr_margin", "acc_at_cov80", "acc_at_cov90", "aurc")
# "Calibration survives shift" when the mean shifted ECE after T stays within this factor
# of the clean ECE after T plus this slack (fraction): a stated, crude criterion.
SURVIVES_FACTOR, SURVIVES_SLACK = 1.5, 0.01
# Coverage grid (fraction kept) at which risk-coverage curves are saved to JSON.
RC_GRID = np.linspace(0.01, 1.0, 100)

# ============================================================== the store's temperatures
def save_temperature(store: ResultsStore, model: str, fit: TemperatureFit | None,
                     fitted_on: str = "") -> None:
    """Record (or with ``fit=None`` remove) the temperature of ``model`` in the store."""
    if fit is None:
        store.save_temperature(model, None)
    else:
        store.save_temperature(model, fit.temperature, fitted_on, fit.nll_before, fit.nll_after)


def read_temperatures(store: ResultsStore | str | Path) -> dict[str, dict]:
    """``{model name: {temperature, fitted_on, nll_before, nll_after}}``; {} when never fitted.

    >>> read_temperatures("runs/quick/results.sqlite")["r18"]["temperature"]  # doctest: +SKIP
    1.71
    """
    if isinstance(store, ResultsStore):
        return store.temperatures()
    with ResultsStore(store, readonly=True) as st:
        return st.temperatures()


# ============================================================== the analysis
@register_analysis("calibration", title="Calibration and uncertainty under shift", order=40)
def calibrate_run(run_dir: str | Path, out_dir: str | Path | None = None, *, n_bins: int = 15,
                  dangerous_conf: float = DANGEROUS_CONF) -> dict:
    """Run the calibration analysis on ``run_dir/results.sqlite``; write
    ``out_dir/calibration.json`` and ``out_dir/figures/calibration_*.png``.

    ``out_dir`` defaults to ``run_dir/analysis``. Returns the analysis dict (summary,
    figures, tables: models / cells / families / severities / temperatures, notes, plus
    ``temperatures``, ``reliability`` and ``risk_coverage`` raw data).
    """
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else RunFolder(run_dir).analysis
    if isinstance(n_bins, bool) or not isinstance(n_bins, int) or n_bins < 2:
        raise CalibrationInputError(f"--bins must be an integer >= 2, got {n_bins!r}")
    if not 0.0 < dangerous_conf < 1.0:
        raise CalibrationInputError(f"dangerous_conf must lie in (0, 1), got {dangerous_conf!r}")
    path = RunFolder(run_dir).store
    if not path.is_file():
        raise StoreError(f"no results store at {path}; run `failmodes evaluate --out {run_dir}` "
                         "first")
    # On read-only media the analysis still runs; T is then only in calibration.json.
    store = ResultsStore(path, readonly=not store_writable(path))
    try:
        models = [m["name"] for m in store.models()]
        reports = [_calibrate_model(store, m, n_bins, dangerous_conf) for m in models]
        failed = store.cells(status="failed")
    finally:
        store.close()
    reports = [r for r in reports if r is not None]
    result = _assemble(reports, out_dir, n_bins, dangerous_conf, models)
    if failed:
        result["notes"].append(f"{len(failed)} cell(s) failed during evaluation and are left "
                               "out (see the store's cells.error).")
    if store.readonly:
        result["notes"].append(f"{path} is read-only: the temperatures are saved in "
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
    notes: list = field(default_factory=list)


def _calibrate_model(store: ResultsStore, model: str, n_bins: int,
                     dangerous_conf: float) -> _ModelReport | None:
    cells = store.cells(model=model)
    val = [c for c in cells if is_validation(c.dataset) and c.stressor == "clean"]
    test = [c for c in cells if not is_validation(c.dataset)]
    if not test:
        return None
    dataset = _primary_dataset(test)
    clean = [c for c in test if c.stressor == "clean" and c.dataset == dataset]
    fit, fitted_on, keep_idx, notes = _fit_for_model(store, model, val, clean)
    if not store.readonly:
        save_temperature(store, model, fit, fitted_on)
    rep = _ModelReport(model, dataset, fit, fitted_on, notes=notes)
    ignored = [c for c in cells if is_validation(c.dataset) and c.stressor != "clean"]
    if ignored:
        rep.notes.append(f"{model}: {len(ignored)} shifted cell(s) on the validation split are "
                         "not reported (validation is only used to fit T).")
    no_logits = 0
    for cell in sorted(test, key=lambda c: (c.dataset != dataset, c.stressor != "clean")):
        raw, ts = _cell_scores(store, cell, fit, keep_idx)
        no_logits += raw.sq_norm is None
        row = _cell_row(model, cell, raw, ts, n_bins, dangerous_conf)
        rep.rows.append(row)
        if cell.dataset == dataset:
            _pool(rep.pools, _pool_label(row), raw, ts)
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
    has_clean = {c.dataset for c in test if c.stressor == "clean"}
    main = [d for d in counts if d in has_clean and not is_official(d)]
    return max(main or counts, key=lambda d: counts[d])


def _fit_for_model(store, model, val: list[Cell], clean: list[Cell]):
    """(fit or None, fitted_on, dataset indices to report on or None, notes)."""
    notes = []
    if val:
        rows = store.predictions(val[0], logits=True)
        if rows["logits"] is not None:
            fit = fit_temperature(torch.from_numpy(rows["logits"]), torch.from_numpy(rows["label"]))
            return fit, f"{val[0].dataset} clean (n={fit.n})", None, notes + _bound_note(model, fit)
        notes.append(f"{model}: the validation cell has no stored logits, so T is fitted on "
                     "half of the clean test cell instead.")
    if not clean:
        notes.append(f"NO TEMPERATURE for {model}: no clean validation or clean test cell "
                     "(evaluate with the clean cell); after-T columns are blank.")
        return None, "", None, notes
    rows = store.predictions(clean[0], logits=True)
    if rows["logits"] is None:
        notes.append(f"NO TEMPERATURE for {model}: the clean cell has no stored logits; "
                     "after-T columns are blank.")
        return None, "", None, notes
    n = len(rows["idx"])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(FALLBACK_SPLIT_SEED))
    fit_pos, rep_pos = perm[: n // 2], perm[n // 2:]
    if len(fit_pos) == 0:
        notes.append(f"NO TEMPERATURE for {model}: the clean cell has {n} image(s), too few "
                     "to split.")
        return None, "", None, notes
    logits = torch.from_numpy(rows["logits"])[fit_pos]
    fit = fit_temperature(logits, torch.from_numpy(rows["label"])[fit_pos])
    keep = np.sort(rows["idx"][rep_pos.numpy()])
    fitted_on = (f"random half of {clean[0].dataset} clean (n={fit.n}, seed "
                 f"{FALLBACK_SPLIT_SEED}); all cells reported on the other {len(keep)} images")
    notes.append(f"WARNING {model}: no clean validation cell (dataset '*:train-val'), so T was "
                 f"fitted on a random half of the clean test cell ({fit.n} images) and EVERY "
                 f"cell is reported on the other half only ({len(keep)} images). Evaluate with "
                 "the validation split for a proper held-out fit.")
    return fit, fitted_on, keep, notes + _bound_note(model, fit)


def _bound_note(model: str, fit: TemperatureFit) -> list[str]:
    if not fit.at_bound:
        return []
    return [f"{model}: the fitted temperature {fit.temperature:.3g} sits at the search bound; "
            "the fit data cannot pin T down (e.g. no errors at all)."]


def _cell_scores(store, cell: Cell, fit, keep_idx) -> tuple[Scores, Scores | None]:
    rows = store.predictions(cell, logits=True)
    where = f"cell {cell.stressor}@{cell.severity:g} ({cell.dataset}, model {cell.model})"
    mask = None if keep_idx is None else np.isin(rows["idx"], keep_idx)
    if rows["logits"] is None:
        raw = scores_from_rows(rows, len(store.class_names(cell.model)))
        return (raw if mask is None else raw.subset(torch.from_numpy(mask))), None
    logits, labels = torch.from_numpy(rows["logits"]), torch.from_numpy(rows["label"])
    if mask is not None:
        logits, labels = logits[torch.from_numpy(mask)], labels[torch.from_numpy(mask)]
    raw = scores_from_logits(logits, labels, where=where)
    ts = scores_from_logits(logits, labels, fit.temperature, where) if fit else None
    return raw, ts


def _cell_row(model, cell: Cell, raw: Scores, ts: Scores | None, n_bins, dangerous_conf) -> dict:
    m = cell_metrics(raw, n_bins, dangerous_conf)
    mt = cell_metrics(ts, n_bins, dangerous_conf) if ts is not None else {}
    row = {"model": model, "dataset": cell.dataset, "stressor": cell.stressor,
           "family": stressor_family(cell.stressor), "severity": cell.severity, "seed": cell.seed}
    for k, v in m.items():
        row[k] = v
        if k in SCALED:
            row[f"{k}_ts"] = mt.get(k, float("nan"))
    return row


def _pool_label(row: dict):
    """Pools for figures: "clean", or the severity of a corruption cell; sweeps (natural
    units) and stressors the registry does not know are not pooled."""
    if row["family"] == "clean":
        return "clean"
    return float(row["severity"]) if row["family"] in CORRUPTION_FAMILIES else None


def _pool(pools: dict, label, raw: Scores, ts: Scores | None) -> None:
    if label is None:
        return
    p = pools.setdefault(label, {"raw": [], "ts": [], "correct": []})
    p["raw"].append(raw.conf)
    p["correct"].append(raw.correct)
    if ts is not None:
        p["ts"].append(ts.conf)


# ============================================================== tables and the result
def _mean_rows(rows: list[dict], **key) -> dict:
    out = dict(key)
    out["n_cells"] = len(rows)
    out["n"] = int(sum(r["n"] for r in rows))
    metrics = [k for k in rows[0] if k not in ("model", "dataset", "stressor", "family",
                                                "severity", "seed", "n")]
    for k in metrics:
        vals = [r[k] for r in rows if r[k] is not None and not math.isnan(r[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


def _family_rows(rep: _ModelReport) -> list[dict]:
    out = []
    for ds in dict.fromkeys(r["dataset"] for r in rep.rows):
        rows = [r for r in rep.rows if r["dataset"] == ds]
        groups = defaultdict(list)
        for r in rows:
            groups[r["family"]].append(r)
            if r["family"] in CORRUPTION_FAMILIES:
                groups["corruptions"].append(r)
        for fam in FAMILY_ORDER:
            if groups.get(fam):
                out.append(_mean_rows(groups[fam], model=rep.model, dataset=ds, family=fam))
    return out


def _severity_rows(rep: _ModelReport) -> list[dict]:
    rows = [r for r in rep.rows if r["dataset"] == rep.dataset]
    groups = defaultdict(list)
    for r in rows:
        if r["family"] in CORRUPTION_FAMILIES:
            groups[float(r["severity"])].append(r)
    out = [_mean_rows([r for r in rows if r["family"] == "clean"], model=rep.model,
                      dataset=rep.dataset, severity=0.0, level="clean")] \
        if any(r["family"] == "clean" for r in rows) else []
    for s in sorted(groups):
        out.append(_mean_rows(groups[s], model=rep.model, dataset=rep.dataset, severity=s,
                              level="corruptions"))
    return out


def _cat(ts: list) -> torch.Tensor | None:
    return torch.cat(ts) if ts else None


def _assemble(reports: list[_ModelReport], out_dir: Path, n_bins: int, dangerous_conf: float,
              models: list[str]) -> dict:
    from . import _calibration_figures as figs
    notes, figures, temps = [], [], {}
    cells, families, severities, model_rows = [], [], [], []
    reliability, rc = {}, {}
    summary: dict = {}
    fig_dir = Path(out_dir) / "figures"
    for rep in reports:
        notes += rep.notes
        cells += rep.rows
        fam = _family_rows(rep)
        families += fam
        severities += _severity_rows(rep)
        f = rep.fit
        temps[rep.model] = ({"temperature": f.temperature, "fitted_on": rep.fitted_on,
                             "n_fit": f.n, "nll_before": f.nll_before, "nll_after": f.nll_after,
                             "at_bound": f.at_bound} if f else
                            {"temperature": None, "fitted_on": "not fitted"})
        head = _model_row(rep, fam)
        model_rows.append(head)
        summary.update({f"{rep.model}/{k}": v for k, v in head.items()
                        if k not in ("model", "dataset")})
        notes += _model_findings(rep, fam, dangerous_conf)
        rel, curves, figs_m = _model_views(rep, n_bins, fig_dir)
        reliability[rep.model] = rel
        rc[rep.model] = {"coverage": RC_GRID.round(4).tolist(), "curves": curves}
        figures += figs_m
    if families:
        figures.append(figs.family_bars(fig_dir / "calibration_ece_by_family.png", families))
    figures = [{"path": str(p.relative_to(out_dir)), "caption": c} for p, c in figures]
    missing = [m for m in models if m not in temps]
    if missing:
        notes.append(f"no test cells for model(s) {', '.join(missing)}; nothing to report.")
    if not reports:
        notes.append("the store has no test cells; evaluate a model first.")
    return {"summary": summary, "figures": figures,
            "tables": {"models": model_rows, "cells": cells, "families": families,
                       "severities": severities,
                       "temperatures": [{"model": m, **t} for m, t in temps.items()]},
            "notes": notes, "n_bins": n_bins, "dangerous_conf": dangerous_conf,
            "temperatures": temps, "reliability": reliability, "risk_coverage": rc}


def _model_views(rep: _ModelReport, n_bins: int, fig_dir: Path) -> tuple[list, dict, list]:
    """Pooled views of one model: reliability bins (clean, most severe level), risk-coverage
    curves per severity, and its figures as (path, caption)."""
    from . import _calibration_figures as figs
    panels = []
    for label, title in (("clean", "clean"), _most_severe(rep)):
        p = rep.pools.get(label)
        if p is None:
            continue
        correct, raw, ts = _cat(p["correct"]), _cat(p["raw"]), _cat(p["ts"])
        panels.append({"title": title, "correct": correct, "raw": raw, "ts": ts,
                       "bins_raw": reliability_bins(raw, correct, n_bins),
                       "bins_ts": reliability_bins(ts, correct, n_bins) if ts is not None
                       else None})
    reliability = [{"title": p["title"], "n": int(p["correct"].numel()),
                    "raw": _bins_json(p["bins_raw"]), "ts": _bins_json(p["bins_ts"])}
                   for p in panels]
    curves = {}
    for label in sorted(rep.pools, key=lambda x: (-1.0 if x == "clean" else x)):
        p = rep.pools[label]
        correct = _cat(p["correct"])
        name = "clean" if label == "clean" else f"severity {label:g}"
        curves[name] = {k: _rc_grid(*risk_coverage(_cat(p[k]), correct))
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
        clean_row = next((r for r in rep.rows if r["family"] == "clean"
                          and r["dataset"] == rep.dataset), None)
        out.append(figs.ece_vs_severity(fig_dir / f"calibration_ece_severity_{slug}.png",
                                        rep.model, by_corr, clean_row))
    if curves:
        out.append(figs.risk_coverage(fig_dir / f"calibration_risk_coverage_{slug}.png",
                                      rep.model, RC_GRID, curves))
    return reliability, curves, out


def _most_severe(rep: _ModelReport) -> tuple:
    sev = [k for k in rep.pools if k != "clean"]
    if not sev:
        return None, ""
    s = max(sev)
    n_cells = sum(1 for r in rep.rows if r["dataset"] == rep.dataset and _pool_label(r) == s)
    return s, f"severity {s:g} (all {n_cells} corruption cells pooled)"


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


def _pick(fam: list[dict], family: str, dataset: str) -> dict | None:
    return next((r for r in fam if r["family"] == family and r["dataset"] == dataset), None)


def _model_row(rep: _ModelReport, fam: list[dict]) -> dict:
    """The headline numbers of one model: clean and shifted (mean over the corruption cells
    of the primary dataset), before and after T (``_ts``)."""
    out = {"model": rep.model, "dataset": rep.dataset,
           "temperature": rep.fit.temperature if rep.fit else None}
    clean, shifted = _pick(fam, "clean", rep.dataset), _pick(fam, "corruptions", rep.dataset)
    for scope, row in (("clean", clean), ("shifted", shifted)):
        if row is None:
            continue
        out[f"accuracy_{scope}"] = row["accuracy"]
        for k in ("ece", "nll", "brier", "dangerous_rate", "auroc_msp"):
            out[f"{k}_{scope}"] = row[k]
            out[f"{k}_{scope}_ts"] = row[f"{k}_ts"]
    return out


def _pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def _model_findings(rep: _ModelReport, fam: list[dict], dangerous_conf: float) -> list[str]:
    clean, shifted = _pick(fam, "clean", rep.dataset), _pick(fam, "corruptions", rep.dataset)
    if rep.fit is None or clean is None:
        return []
    m, t = rep.model, rep.fit.temperature
    kind = "over" if t > 1 else "under"
    s = (f"{m}: T = {t:.2f} ({kind}confident on clean data; fitted on {rep.fitted_on}) takes "
         f"clean ECE {_pct(clean['ece'])} -> {_pct(clean['ece_ts'])}")
    if shifted is None:
        return [s + "."]
    s += (f"; under shift (mean of {shifted['n_cells']} corruption cells) ECE "
          f"{_pct(shifted['ece'])} -> {_pct(shifted['ece_ts'])}")
    fams = [r for r in fam if r["family"] in CORRUPTION_FAMILIES
            and r["dataset"] == clean["dataset"]]
    if fams:
        worst = max(fams, key=lambda r: r["ece_ts"] if not math.isnan(r["ece_ts"]) else -1)
        s += f"; worst family after T: {worst['family']} ({_pct(worst['ece_ts'])})"
    kept = shifted["ece_ts"] <= SURVIVES_FACTOR * clean["ece_ts"] + SURVIVES_SLACK
    s += (". Calibration fitted on clean data " + ("survives" if kept else "does NOT survive")
          + f" the shift (criterion: shifted ECE after T <= {SURVIVES_FACTOR:g} x clean + "
          f"{100 * SURVIVES_SLACK:g} points).")
    d = (f"{m}: dangerous failures (wrong with confidence > {dangerous_conf:g}) are "
         f"{_pct(clean['dangerous_rate'])} of clean images and {_pct(shifted['dangerous_rate'])} "
         f"under shift ({_pct(clean['dangerous_rate_ts'])} / {_pct(shifted['dangerous_rate_ts'])} "
         f"after T); max-probability detects errors with AUROC {clean['auroc_msp']:.3f} clean, "
         f"{shifted['auroc_msp']:.3f} shifted.")
    return [s, d]


def shift_table(result: dict) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the clean-vs-shifted table, before -> after T, for printing."""
    header = ["model", "dataset", "family", "cells", "acc", "ECE", "adaECE", "NLL", "Brier",
              f"wrong&conf>{result.get('dangerous_conf', DANGEROUS_CONF):g}", "AUROC(msp)"]
    rows = []
    temps = result.get("temperatures", {})
    for r in result["tables"]["families"]:
        def pair(k, pct=True):
            f = _pct if pct else (lambda x: "n/a" if x is None or math.isnan(x) else f"{x:.3f}")
            return f"{f(r[k])} -> {f(r.get(k + '_ts'))}"
        t = temps.get(r["model"], {}).get("temperature")
        model = f"{r['model']} (T={t:.2f})" if t else r["model"]
        rows.append([model, r["dataset"], r["family"], str(r["n_cells"]), _pct(r["accuracy"]),
                     pair("ece"), pair("ece_adaptive"), pair("nll", False), pair("brier", False),
                     pair("dangerous_rate"), pair("auroc_msp", False)])
    return header, rows
