"""Figure plumbing shared by the analyses: matplotlib ``Figure`` objects drawn on the Agg
canvas directly, so no pyplot global state and no backend switch behind the caller."""
from __future__ import annotations

import re
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .._atomic import save_figure_atomic


def new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def save(fig: Figure, out_dir: Path, filename: str, caption: str) -> dict:
    """Write ``out_dir/figures/filename`` atomically; return the registry's figure entry."""
    fdir = Path(out_dir) / "figures"
    save_figure_atomic(fig, fdir / filename, bbox_inches="tight")
    return {"path": f"figures/{filename}", "caption": caption}


def slug(text: str) -> str:
    """A file-name-safe version of a model or stressor name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_") or "x"


def grid_shape(n: int, max_cols: int = 5) -> tuple[int, int]:
    cols = min(max_cols, max(n, 1))
    return (n + cols - 1) // cols, cols
