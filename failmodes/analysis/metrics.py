"""Accuracy, corruption error (CE), mCE and relative mCE from a results store.

Hendrycks & Dietterich (2019), for model f, corruption c, severities s:

- ``CE_c = Σ_s E_{s,c}(f) / Σ_s E_{s,c}(base)``, E = top-1 error; mCE = mean over the
  15 benchmark corruptions (over every corruption present when none of them is);
- relative ``CE_c = Σ_s (E_{s,c}(f) − E_clean(f)) / Σ_s (E_{s,c}(base) − E_clean(base))``;
- mean corruption accuracy (mCA) = mean over the same corruptions of the mean accuracy
  over severities.

The sums run over the severities both models have. Every number here is recomputed
from the store, per (model, dataset); the baseline is a model of the same store.

>>> ce = corruption_error([0.2, 0.4], [0.4, 0.4])   # Σ 0.6 / Σ 0.8
>>> round(ce, 3)
0.75
"""
from __future__ import annotations

import csv
import io
import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from .._atomic import save_figure_atomic, write_text_atomic
from ..errors import InputError
from ..store import CLEAN, ResultsStore, RunFolder, is_official, is_validation
from ..store import stressor_info as _info
from .registry import register_analysis, write_result


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


def _order_key(name: str):
    from ..stressors.registry import CIFAR10C_ORDER
    return (CIFAR10C_ORDER.index(name) if name in CIFAR10C_ORDER else len(CIFAR10C_ORDER), name)


def is_eval_dataset(dataset: str) -> bool:
    """False for the validation split kept for temperature scaling."""
    return not is_validation(dataset)


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


