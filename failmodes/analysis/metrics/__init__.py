"""Accuracy, CIFAR-10-C error, corruption error (CE), mCE and relative mCE from a store.

Two different numbers are both called "mCE" in the literature; here each has one name:

- **CIFAR-10-C error** (AugMix's "CIFAR-10-C error", RobustBench's corruptions metric):
  100 − mean accuracy (%) over the 15 benchmark corruptions at integer severities 1–5.
  Reported only when all 15 × 5 cells are present; ``mean_corruption_error`` gives the
  same mean over whatever benchmark cells are present.
- **mCE** and **relative mCE** (Hendrycks & Dietterich 2019) are *ratios* against a named
  baseline model (a model of the same store, or supplied reference errors such as
  AlexNet's): ``CE_c = Σ_s E_{s,c}(f) / Σ_s E_{s,c}(base)``, E = top-1 error;
  relative ``CE_c = Σ_s (E_{s,c}(f) − E_clean(f)) / Σ_s (E_{s,c}(base) − E_clean(base))``;
  both averaged over the benchmark corruptions present (over every corruption present
  when none of them is). Nothing is normalised by AlexNet unless its errors are supplied.
- mCA ("mCA, 15 benchmark corruptions" wherever it is printed) = mean over the same
  corruptions of the mean accuracy over severities. Not the report's "mean accuracy, N
  corruptions" (``report.comparison.model_facts``), which averages every corruption cell,
  the 4 extra corruptions included.

Only integer severities 1–5 enter these numbers: fractional and extra severities (a fine
grid, severity 6) stay in the cell tables. The sums run over the severities both models
have. Official CIFAR-10-C cells use the clean cell of the same test images (the main
dataset with the same ``split@n``) for relative CE.

>>> ce = corruption_error([0.2, 0.4], [0.4, 0.4])   # Σ 0.6 / Σ 0.8
>>> round(ce, 3)
0.75
"""
from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..._atomic import write_text_atomic
from ...errors import InputError
from ...store import CLEAN, MAIN, OFFICIAL, ResultsStore, RunFolder, dataset_role, is_official, is_validation
from ...store import stressor_info as _info
from ..curves import clean_cell_for
from ..registry import Headline, register_analysis, write_result
from ..result import AnalysisResult
from ._order import corruption_order

# The severities of the published benchmark: the only ones that enter mCE and its kin.
BENCHMARK_SEVERITIES = (1.0, 2.0, 3.0, 4.0, 5.0)
N_BENCHMARK = 15  # corruptions of CIFAR-10-C / ImageNet-C that define the benchmark


# ----------------------------------------------------------------------------- functional core
def corruption_error(errors, base_errors) -> float:
    """Σ errors / Σ base errors over matching severities (NaN when the baseline never errs)."""
    den = float(np.sum(base_errors))
    return float(np.sum(errors)) / den if den > 0 else math.nan


def relative_corruption_error(errors, clean_error: float, base_errors,
                              base_clean_error: float) -> float:
    """Σ (E_s − E_clean) / Σ (E^base_s − E^base_clean) (NaN when the denominator is ≤ 0)."""
    num = float(np.sum(np.asarray(errors) - clean_error))
    den = float(np.sum(np.asarray(base_errors) - base_clean_error))
    return num / den if den > 0 else math.nan


def stressor_info(name: str) -> dict:
    """Family, kind (clean | corruption | sweep | other) and benchmark flag of a stressor
    (``failmodes.store.stressor_info``: unknown names are family and kind ``other``)."""
    info = _info(name)
    return {"family": info.family, "kind": info.kind, "benchmark": info.benchmark}


def is_eval_dataset(dataset: str) -> bool:
    """False for the validation split kept for temperature scaling."""
    return not is_validation(dataset)


def load_reference_errors(path) -> dict:
    """Supplied baseline errors (e.g. AlexNet's on ImageNet-C) from a JSON file
    ``{"name": "AlexNet", "clean": 0.4348, "corruptions": {"fog": [e1, .., e5], ...}}``
    (top-1 errors as fractions, severities 1–5)."""
    import json
    try:
        d = json.loads(Path(path).read_text())
        errs = {c: {float(i + 1): float(e) for i, e in enumerate(v)}
                for c, v in d["corruptions"].items()}
        return {"name": str(d.get("name", Path(path).stem)), "clean": float(d["clean"]),
                "errors": errs}
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise MetricsError(f"reference errors {path}: {e}; expected JSON {{\"name\", "
                           "\"clean\", \"corruptions\": {name: [5 errors]}}") from None


class MetricsError(InputError):
    """A bad baseline or reference-errors file; one line naming it."""


