"""Figures of the curves analysis: degradation curves with their fitted regime, and the
drop per corruption family."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...store import stressor_info
from ...stressors.registry import CORRUPTION_FAMILIES
from .._figures import grid_shape, new_figure, save, slug
from ._points import group_points
from .regimes import GRACEFUL_DROP_POINTS, UNDETERMINED

REGIME_COLORS = {"graceful": "tab:green", "linear": "tab:blue",
                 "threshold-collapse": "tab:red", "delayed-onset": "tab:brown",
                 "early-damage-plateau": "tab:orange",
                 UNDETERMINED: "tab:gray"}


def plot_curves(rows: list[dict], fitted: dict, out_dir: Path, model: str, dataset: str) -> dict:
    """A grid of curves for one model: accuracy, mean confidence and mean true-class
    probability (percent) vs severity, the fitted regime shape, the regime in the title."""
    groups = [(k, pts) for k, pts in group_points(rows).items() if k[0] == model and k[1] == dataset]
    nr, nc = grid_shape(len(groups))
    fig = new_figure(3.0 * nc, 2.6 * nr)
    for i, ((m, d, s), pts) in enumerate(groups):
        ax = fig.add_subplot(nr, nc, i + 1)
        x = np.array([p["severity"] for p in pts])
        ax.plot(x, [100 * p["accuracy"] for p in pts], "o-", ms=3, color="k", label="accuracy")
        ax.plot(x, [100 * p["mean_conf"] for p in pts], "--", color="tab:purple",
                label="mean confidence")
        ax.plot(x, [100 * p["mean_p_true"] for p in pts], ":", color="tab:gray",
                label="mean p(true)")
        regime, folded = fitted[(m, d, s)]
        title = s
        if regime is not None:
            color = REGIME_COLORS[regime.label]
            if not folded:
                identity = stressor_info(s).identity
                xs = np.linspace(x.min(), x.max(), 100)
                ax.plot(xs, regime.predict(np.abs(xs - identity)), "-", color=color, lw=2,
                        alpha=0.5)
                if regime.breakpoint is not None and regime.label not in ("graceful",
                                                                          UNDETERMINED):
                    knee = identity + np.sign(x.mean() - identity) * regime.breakpoint
                    ax.axvline(knee, color=color, lw=0.8, ls="--")
            title += f"\n{regime.label}" + (" (|value|)" if folded else "")
            ax.set_title(title, fontsize=9, color=color)
        else:
            ax.set_title(title, fontsize=9)
        ax.set_ylim(0, 102)
        ax.tick_params(labelsize=7)
        if i == 0:
            ax.legend(fontsize=6, loc="lower left")
    fig.suptitle(f"{model} on {dataset}: accuracy / confidence / p(true) in % vs severity "
                 "(clean = 0; thick line = fitted regime shape)", fontsize=10)
    fig.tight_layout()
    return save(fig, out_dir, f"curves_{slug(model)}_{slug(dataset)}.png",
                f"Degradation curves of {model} on {dataset} with regime labels "
                f"(graceful = fitted drop < {GRACEFUL_DROP_POINTS:g} points).")


def plot_family_drops(fam: list[dict], out_dir: Path) -> dict:
    keys = sorted({(r["model"], r["dataset"]) for r in fam})
    fams = [f for f in CORRUPTION_FAMILIES if any(r["family"] == f for r in fam)]
    fig = new_figure(1.6 + 1.4 * len(fams) * max(1, len(keys)) ** 0.5, 3.2)
    ax = fig.add_subplot(1, 1, 1)
    w = 0.8 / max(len(keys), 1)
    for j, key in enumerate(keys):
        vals = [next((r["mean_drop"] for r in fam if (r["model"], r["dataset"]) == key
                      and r["family"] == f), np.nan) for f in fams]
        xs = np.arange(len(fams)) + (j - (len(keys) - 1) / 2) * w
        bars = ax.bar(xs, vals, w, label=f"{key[0]} ({key[1]})")
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(np.arange(len(fams)), fams)
    ax.set_ylabel("mean accuracy drop (points)")
    ax.set_title("Drop per corruption family (mean over corruptions, severities 1–5)",
                 fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return save(fig, out_dir, "family_drops.png",
                "Mean accuracy drop per corruption family, in points vs clean.")
