"""Report-level figures that no single analysis owns: training curves of every model on
one figure, the per-corruption deltas between models, accuracy along each sweep.

Each function writes one PNG and returns its path; nothing is shown on screen.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only; never a window, never a display server
import matplotlib.pyplot as plt  # noqa: E402

from .._atomic import save_figure_atomic  # noqa: E402

# One colour per model, in study order, the same on every report figure.
PALETTE = ["#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777",
           "#4b5563"]
DPI = 110


def model_colors(models: list[str]) -> dict[str, str]:
    return {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(True, alpha=0.25, linewidth=0.6)


def _save(fig, path: Path) -> Path:
    try:
        return save_figure_atomic(fig, path, dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)


def _series(history: list[dict], split: str, what: str) -> tuple[list, list]:
    keys = [f"{split}_{what}"] + ([f"{split}_accuracy"] if what == "acc" else [])
    xs, ys = [], []
    for i, row in enumerate(history):
        v = next((row[k] for k in keys if isinstance(row.get(k), (int, float))), None)
        if v is not None:
            xs.append(row.get("epoch", i + 1))
            ys.append(100 * v if what == "acc" and v <= 1.0 else v)
    return xs, ys


def training_curves(histories: dict[str, list[dict]], path: Path) -> Path | None:
    """Loss and accuracy (%) vs epoch for every model: train dashed, test solid.

    ``histories``: model -> per-epoch dicts with ``epoch`` and any of ``train_loss``,
    ``train_acc``, ``test_loss``, ``test_acc`` (accuracy as a fraction or in %).
    Returns None when no history has a plottable series.
    """
    colors = model_colors(list(histories))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    drawn = False
    for model, hist in histories.items():
        for ax, what in zip(axes, ("loss", "acc")):
            for split, ls in (("train", "--"), ("test", "-"), ("val", ":")):
                xs, ys = _series(hist, split, what)
                if xs:
                    drawn = True
                    ax.plot(xs, ys, ls, color=colors[model], marker="o", markersize=3,
                            linewidth=1.5, label=f"{model} ({split})")
    if not drawn:
        plt.close(fig)
        return None
    axes[0].set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    axes[1].set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    for ax in axes:
        _style(ax)
    axes[1].legend(fontsize=7, frameon=False, loc="lower right")
    return _save(fig, path)


def comparison_bars(deltas: dict[str, list[dict]], baseline: str, path: Path,
                    colors: dict[str, str] | None = None) -> Path | None:
    """Horizontal bars: accuracy delta (points) of each model vs ``baseline`` per corruption,
    whiskers the row's interval at its Holm step level (``ci_holm_low/high``: the flagging
    sign-flip test inverted, so it excludes 0 exactly where the table flags the row), flagged
    rows hatched; corruptions top to bottom in registry
    order."""
    models = [m for m, rows in deltas.items() if rows]
    if not models:
        return None
    colors = colors or model_colors([baseline] + models)
    stressors = []
    for m in models:
        for r in deltas[m]:
            if r["stressor"] not in stressors:
                stressors.append(r["stressor"])
    n, k = len(stressors), len(models)
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.32 * n * max(1, k * 0.6)))
    h = 0.8 / k
    for j, m in enumerate(models):
        by = {r["stressor"]: r for r in deltas[m]}
        ys = [i + (j - (k - 1) / 2) * h for i in range(n)]
        vals = [by[s]["delta"] if s in by else 0.0 for s in stressors]
        errs = np.array([[by[s]["delta"] - by[s]["ci_holm_low"],
                          by[s]["ci_holm_high"] - by[s]["delta"]] if s in by else [0.0, 0.0]
                         for s in stressors]).T.reshape(2, -1)
        bars = ax.barh(ys, vals, height=h * 0.9, color=colors.get(m, "#888"), xerr=errs,
                       error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "#333"}, label=m)
        for bar, s in zip(bars, stressors):
            if s in by and by[s].get("significant"):
                bar.set_hatch("///")
    ax.axvline(0, color="#111", linewidth=0.8)
    ax.set_yticks(range(n), [s.replace("_", " ") for s in stressors], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel(f"accuracy minus {baseline} (points, mean over severities)\nwhiskers: 95 % "
                  "after Holm across corruptions (the paired test inverted at each row's step "
                  "level); hatched: flagged")
    _style(ax)
    ax.legend(fontsize=8, frameon=False, loc="best")
    return _save(fig, path)


def sweep_curves(acc_rows: list[dict], sweeps: list[str], models: list[str], path: Path,
                 units: dict[str, str] | None = None) -> Path | None:
    """Accuracy (%) vs the sweep's natural value, one panel per sweep, one line per model;
    the clean accuracy is the dotted line of the same colour."""
    if not sweeps:
        return None
    colors = model_colors(models)
    fig, axes = plt.subplots(1, len(sweeps), figsize=(4.6 * len(sweeps), 3.4), squeeze=False)
    for ax, sw in zip(axes[0], sweeps):
        for m in models:
            pts = sorted((r["severity"], 100 * r["accuracy"]) for r in acc_rows
                         if r["model"] == m and r["stressor"] == sw)
            if pts:
                ax.plot(*zip(*pts), "-o", color=colors[m], markersize=3, linewidth=1.5, label=m)
            clean = [100 * r["accuracy"] for r in acc_rows
                     if r["model"] == m and r["stressor"] == "clean"]
            if clean:
                ax.axhline(clean[0], color=colors[m], linestyle=":", linewidth=1)
        unit = (units or {}).get(sw, "value")
        ax.set(title=sw.replace("_", " "), xlabel=unit, ylabel="accuracy (%)", ylim=(0, 100))
        _style(ax)
    axes[0][0].legend(fontsize=7, frameon=False)
    return _save(fig, path)
