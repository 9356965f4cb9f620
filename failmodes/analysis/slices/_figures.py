"""The slices figure: one strip of typical thumbnails per highlighted slice."""
from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from .._figures import new_figure, save, slug


def plot_strips(out_dir: Path, model: str, strips: list[dict]) -> dict:
    """``strips``: {title, images (K×H×W×3 uint8), captions (K str)}; one row each."""
    cols = max(1, max(len(s["images"]) for s in strips))
    fig = new_figure(1.25 * cols + 0.4, 1.95 * len(strips))
    for r, s in enumerate(strips):
        for j in range(cols):
            ax = fig.add_subplot(len(strips), cols, r * cols + j + 1)
            ax.axis("off")
            if j < len(s["images"]):
                ax.imshow(np.asarray(s["images"][j]), interpolation="nearest")
                ax.set_title(s["captions"][j], fontsize=6)
            if j == 0:
                ax.text(0, 1.3, textwrap.shorten(s["title"], 170), transform=ax.transAxes,
                        fontsize=7, ha="left", va="bottom", wrap=False)
    fig.subplots_adjust(hspace=0.75, wspace=0.08, top=1 - 0.5 / len(strips) / 1.95)
    caption = (f"{model}: the most typical wrong images of each highlighted slice (nearest "
               "the slice's centre in attribute or feature space), as the model saw them; "
               "true → predicted under each")
    return save(fig, out_dir, f"slices_{slug(model)}.png", caption)
