"""The tables and findings of the calibration analysis, from its per-cell rows: means per
family and per severity, each model's headline row (clean vs shifted, before -> after T),
the plain-language findings, and the table the CLI prints.

"Shifted" is the one meaning used across failmodes: the corruption cells of the model's
primary dataset at integer severities 1–5 (the ``corruptions`` family row); sweeps keep
their own row and fractional severities appear only per severity.
"""
from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import torch

from ...constants import CALIBRATION_BINS
from ...constants import FAMILY_ORDER as BASE_FAMILY_ORDER
from ...store import CLEAN
from ...stressors import CORRUPTION_FAMILIES
from ..result import AnalysisResult
from ._core import ece_interval, ece_noise_floor, mean_cells_ece_floor, mean_cells_ece_interval

FAMILY_ORDER = (CLEAN, *BASE_FAMILY_ORDER, "other", "corruptions")
# "Calibration survives shift" when the mean shifted ECE after T stays within this factor
# of the clean ECE after T plus this slack (fraction): a stated, crude criterion.
SURVIVES_FACTOR, SURVIVES_SLACK = 1.5, 0.01


def _benchmark_level(severity) -> bool:
    return float(severity) in (1.0, 2.0, 3.0, 4.0, 5.0)


def mean_rows(rows: list[dict], **key) -> dict:
    out = dict(key)
    out["n_cells"] = len(rows)
    out["n"] = int(sum(r["n"] for r in rows))
    metrics = [k for k in rows[0] if k not in ("model", "dataset", "stressor", "family",
                                                "severity", "seed", "n")]
    for k in metrics:
        vals = [r[k] for r in rows if r[k] is not None and not math.isnan(r[k])]
        out[k] = float(np.mean(vals)) if vals else float("nan")
    return out


def family_rows(rep) -> list[dict]:
    out = []
    for ds in dict.fromkeys(r["dataset"] for r in rep.rows):
        rows = [r for r in rep.rows if r["dataset"] == ds]
        groups = defaultdict(list)
        for r in rows:
            groups[r["family"]].append(r)
            if r["family"] in CORRUPTION_FAMILIES and _benchmark_level(r["severity"]):
                groups["corruptions"].append(r)
        for fam in FAMILY_ORDER:
            if groups.get(fam):
                out.append(mean_rows(groups[fam], model=rep.model, dataset=ds, family=fam))
    return out


def severity_rows(rep) -> list[dict]:
    rows = [r for r in rep.rows if r["dataset"] == rep.dataset]
    groups = defaultdict(list)
    for r in rows:
        if r["family"] in CORRUPTION_FAMILIES:
            groups[float(r["severity"])].append(r)
    out = [mean_rows([r for r in rows if r["family"] == CLEAN], model=rep.model,
                      dataset=rep.dataset, severity=0.0, level="clean")] \
        if any(r["family"] == CLEAN for r in rows) else []
    for s in sorted(groups):
        # Each metric is the mean of the level's per-cell values (ECE: mean of per-cell
        # ECEs, not the pooled ECE of the reliability diagram).
        out.append(mean_rows(groups[s], model=rep.model, dataset=rep.dataset, severity=s,
                              level="mean of corruption cells"))
    return out




def _pick(fam: list[dict], family: str, dataset: str) -> dict | None:
    return next((r for r in fam if r["family"] == family and r["dataset"] == dataset), None)


def model_row(rep, fam: list[dict], n_bins: int = CALIBRATION_BINS) -> dict:
    """The headline numbers of one model: clean and shifted (mean over the corruption cells
    of the primary dataset), before and after T (``_ts``); the clean ECE with its 95 %
    bootstrap interval (``ece_clean_ci_low/high``) and the noise floor of a perfectly
    calibrated model with the same confidences (``ece_clean_floor``, ``_floor_q95``); the
    same for the shifted mean of cells (``ece_shifted_ci_low/high``: images resampled paired
    across the cells; ``ece_shifted_floor``, ``_floor_q95``: each cell's own confidences,
    the mean over the cells of each simulated draw)."""
    out = {"model": rep.model, "dataset": rep.dataset,
           "temperature": rep.fit.temperature if rep.fit else None}
    clean, shifted = _pick(fam, CLEAN, rep.dataset), _pick(fam, "corruptions", rep.dataset)
    for scope, row in (("clean", clean), ("shifted", shifted)):
        if row is None:
            continue
        out[f"accuracy_{scope}"] = row["accuracy"]
        for k in ("ece", "nll", "brier_sum", "dangerous_rate", "auroc_msp"):
            out[f"{k}_{scope}"] = row[k]
            out[f"{k}_{scope}_ts"] = row[f"{k}_ts"]
    pool = rep.pools.get(CLEAN)
    if pool:
        correct = torch.cat(pool["correct"])
        for suffix, kind in (("", "raw"), ("_ts", "ts")):
            if pool[kind]:
                conf = torch.cat(pool[kind])
                lo, hi = ece_interval(conf, correct, n_bins)
                floor = ece_noise_floor(conf, n_bins)
                out[f"ece_clean{suffix}_ci_low"], out[f"ece_clean{suffix}_ci_high"] = lo, hi
                out[f"ece_clean{suffix}_floor"] = floor["mean"]
                out[f"ece_clean{suffix}_floor_q95"] = floor["q95"]
        out["n_clean"] = int(correct.numel())
    if rep.shifted:
        for suffix, j in (("", 1), ("_ts", 2)):
            if all(c[j] is not None for c in rep.shifted):
                cells = [(c[0], c[j], c[3]) for c in rep.shifted]
                lo, hi = mean_cells_ece_interval(cells, n_bins)
                floor = mean_cells_ece_floor([c[1] for c in cells], n_bins)
                out[f"ece_shifted{suffix}_ci_low"], out[f"ece_shifted{suffix}_ci_high"] = lo, hi
                out[f"ece_shifted{suffix}_floor"] = floor["mean"]
                out[f"ece_shifted{suffix}_floor_q95"] = floor["q95"]
        out["n_shifted_cells"] = len(rep.shifted)
        out["n_shifted_images"] = int(len(np.unique(np.concatenate(
            [np.asarray(c[0]) for c in rep.shifted]))))
    return out