def cell_table(store) -> list[dict]:
    """One row per (model, dataset, stressor, severity): accuracy and error averaged over
    seeds, n, mean confidence, family and kind."""
    acc = defaultdict(list)
    for r in store.accuracy_table():
        acc[(r["model"], r["dataset"], r["stressor"], float(r["severity"]))].append(r)
    rows = []
    for (model, dataset, stressor, sev), rs in acc.items():
        a = float(np.mean([r["accuracy"] for r in rs]))
        rows.append({"model": model, "dataset": dataset, "stressor": stressor, "severity": sev,
                     **stressor_info(stressor), "seeds": len(rs), "n": int(rs[0]["n"]),
                     "accuracy": a, "error": 1.0 - a,
                     "mean_conf": float(np.mean([r["mean_conf"] for r in rs]))})
    return rows


def compute_metrics(store, baseline: str | None = None, reference: dict | None = None) -> dict:
    """Every table of the metrics analysis, from an open ResultsStore.

    ``baseline``: the model mCE is a ratio against (default: the store's first model);
    ``reference``: supplied baseline errors (``load_reference_errors``) used instead.
    Returns {"baseline", "cells", "corruptions", "families", "models", "per_class",
    "official"} (lists of row dicts)."""
    models = [m["name"] for m in store.models()]
    if not models:
        raise MetricsError(f"{store.path} holds no model; run `failmodes evaluate` first")
    baseline = baseline or models[0]
    if reference is None and baseline not in models:
        raise MetricsError(f"baseline model {baseline!r} is not in {store.path}; "
                           f"choose from {', '.join(models)}")
    cells = [r for r in cell_table(store) if is_eval_dataset(r["dataset"])]
    # acc[(model, dataset)][stressor][severity] = accuracy; errors are 1 - accuracy
    acc: dict = defaultdict(lambda: defaultdict(dict))
    for r in cells:
        acc[(r["model"], r["dataset"])][r["stressor"]][r["severity"]] = r["accuracy"]
    clean_of = {key: {"acc": by_s[CLEAN][0.0], "n": 1} for key, by_s in acc.items()
                if 0.0 in by_s.get(CLEAN, {})}

    def clean_error(model: str, dataset: str) -> float:
        c = clean_cell_for(clean_of, model, dataset)
        return 1.0 - c["acc"] if c is not None else math.nan

    corr_rows, fam_rows, model_rows = [], [], []
    for (model, dataset), by_s in acc.items():
        if reference is not None:
            base = {c: dict(e) for c, e in reference["errors"].items()}
            base = {c: {s: 1.0 - e for s, e in es.items()} for c, es in base.items()}
            base_clean = reference["clean"]
        else:
            # Official cells compare with the baseline's official cells of the same split.
            base = acc.get((baseline, dataset), {})
            base_clean = clean_error(baseline, dataset)
        clean = clean_error(model, dataset)
        per = []
        for stressor in sorted(by_s, key=corruption_order):
            info = stressor_info(stressor)
            if info["kind"] != "corruption":
                continue
            sev = [s for s in BENCHMARK_SEVERITIES if s in by_s[stressor]]
            if not sev:
                continue
            mine = by_s[stressor]
            common = [s for s in sev if s in base.get(stressor, {})]
            e = [1.0 - mine[s] for s in common]
            eb = [1.0 - base[stressor][s] for s in common]
            mean_acc = float(np.mean([mine[s] for s in sev]))
            row = {"model": model, "dataset": dataset, "corruption": stressor, **info,
                   "severities": len(sev), "accuracy": mean_acc, "error": 1.0 - mean_acc,
                   "ce": corruption_error(e, eb) if common else math.nan,
                   "relative_ce": (relative_corruption_error(e, clean, eb, base_clean)
                                   if common else math.nan)}
            corr_rows.append(row)
            per.append(row)
        bench = [r for r in per if r["benchmark"]] or per
        fams = defaultdict(list)
        for r in per:
            fams[r["family"]].append(r["accuracy"])
        for fam, accs in fams.items():
            fam_rows.append({"model": model, "dataset": dataset, "family": fam,
                             "corruptions": len(accs), "accuracy": float(np.mean(accs)),
                             "error": 1.0 - float(np.mean(accs))})
        is_bench = any(r["benchmark"] for r in per)
        complete = (is_bench and len(bench) == N_BENCHMARK
                    and all(r["severities"] == len(BENCHMARK_SEVERITIES) for r in bench))
        mca = _mean([r["accuracy"] for r in bench])
        model_rows.append({
            "model": model, "dataset": dataset,
            "baseline": reference["name"] if reference is not None else baseline,
            "clean_accuracy": 1.0 - clean,
            "corruptions": len(bench),
            "corruption_set": "benchmark" if is_bench else "all present",
            "mca": mca,
            "mean_corruption_error": 100.0 * (1.0 - mca) if mca == mca else math.nan,
            "cifar10c_error": 100.0 * (1.0 - mca) if complete else math.nan,
            "mce": _mean([r["ce"] for r in bench]),
            "relative_mce": _mean([r["relative_ce"] for r in bench])})
    return {"baseline": reference["name"] if reference is not None else baseline,
            "cells": cells, "corruptions": corr_rows, "families": fam_rows,
            "models": model_rows, "per_class": per_class_table(store),
            "official": official_comparison(cells)}


