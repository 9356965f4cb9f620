"""The metrics analysis's figure: corruption × severity accuracy of one model."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from ..._atomic import save_figure_atomic
from ...store import CLEAN
from ._order import corruption_order


def heatmap(cells: list[dict], model: str, dataset: str, path: Path) -> Path | None:
    """Corruption × severity accuracy of one model, clean accuracy in the title (PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in cells if r["model"] == model and r["dataset"] == dataset
            and r["kind"] == "corruption" and r["severity"] != 0]
    if not rows:
        return None
    corrs = sorted({r["stressor"] for r in rows}, key=corruption_order)
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
    # The model's name on its own line(s), wrapped to the figure's width: a long name on one
    # line with the rest ran past the right edge and was clipped in the saved PNG.
    chars = max(12, int(fig.get_figwidth() * 72 / (0.62 * 9)))  # ~0.62 em per char at 9 pt
    title = "\n".join(textwrap.wrap(model, chars, break_long_words=True) or [model])
    title += "\naccuracy (%)" + (f", clean {clean[0] * 100:.1f}" if clean else "")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.04)
    fig.tight_layout()
    try:
        return save_figure_atomic(fig, path)
    finally:
        plt.close(fig)
