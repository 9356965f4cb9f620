"""A run's per-epoch history on disk: ``history.csv``, ``history.json`` and the training
curves (``training_curves.png``)."""
from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

from .._atomic import save_figure_atomic, write_text_atomic
from ..store import HISTORY_CSV_NAME, HISTORY_NAME

HISTORY_FIELDS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "test_n",
                  "time_s", "images_per_s")


def write_history(history: list[dict], out_dir: str | os.PathLike) -> tuple[Path, Path]:
    """``history.csv`` and ``history.json`` in ``out_dir``, each written atomically."""
    out = Path(out_dir)
    buf = io.StringIO(newline="")
    w = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, extrasaction="ignore")
    w.writeheader()
    w.writerows(history)
    paths = out / HISTORY_CSV_NAME, out / HISTORY_NAME
    write_text_atomic(paths[0], buf.getvalue())
    write_text_atomic(paths[1], json.dumps(history, indent=1))
    return paths


def plot_history(history: list[dict], path: str | os.PathLike) -> Path:
    """Training curves: loss and accuracy vs epoch, train vs test (two panels, PNG)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    path = Path(path)
    ep = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4), constrained_layout=True)
    for ax, key, label in ((axes[0], "loss", "cross-entropy loss"),
                           (axes[1], "acc", "accuracy")):
        ax.plot(ep, [h[f"train_{key}"] for h in history], "o-", ms=3, label="train")
        ax.plot(ep, [h[f"test_{key}"] for h in history], "s-", ms=3, label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[1].set_ylim(0, 1)
    try:
        return save_figure_atomic(fig, path, dpi=120)
    finally:
        plt.close(fig)