def _mean(xs) -> float:
    xs = [x for x in xs if x == x]
    return float(np.mean(xs)) if xs else math.nan


def per_class_table(store) -> list[dict]:
    """Accuracy of every class in every done cell (one SQL pass over the predictions)."""
    return store.per_class_accuracy()


def official_comparison(cells: list[dict]) -> list[dict]:
    """On-the-fly vs official (released CIFAR-10-C, ImageNet-C, ...) accuracy for every
    (model, corruption, severity) present in both (the on-the-fly dataset with the most
    cells of that model)."""
    off = [r for r in cells if is_official(r["dataset"])]
    if not off:
        return []
    counts: defaultdict[tuple[str, str], int] = defaultdict(int)
    for r in cells:
        if dataset_role(r["dataset"]) != OFFICIAL:
            counts[(r["model"], r["dataset"])] += 1
    fly = {}
    for r in cells:
        key = (r["model"], r["dataset"])
        best = max((d for (m, d) in counts if m == r["model"]), key=lambda d: counts[(r["model"], d)],
                   default=None)
        if key[1] == best:
            fly[(r["model"], r["stressor"], r["severity"])] = r
    rows = []
    for r in off:
        f = fly.get((r["model"], r["stressor"], r["severity"]))
        if f is None:
            continue
        rows.append({"model": r["model"], "corruption": r["stressor"], "severity": r["severity"],
                     "dataset": f["dataset"], "official": r["dataset"],
                     "accuracy_on_the_fly": f["accuracy"],
                     "accuracy_official": r["accuracy"],
                     "difference": f["accuracy"] - r["accuracy"], "n_on_the_fly": f["n"],
                     "n_official": r["n"]})
    return rows


def official_title(dataset: str) -> str:
    """``CIFAR-10-C``, ``ImageNet-C``, ... for an official cell's dataset key."""
    from ...data import list_corrupted_specs
    from ...store import OFFICIAL_SUFFIX, parse_dataset_key
    kind = parse_dataset_key(dataset).name.removesuffix(OFFICIAL_SUFFIX)
    return next((s.title for s in list_corrupted_specs() if s.name == kind), kind)


# ----------------------------------------------------------------------------- outputs
def _write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    keys = list(rows[0])
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    write_text_atomic(path, buf.getvalue())


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


@dataclass
class MetricsOptions:
    baseline: str | None = field(default=None, metadata={
        "help": "model the mCE and relative mCE refer to [default: the store's first model]"})
    reference_errors: str | None = field(default=None, metadata={
        "help": "JSON of supplied baseline errors (e.g. AlexNet's on ImageNet-C) instead of "
                "a model of the store"})
    figures: bool = field(default=True, metadata={"help": "draw one heatmap per model"})


def _c10c_missing(row) -> str:
    partial = row.get("mean_corruption_error")
    ok = isinstance(partial, (int, float)) and not isinstance(partial, bool) \
        and math.isfinite(partial)
    return (f"needs all {N_BENCHMARK} benchmark corruptions × 5 severities"
            + (f"; {partial:.1f} % over the cells present" if ok else ""))


INTRO = ("Accuracy for every corruption × severity cell, per model, and the corruption error "
         "(CE) and mCE of Hendrycks & Dietterich (2019) against the baseline.")
HEADLINES = (
    Headline("clean_accuracy", "clean accuracy", "fraction", higher_is_better=True),
    Headline("cifar10c_error", "CIFAR-10-C error", "percent", higher_is_better=False,
             note=f"100 − mean accuracy over the {N_BENCHMARK} benchmark corruptions × "
                  "severities 1–5", explain_missing=_c10c_missing),
    Headline("mce", "mCE", "ratio", higher_is_better=False,
             note="corruption error relative to the baseline's (1 = as robust)"),
)


@register_analysis("metrics", title="Accuracy, CIFAR-10-C error and mCE", order=10,
                   options=MetricsOptions, intro=INTRO, analyze=True, headlines=HEADLINES)
