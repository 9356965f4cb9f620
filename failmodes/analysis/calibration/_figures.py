"""Figures of the calibration analysis (matplotlib, object API: no pyplot global state).

Each function draws one PNG and returns ``(path, caption)``.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from ..._atomic import save_figure_atomic
from ...store import CLEAN

DPI = 110
RAW, TS = "raw", "T-scaled"
FAMILIES = ("noise", "blur", "weather", "digital")


def _save(fig: Figure, path: Path) -> None:
    save_figure_atomic(fig, path, dpi=DPI, bbox_inches="tight")


def _rows(panels: list[dict]) -> list[str]:
    return ["raw", "ts"] if any(p["ts"] is not None for p in panels) else ["raw"]


def reliability(path: Path, model: str, panels: list[dict], bins_ece) -> tuple[Path, str]:
    """Reliability diagrams: columns = panels (clean, most severe), rows = before/after T.

    Bars = accuracy per confidence bin; the shaded (hatched red) box is the gap to the
    bin's mean confidence; grey numbers = images per bin.
    """
    rows = _rows(panels)
    fig = Figure(figsize=(4.2 * len(panels), 4.0 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), len(panels), squeeze=False)
    for i, kind in enumerate(rows):
        for j, p in enumerate(panels):
            ax = axes[i][j]
            b = p[f"bins_{kind}"]
            if b is None:
                ax.set_axis_off()
                continue
            lo, width = b["edges"][:-1], np.diff(b["edges"])
            has = b["count"] > 0
            acc = np.where(has, b["accuracy"], 0.0)
            conf = np.where(has, b["confidence"], lo + width / 2)
            ax.bar(lo, acc, width=width, align="edge", color="#4c72b0", edgecolor="black",
                   linewidth=0.6, label="accuracy")
            ax.bar(lo[has], (conf - acc)[has], bottom=acc[has], width=width[has], align="edge",
                   color="#dd5555", alpha=0.35, edgecolor="#aa2222", hatch="//", linewidth=0.4,
                   label="gap to confidence")
            ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=1)
            for x, w, c in zip(lo, width, b["count"]):
                if c:
                    ax.text(x + w / 2, 0.02, str(int(c)), rotation=90, ha="center", va="bottom",
                            fontsize=6, color="#333333")
            ece, mce = bins_ece(b)
            n = int(b["count"].sum())
            ax.set_title(f"{p['title']} · {'raw' if kind == 'raw' else TS}\n"
                         f"{'pooled ECE' if p.get('pooled') else 'ECE'} {100 * ece:.1f}%  "
                         f"MCE {100 * mce:.1f}%  acc "
                         f"{100 * float(p['correct'].double().mean()):.1f}%  n={n}", fontsize=9)
            ax.set_xlim(0, 1)
            ax.set_ylim(0, 1)
            ax.set_xlabel("confidence (max probability)")
            ax.set_ylabel("accuracy")
            if i == 0 and j == 0:
                ax.legend(loc="upper left", fontsize=7)
    fig.suptitle(f"Reliability: {model}", fontsize=11)
    _save(fig, path)
    what = " and ".join(p["title"] for p in panels)
    return path, (f"Reliability diagrams of {model} ({what}), before and after temperature "
                  "scaling: bars are accuracy per confidence bin, hatched red boxes the gap to "
                  "the mean confidence, grey numbers the images per bin. A severity panel pools "
                  "every corruption cell of that severity into one set (pooled ECE: over- and "
                  "under-confident corruptions can cancel), unlike the tables' mean of per-cell "
                  "ECEs.")


def confidence_hist(path: Path, model: str, panels: list[dict]) -> tuple[Path, str]:
    """Stacked histograms of max-probability, correct (green) vs wrong (red)."""
    rows = _rows(panels)
    fig = Figure(figsize=(4.2 * len(panels), 3.2 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), len(panels), squeeze=False)
    edges = np.linspace(0, 1, 26)
    for i, kind in enumerate(rows):
        for j, p in enumerate(panels):
            ax = axes[i][j]
            conf = p[kind]
            if conf is None:
                ax.set_axis_off()
                continue
            conf = conf.cpu().numpy()
            ok = p["correct"].cpu().numpy()
            ax.hist([conf[ok], conf[~ok]], bins=edges, stacked=True,
                    color=["#55a868", "#c44e52"], label=["correct", "wrong"])
            ax.axvline(ok.mean(), color="black", linestyle="--", linewidth=1,
                       label=f"accuracy {100 * ok.mean():.1f}%")
            ax.axvline(conf.mean(), color="black", linewidth=1,
                       label=f"mean conf {100 * conf.mean():.1f}%")
            ax.set_title(f"{p['title']} · {'raw' if kind == 'raw' else TS}", fontsize=9)
            ax.set_xlabel("confidence (max probability)")
            ax.set_ylabel("images")
            ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Confidence: {model}", fontsize=11)
    _save(fig, path)
    return path, (f"Confidence histograms of {model}, correct vs wrong predictions, clean vs "
                  "the most severe level, before and after temperature scaling.")


def ece_vs_severity(path: Path, model: str, rows: list[dict], clean: dict | None
                    ) -> tuple[Path, str]:
    """ECE vs severity, one panel per family, one colour per corruption; solid = raw,
    dashed = after T; severity 0 is the clean cell."""
    by: defaultdict[str, defaultdict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        by[r["family"]][r["stressor"]].append(r)
    fams = [f for f in FAMILIES if f in by]
    fig = Figure(figsize=(3.8 * len(fams), 3.6), layout="constrained")
    axes = fig.subplots(1, len(fams), squeeze=False)[0]
    ymax = 0.0
    for ax, fam in zip(axes, fams):
        cmap = _colors(len(by[fam]))
        for color, (name, rs) in zip(cmap, by[fam].items()):
            sev = sorted({float(r["severity"]) for r in rs})
            x = list(sev)
            y, yt = [_mean_at(rs, "ece", s) for s in sev], [_mean_at(rs, "ece_ts", s) for s in sev]
            if clean is not None:
                x, y, yt = [0.0] + x, [clean["ece"]] + y, [clean["ece_ts"]] + yt
            y_pct, yt_pct = 100 * np.asarray(y), 100 * np.asarray(yt)
            ax.plot(x, y_pct, "-o", color=color, markersize=3, label=name)
            if not np.all(np.isnan(yt_pct)):
                ax.plot(x, yt_pct, "--x", color=color, markersize=3)
            ymax = max(ymax, np.nanmax(np.concatenate([y_pct, yt_pct])) if len(y_pct) else 0)
        ax.set_title(fam, fontsize=10)
        ax.set_xlabel("severity (0 = clean)")
        ax.set_ylabel("ECE (%)")
        ax.legend(fontsize=6, loc="upper left")
        ax.grid(alpha=0.3)
    for ax in axes:
        ax.set_ylim(0, max(1.0, ymax * 1.08))
    fig.suptitle(f"ECE vs severity: {model} (solid raw, dashed after temperature scaling)",
                 fontsize=11)
    _save(fig, path)
    return path, (f"Expected calibration error of {model} vs corruption severity, per family "
                  "and corruption; solid lines before, dashed lines after temperature scaling "
                  "(T fitted on clean data).")


def _mean_at(rows: list[dict], key: str, severity: float) -> float:
    vals = [r[key] for r in rows if float(r["severity"]) == severity
            and r[key] is not None and not np.isnan(r[key])]
    return float(np.mean(vals)) if vals else float("nan")


def risk_coverage(path: Path, model: str, grid: np.ndarray, curves: dict) -> tuple[Path, str]:
    """Selective risk vs coverage (max-probability ranking), clean and each pooled severity."""
    kinds = [k for k in ("raw", "ts") if any(k in c for c in curves.values())]
    fig = Figure(figsize=(4.6 * len(kinds), 3.8), layout="constrained")
    axes = fig.subplots(1, len(kinds), squeeze=False)[0]
    colors = dict(zip(curves, ["black"] + _colors(len(curves) - 1)))
    for ax, kind in zip(axes, kinds):
        for name, c in curves.items():
            if kind in c:
                ax.plot(100 * grid, 100 * np.asarray(c[kind]), color=colors[name], label=name)
        ax.set_xlabel("coverage (% of images kept, most confident first)")
        ax.set_ylabel("selective risk (error %)")
        ax.set_title("raw" if kind == "raw" else TS, fontsize=10)
        ax.set_xlim(0, 100)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Risk-coverage: {model} (corruptions pooled per severity)", fontsize=11)
    _save(fig, path)
    return path, (f"Risk-coverage curves of {model}: error rate among the most confident "
                  "images as coverage grows, clean and all corruptions pooled per severity.")


def family_bars(path: Path, families: list[dict]) -> tuple[Path, str]:
    """ECE per family, one bar pair (raw, after T) per model."""
    order = (CLEAN, "noise", "blur", "weather", "digital", "other", "sweep", "corruptions")
    models = list(dict.fromkeys(r["model"] for r in families))
    first: dict[str, str] = {}
    for r in families:  # the primary (first listed) dataset of each model
        first.setdefault(r["model"], r["dataset"])
    fams = [f for f in order if any(r["family"] == f for r in families)]
    fig = Figure(figsize=(max(5.0, 1.3 * len(fams) * max(1, len(models)) ** 0.5), 3.8),
                 layout="constrained")
    ax = fig.subplots()
    width = 0.8 / (2 * len(models))
    colors = _colors(len(models))
    for k, m in enumerate(models):
        rows = {r["family"]: r for r in families if r["model"] == m and r["dataset"] == first[m]}
        for j, kind in enumerate(("ece", "ece_ts")):
            x = np.arange(len(fams)) - 0.4 + width * (2 * k + j + 0.5)
            y = [100 * rows[f][kind] if f in rows and rows[f][kind] is not None else np.nan
                 for f in fams]
            ax.bar(x, y, width, color=colors[k], alpha=1.0 if j == 0 else 0.45,
                   hatch=None if j == 0 else "//", edgecolor="black", linewidth=0.4,
                   label=f"{m} {'raw' if j == 0 else TS}")
    ax.set_xticks(np.arange(len(fams)), fams)
    ax.set_ylabel("ECE (%), mean over cells")
    ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title("Does calibration fitted on clean data survive shift?", fontsize=11)
    _save(fig, path)
    return path, ("ECE per family (mean over the family's cells) before and after temperature "
                  "scaling fitted on clean data, per model.")


def _colors(n: int) -> list:
    from matplotlib import colormaps
    cmap = colormaps["viridis" if n > 6 else "tab10"]
    if n > 6:
        return [cmap(i / max(1, n - 1) * 0.9) for i in range(n)]
    return [cmap(i) for i in range(n)]


__all__ = ["reliability", "confidence_hist", "ece_vs_severity", "risk_coverage", "family_bars"]