def compute_metrics(store, baseline: str | None = None) -> dict:
    """Every table of the metrics analysis, from an open ResultsStore.

    Returns {"baseline", "cells", "corruptions", "families", "models", "per_class",
    "official"} (lists of row dicts)."""
    models = [m["name"] for m in store.models()]
    if not models:
        raise InputError(f"{store.path} holds no model; run `failmodes evaluate` first")
    baseline = baseline or models[0]
    if baseline not in models:
        raise InputError(f"baseline model {baseline!r} is not in {store.path}; "
                         f"choose from {', '.join(models)}")
    cells = [r for r in cell_table(store) if is_eval_dataset(r["dataset"])]
    # acc[(model, dataset)][stressor][severity] = accuracy; errors are 1 - accuracy
    acc: dict = defaultdict(lambda: defaultdict(dict))
    for r in cells:
        acc[(r["model"], r["dataset"])][r["stressor"]][r["severity"]] = r["accuracy"]

    corr_rows, fam_rows, model_rows = [], [], []
    for (model, dataset), by_s in acc.items():
        base = acc.get((baseline, dataset), {})
        clean_acc = by_s.get(CLEAN, {}).get(0.0, math.nan)
        clean, base_clean = 1.0 - clean_acc, 1.0 - base.get(CLEAN, {}).get(0.0, math.nan)
        per = []
        for stressor in sorted(by_s, key=_order_key):
            info = stressor_info(stressor)
            if info["kind"] != "corruption":
                continue
            sev = sorted(s for s in by_s[stressor] if s != 0)
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
        model_rows.append({
            "model": model, "dataset": dataset, "baseline": baseline,
            "clean_accuracy": clean_acc,
            "corruptions": len(bench),
            "corruption_set": "benchmark" if any(r["benchmark"] for r in per) else "all present",
            "mca": _mean([r["accuracy"] for r in bench]),
            "mce": _mean([r["ce"] for r in bench]),
            "relative_mce": _mean([r["relative_ce"] for r in bench])})
    return {"baseline": baseline, "cells": cells, "corruptions": corr_rows, "families": fam_rows,
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
    counts = defaultdict(int)
    for r in cells:
        if not is_official(r["dataset"]):
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
    from ..data import CORRUPTED_TITLES
    from ..store import OFFICIAL_SUFFIX, parse_dataset_key
    kind = parse_dataset_key(dataset).name.removesuffix(OFFICIAL_SUFFIX)
    return CORRUPTED_TITLES.get(kind, kind)


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


def heatmap(cells: list[dict], model: str, dataset: str, path: Path) -> Path | None:
    """Corruption × severity accuracy of one model, clean accuracy in the title (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in cells if r["model"] == model and r["dataset"] == dataset
            and r["kind"] == "corruption" and r["severity"] != 0]
    if not rows:
        return None
    corrs = sorted({r["stressor"] for r in rows}, key=_order_key)
    sevs = sorted({r["severity"] for r in rows})
    grid = np.full((len(corrs), len(sevs)), np.nan)
    for r in rows:
        grid[corrs.index(r["stressor"]), sevs.index(r["severity"])] = r["accuracy"]
    clean = [r["accuracy"] for r in cells if r["model"] == model and r["dataset"] == dataset
             and r["stressor"] == CLEAN]
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * len(sevs), 1.0 + 0.32 * len(corrs)), dpi=110)
    im = ax.imshow(grid * 100, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(sevs)), [f"{s:g}" for s in sevs])
    ax.set_yticks(range(len(corrs)), corrs)
    ax.set_xlabel("severity")
    if len(sevs) <= 12:
        for i in range(len(corrs)):
            for j in range(len(sevs)):
                if grid[i, j] == grid[i, j]:
                    ax.text(j, i, f"{grid[i, j] * 100:.0f}", ha="center", va="center", fontsize=7,
                            color="white" if grid[i, j] < 0.6 else "black")
    title = f"{model}: accuracy (%)"
    if clean:
        title += f", clean {clean[0] * 100:.1f}"
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    try:
        return save_figure_atomic(fig, path)
    finally:
        plt.close(fig)


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)


@register_analysis("metrics", title="Accuracy, corruption error and mCE", order=10)
def metrics(run_dir, out_dir, *, baseline: str | None = None, figures: bool = True,
            **_other_options) -> dict:
    """Accuracy per cell / corruption / family, CE, mCE, relative mCE and mCA against
    ``baseline`` (default: the store's first model), per-class accuracy, the official
    CIFAR-10-C comparison when present. Writes metrics.json, metrics_cells.csv,
    metrics_corruptions.csv, metrics_families.csv, metrics_models.csv,
    metrics_per_class.csv (+ metrics_official.csv) and one heatmap per model.
    Options meant for other analyses are ignored."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with ResultsStore(RunFolder(run_dir).store, readonly=True) as store:
        t = compute_metrics(store, baseline)
    for name in ("cells", "corruptions", "families", "models", "per_class", "official"):
        _write_csv(out_dir / f"metrics_{name}.csv", t[name])
    figs = []
    if figures:
        for m in t["models"]:
            if is_official(m["dataset"]):
                continue
            p = heatmap(t["cells"], m["model"], m["dataset"],
                        out_dir / "figures" / f"metrics_heatmap_{_safe(m['model'])}_"
                                              f"{_safe(m['dataset'])}.png")
            if p is not None:
                figs.append({"path": str(p.relative_to(out_dir)),
                             "caption": f"{m['model']} on {m['dataset']}: accuracy per "
                                        "corruption and severity"})
    summary = {"baseline": t["baseline"]}
    notes = []
    for m in t["models"]:
        tag = m["model"] if not is_official(m["dataset"]) else \
            f"{m['model']} (official {official_title(m['dataset'])})"
        summary[f"{tag}: clean accuracy"] = m["clean_accuracy"]
        summary[f"{tag}: mCA"] = m["mca"]
        summary[f"{tag}: mCE"] = m["mce"]
        summary[f"{tag}: relative mCE"] = m["relative_mce"]
    worst = {}
    for r in t["corruptions"]:
        if r["model"] not in worst or r["accuracy"] < worst[r["model"]]["accuracy"]:
            if not is_official(r["dataset"]):
                worst[r["model"]] = r
    for m, r in worst.items():
        notes.append(f"{m}: hardest corruption is {r['corruption']} "
                     f"({r['accuracy'] * 100:.1f}% mean accuracy over {r['severities']} severities)")
    if t["official"]:
        d = np.array([r["difference"] for r in t["official"]])
        notes.append(f"on-the-fly vs official {official_title(t['official'][0]['official'])}: "
                     "mean accuracy difference "
                     f"{d.mean() * 100:+.2f} points, largest |{np.abs(d).max() * 100:.2f}| "
                     f"over {len(d)} cells")
    tables = {k: t[k] for k in ("models", "corruptions", "families", "cells", "official")}
    tables["per_class"] = t["per_class"]
    result = {"summary": summary, "figures": figs, "tables": tables, "notes": notes}
    write_result(out_dir, "metrics", result)
    return result