def metrics(run_dir, out_dir, *, baseline: str | None = None, reference_errors: str | None = None,
            figures: bool = True) -> AnalysisResult:
    """Accuracy per cell / corruption / family, CIFAR-10-C error, CE, mCE, relative mCE and
    mCA against ``baseline`` (default: the store's first model) or against supplied
    ``reference_errors`` (a JSON file, see ``load_reference_errors``), per-class accuracy,
    the official CIFAR-10-C comparison when present. Writes metrics.json,
    metrics_{cells,corruptions,families,models,per_class}.csv (+ metrics_official.csv)
    and one heatmap per model."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    reference = load_reference_errors(reference_errors) if reference_errors else None
    with ResultsStore(RunFolder(run_dir).store, readonly=True) as store:
        t = compute_metrics(store, baseline, reference)
        n_classes = {m["name"]: len(m["class_names"]) for m in store.models()}
    for name in ("cells", "corruptions", "families", "models", "per_class", "official"):
        _write_csv(out_dir / f"metrics_{name}.csv", t[name])
    res = AnalysisResult("metrics", params={
        "baseline": t["baseline"], "baseline_kind": "supplied reference errors"
        if reference else "model of this store", "severities": list(BENCHMARK_SEVERITIES),
        "n_benchmark_corruptions": N_BENCHMARK})
    if figures:
        from ._figures import heatmap
        for m in t["models"]:
            if dataset_role(m["dataset"]) == OFFICIAL:
                continue
            p = heatmap(t["cells"], m["model"], m["dataset"],
                        out_dir / "figures" / f"metrics_heatmap_{_safe(m['model'])}_"
                                              f"{_safe(m['dataset'])}.png")
            if p is not None:
                res.add_figure({"path": str(p.relative_to(out_dir)),
                                "caption": f"{m['model']} on {m['dataset']}: accuracy per "
                                           "corruption and severity"}, model=m["model"])
    res.per_model = _per_model(t["models"])
    res.summary = {"baseline": t["baseline"]}
    worst: dict[str, dict] = {}
    for r in t["corruptions"]:
        if r["model"] not in worst or r["accuracy"] < worst[r["model"]]["accuracy"]:
            if dataset_role(r["dataset"]) != OFFICIAL:
                worst[r["model"]] = r
    for m, r in worst.items():
        res.notes.append(f"{m}: hardest corruption is {r['corruption']} "
                         f"({r['accuracy'] * 100:.1f}% mean accuracy over {r['severities']} "
                         "severities)")
    res.notes += _label_notes(t, n_classes, reference)
    if t["official"]:
        d = np.array([r["difference"] for r in t["official"]])
        res.notes.append(f"on-the-fly vs official {official_title(t['official'][0]['official'])}: "
                         "mean accuracy difference "
                         f"{d.mean() * 100:+.2f} points, largest |{np.abs(d).max() * 100:.2f}| "
                         f"over {len(d)} cells")
    res.tables = {k: t[k] for k in ("models", "corruptions", "families", "cells", "official",
                                    "per_class")}
    write_result(out_dir, "metrics", res)
    return res


# per_model keys of the main dataset; official CIFAR-10-C cells get "official_" before them.
MODEL_METRICS = ("clean_accuracy", "mca", "mean_corruption_error", "cifar10c_error", "mce",
                 "relative_mce", "corruptions", "corruption_set", "baseline", "dataset")


def _per_model(rows: list[dict]) -> dict[str, dict]:
    """Per model: its main dataset's numbers (the one with most corruptions) and the official
    CIFAR-10-C ones prefixed ``official_``."""
    out: dict[str, dict] = {}
    main = sorted((r for r in rows if dataset_role(r["dataset"]) == MAIN),
                  key=lambda r: -r["corruptions"])
    for r in main:
        if r["model"] not in out:
            out[r["model"]] = {k: r[k] for k in MODEL_METRICS}
    for r in rows:
        if dataset_role(r["dataset"]) == OFFICIAL:
            d = out.setdefault(r["model"], {})
            d.update({f"official_{k}": r[k] for k in MODEL_METRICS})
    return out


def _label_notes(t: dict, n_classes: dict[str, int], reference: dict | None) -> list[str]:
    notes = []
    for m in t["models"]:
        if dataset_role(m["dataset"]) != MAIN:
            continue
        if m["cifar10c_error"] != m["cifar10c_error"] and m["corruption_set"] == "benchmark":
            notes.append(f"{m['model']}: no CIFAR-10-C error: it needs all {N_BENCHMARK} "
                         f"benchmark corruptions at severities 1–5, the store has "
                         f"{m['corruptions']}; mean corruption error "
                         f"{m['mean_corruption_error']:.1f}% is over those present.")
    big = [m for m, c in n_classes.items() if c >= 1000]
    if big and reference is None:
        notes.append(f"{', '.join(big)}: ImageNet-sized; mCE and relative mCE here are ratios "
                     f"against {t['baseline']}, not the AlexNet-normalised ImageNet-C numbers "
                     "(no AlexNet normalisation is applied; pass reference_errors to supply "
                     "AlexNet's errors).")
    return notes
