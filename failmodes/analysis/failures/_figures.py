"""Figures of the failures analysis: the failure galleries (images re-created by the
run), confusion matrices and per-class accuracy."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...store import CLEAN
from .._figures import grid_shape, new_figure, save, slug


def plot_gallery(out_dir: Path, cases: list[dict], images: list, title: str,
                 filename: str) -> dict:
    """A grid of the cases' images (H×W×3 arrays, in case order) with true, predicted,
    confidence and cell."""
    nr, nc = grid_shape(len(cases), 8)
    fig = new_figure(1.7 * nc, 2.4 * nr)
    for j, (c, img) in enumerate(zip(cases, images)):
        ax = fig.add_subplot(nr, nc, j + 1)
        ax.imshow(img, interpolation="nearest")
        where = ("clean" if c["cell"]["stressor"] == CLEAN
                 else f"{c['cell']['stressor']}@{c['cell']['severity']:g}")
        ax.set_title(f"true {c['true']['name'][:14]}\npred {c['predicted']['name'][:14]}"
                     f" {c['confidence']:.3f}\n{where[:22]}", fontsize=6.5)
        ax.axis("off")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return save(fig, out_dir, filename, title)


def plot_confusions(mats: dict[str, np.ndarray], names: list[str], out_dir: Path,
                    model: str) -> dict:
    groups = list(mats)
    nr, nc = grid_shape(len(groups), 3)
    fig = new_figure(4.2 * nc, 3.9 * nr)
    c = len(names)
    for i, g in enumerate(groups):
        m = mats[g].astype(np.float64)
        rowsum = m.sum(1, keepdims=True)
        frac = np.divide(m, rowsum, out=np.zeros_like(m), where=rowsum > 0)
        ax = fig.add_subplot(nr, nc, i + 1)
        ax.imshow(frac, vmin=0, vmax=1, cmap="Blues")
        ax.set_xticks(range(c), [n[:8] for n in names], rotation=90, fontsize=6)
        ax.set_yticks(range(c), [n[:8] for n in names], fontsize=6)
        if c <= 12:
            for t in range(c):
                for p in range(c):
                    if frac[t, p] >= 0.01:
                        ax.text(p, t, f"{100 * frac[t, p]:.0f}", ha="center", va="center",
                                fontsize=5, color="white" if frac[t, p] > 0.5 else "black")
        ax.set_title(f"{g} (n={int(m.sum())})", fontsize=8)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
    fig.suptitle(f"{model}: confusion matrices, % of each true class (rows)", fontsize=10)
    fig.tight_layout()
    return save(fig, out_dir, f"confusion_{slug(model)}.png",
                f"Confusion matrices of {model}, clean, pooled per corruption family "
                "(severities 1–5) and per sweep; rows are true classes, in % of the row.")


def plot_per_class(acc: dict[str, np.ndarray], names: list[str], out_dir: Path,
                   model: str) -> dict:
    groups = list(acc)
    fig = new_figure(max(6.0, 0.9 * len(names) + 1), 3.4)
    ax = fig.add_subplot(1, 1, 1)
    w = 0.8 / len(groups)
    for j, g in enumerate(groups):
        xs = np.arange(len(names)) + (j - (len(groups) - 1) / 2) * w
        ax.bar(xs, 100 * acc[g], w, label=g)
    ax.set_xticks(np.arange(len(names)), names, rotation=30, fontsize=7, ha="right")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7, ncol=min(len(groups), 6))
    ax.set_title(f"{model}: per-class accuracy, clean and per corruption family", fontsize=10)
    fig.tight_layout()
    return save(fig, out_dir, f"per_class_{slug(model)}.png",
                f"Per-class accuracy of {model}, clean and pooled per corruption family.")