def floor_findings(row: dict) -> list[str]:
    """The clean ECE, and the shifted mean of cells, beside its interval and the floor a
    perfectly calibrated model shows at this n, before and after T: below the floor, and
    differences smaller than it, are sampling noise."""
    out = []
    if "ece_clean_floor" in row:
        out.append(f"{row['model']}: clean ECE on {row['n_clean']} images "
                   + "; ".join(_floor_parts(row, "clean", "these confidences"))
                   + ". ECE differences smaller than the floor are sampling noise.")
    if "ece_shifted_floor" in row:
        out.append(f"{row['model']}: shifted ECE, mean of {row['n_shifted_cells']} corruption "
                   f"cells of {row['n_shifted_images']} images "
                   + "; ".join(_floor_parts(row, "shifted", "each cell's confidences"))
                   + " (interval: images resampled, the same ones in every cell).")
    return out


def _floor_parts(row: dict, scope: str, whose: str) -> list[str]:
    parts = []
    for suffix, when in (("", "before T"), ("_ts", "after T")):
        key = f"ece_{scope}{suffix}"
        if f"{key}_floor" in row:
            e, f = row[key], row[f"{key}_floor_q95"]
            parts.append(f"{pct(e)} {when} (95 % CI {pct(row[f'{key}_ci_low'])}–"
                         f"{pct(row[f'{key}_ci_high'])}; a perfectly calibrated model with "
                         f"{whose} shows {pct(row[f'{key}_floor'])}, up to {pct(f)}: "
                         + ("indistinguishable from perfect calibration)" if e <= f
                            else "above that floor)"))
    return parts


def pct(x) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}%"


def model_findings(rep, fam: list[dict], confidence_threshold: float) -> list[str]:
    clean, shifted = _pick(fam, CLEAN, rep.dataset), _pick(fam, "corruptions", rep.dataset)
    if rep.fit is None or clean is None:
        return []
    m, t = rep.model, rep.fit.temperature
    kind = "over" if t > 1 else "under"
    s = (f"{m}: T = {t:.2f} ({kind}confident on clean data; fitted on {rep.fitted_on}) takes "
         f"clean ECE {pct(clean['ece'])} -> {pct(clean['ece_ts'])}")
    if shifted is None:
        return [s + "."]
    s += (f"; under shift (mean of {shifted['n_cells']} corruption cells) ECE "
          f"{pct(shifted['ece'])} -> {pct(shifted['ece_ts'])}")
    fams = [r for r in fam if r["family"] in CORRUPTION_FAMILIES
            and r["dataset"] == clean["dataset"]]
    if fams:
        worst = max(fams, key=lambda r: r["ece_ts"] if not math.isnan(r["ece_ts"]) else -1)
        s += f"; worst family after T: {worst['family']} ({pct(worst['ece_ts'])})"
    kept = shifted["ece_ts"] <= SURVIVES_FACTOR * clean["ece_ts"] + SURVIVES_SLACK
    s += (". Calibration fitted on clean data " + ("survives" if kept else "does NOT survive")
          + f" the shift (criterion: shifted ECE after T <= {SURVIVES_FACTOR:g} x clean + "
          f"{100 * SURVIVES_SLACK:g} points).")
    d = (f"{m}: dangerous failures (wrong with confidence > {confidence_threshold:g}) are "
         f"{pct(clean['dangerous_rate'])} of clean images and {pct(shifted['dangerous_rate'])} "
         f"under shift ({pct(clean['dangerous_rate_ts'])} / {pct(shifted['dangerous_rate_ts'])} "
         f"after T); max-probability detects errors with AUROC {clean['auroc_msp']:.3f} clean, "
         f"{shifted['auroc_msp']:.3f} shifted.")
    return [s, d]


def shift_table(result: AnalysisResult) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the clean-vs-shifted table, before -> after T, for printing."""
    header = ["model", "dataset", "family", "cells", "acc", "ECE", "adaECE", "NLL",
              "Brier (sum over classes, 0-2)",
              f"wrong&conf>{result.params['confidence_threshold']:g}", "AUROC(msp)"]
    rows = []
    temps = result.data.get("temperatures", {})
    for r in result.tables["families"]:
        def pair(k, as_pct=True, r=r):
            f = pct if as_pct else (lambda x: "n/a" if x is None or math.isnan(x) else f"{x:.3f}")
            return f"{f(r[k])} -> {f(r.get(k + '_ts'))}"
        t = temps.get(r["model"], {}).get("temperature")
        model = f"{r['model']} (T={t:.2f})" if t else r["model"]
        rows.append([model, r["dataset"], r["family"], str(r["n_cells"]), pct(r["accuracy"]),
                     pair("ece"), pair("ece_adaptive"), pair("nll", False),
                     pair("brier_sum", False),
                     pair("dangerous_rate"), pair("auroc_msp", False)])
    return header, rows
