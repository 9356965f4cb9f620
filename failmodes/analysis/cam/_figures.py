"""Figures of the Grad-CAM analysis: drift curves, a CAM montage under the most drifting
corruption, the failure gallery and the randomisation sanity check. Display maps here are
pytorch-grad-cam's min-max scaled ones; every number comes from the raw maps."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..._atomic import save_figure_atomic
from ...store import CLEAN
from ._core import compute_cams
from ._measures import BAND_AREA, BORDER_BAND, border_mask
from .drift import DRIFT_METRICS, DriftResult, images_at
from .explain import gallery


def _overlay(ax, img: torch.Tensor, cam, title: str | None = None) -> None:
    ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
    ax.imshow(np.asarray(cam), cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def _band_outline(ax, h: int, w: int) -> None:
    b = border_mask(h, w)
    ax.contour(b.astype(float), levels=[0.5], colors="white", linewidths=0.5, linestyles=":")


def plot_drift_curves(drift: DriftResult, path: Path, model_name: str) -> Path:
    """Seven panels (drift, Pearson, Spearman, centre-of-mass shift, entropy, border share,
    raw mass ratio) vs severity, one line per corruption; the border-share panel shows each
    corruption's diffusion null dashed (the clean maps mixed with uniform to the same
    entropy: a solid line above its dashed one is movement, not only spreading)."""
    from matplotlib.figure import Figure
    curves = drift.curves()
    fig = Figure(figsize=(16, 7.5))
    axes = fig.subplots(2, 4).ravel()
    labels = {"drift": "drift: 1 − max(ρ, 0) (constant map = 1)",
              "pearson": "Pearson r with clean CAM", "spearman": "Spearman ρ with clean CAM",
              "com_shift_px": "centre-of-mass shift (px)", "entropy": "CAM entropy (normalised)",
              "border_share": f"border-band share (outer {BORDER_BAND:.0%} per side)",
              "mass_ratio": "raw CAM mass / clean mass"}
    from matplotlib import colormaps
    cmap = colormaps["tab20"]
    panels = [k for k in DRIFT_METRICS if k in labels]
    for ax, k in zip(axes, panels):
        for j, (s, c) in enumerate(curves.items()):
            ax.plot(c["severity"], c[k], marker="o", ms=3, lw=1.2, color=cmap(j % 20), label=s)
            if k == "border_share":
                ax.plot(c["severity"], c["border_share_null"], ls="--", lw=0.8,
                        color=cmap(j % 20))
        ax.set_xlabel("severity")
        ax.set_title(labels[k] + (" (dashed: diffusion null)" if k == "border_share" else ""),
                     fontsize=9)
        ax.grid(alpha=0.3)
    axes[panels.index("border_share")].axhline(BAND_AREA, color="k", ls=":", lw=1)
    handles, names = axes[0].get_legend_handles_labels()
    axes[7].axis("off")
    axes[7].legend(handles, names, loc="center", fontsize=7, ncol=2, frameon=False)
    h, w = drift.map_size
    fig.suptitle(f"{model_name}: attention drift ({len(drift.indices)} images, {h}×{w} maps, "
                 f"target = "
                 f"{'clean-predicted class' if drift.target == 'clean' else 'predicted class'})")
    fig.tight_layout()
    return save_figure_atomic(fig, path, dpi=110)


def plot_montage(model, dataset, drift: DriftResult, stressor: str, path: Path, model_name: str,
                 *, method: str = "gradcam", layer: str | None = None, cols: int = 8) -> Path:
    """Rows = severity 0 (clean) .. max, columns = the first ``cols`` sample images; the CAM
    (same target as the drift analysis) over the corrupted image."""
    from matplotlib.figure import Figure

    from ...stressors import get_stressor
    device = next(model.parameters()).device
    pos = {int(i): p for p, i in enumerate(dataset.indices.tolist())}
    idx = torch.as_tensor(drift.indices[:cols], dtype=torch.int64)
    x0 = images_at(dataset, torch.tensor([pos[int(i)] for i in idx]), device)
    tgt = torch.as_tensor(drift.clean_pred[:cols])
    sevs = [0.0] + drift.severities(stressor)
    fig = Figure(figsize=(1.3 * len(idx) + 0.8, 1.35 * len(sevs) + 0.5))
    axes = np.atleast_2d(fig.subplots(len(sevs), len(idx), squeeze=False))
    st = get_stressor(stressor)
    for r, v in enumerate(sevs):
        x = x0 if v == 0 else st(x0, v, seed=drift.seeds.get(stressor, 0), indices=idx)
        cams, lg = compute_cams(model, x, tgt if drift.target == "clean" else None,
                                method=method, layer=layer, return_logits=True)
        pred = lg.argmax(1)
        for c in range(len(idx)):
            ax = axes[r, c]
            _overlay(ax, x[c].cpu(), cams[c], dataset.classes[int(pred[c])][:10])
            if int(pred[c]) != int(drift.labels[c]):
                ax.title.set_color("red")
            if c == 0:
                dr = 0.0 if v == 0 else drift.mean_drift(stressor, v)
                ax.set_ylabel(f"sev {v:g}\ndrift={dr:.2f}", fontsize=8)
    fig.suptitle(f"{model_name}: {stressor} (title = prediction, red = wrong)", fontsize=10)
    fig.tight_layout()
    return save_figure_atomic(fig, path, dpi=110)


def plot_failures(examples: list, path: Path, model_name: str, rows: int = 8) -> Path:
    """Rows of (image, CAM of the predicted class, CAM of the true class) for ``gallery``."""
    from matplotlib.figure import Figure
    pick = gallery(examples, rows)
    fig = Figure(figsize=(5.4, 1.75 * len(pick) + 0.4))
    axes = np.atleast_2d(fig.subplots(len(pick), 3, squeeze=False))
    for r, e in enumerate(pick):
        h, w = e["image"].shape[-2:]
        cell = "clean" if e["stressor"] == CLEAN else f"{e['stressor']} {e['severity']:g}"
        axes[r, 0].imshow(e["image"].permute(1, 2, 0).clamp(0, 1).numpy())
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
        axes[r, 0].set_title(f"{cell} #{e['idx']}", fontsize=7)
        _overlay(axes[r, 1], e["image"], e["cam_pred"],
                 f"pred {e['pred']} ({e['conf']:.2f}) [{e['type']}]")
        _overlay(axes[r, 2], e["image"], e["cam_true"], f"true {e['true']}")
        _band_outline(axes[r, 1], h, w)
    fig.suptitle(f"{model_name}: high-confidence failures", fontsize=9)
    fig.tight_layout()
    return save_figure_atomic(fig, path, dpi=110)


def plot_sanity(checks: dict[str, dict], path: Path) -> Path:
    """Cascading randomisation: mean Spearman with the original maps vs blocks randomised
    (output first), one line per model; the pass line at ``PASS_RHO``, the three judged
    points ringed (filled when that point fails)."""
    from matplotlib.figure import Figure

    from .sanity import PASS_RHO
    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    for name, c in checks.items():
        steps = [p["step"] for p in c["curve"]]
        rho = [p["spearman"] for p in c["curve"]]
        line, = ax.plot(steps, rho, marker="o", ms=3,
                        label=f"{name} ({'pass' if c['passed'] else 'FAIL'})")
        # The judged points (classifier alone, last stage, end): rings, filled when failed.
        judged = [c[k] for k in ("first_step", "last_stage", "final") if c.get(k)]
        for p in judged:
            ax.plot(p["step"], p["spearman"], "o", ms=8, mec=line.get_color(),
                    mfc="none" if p["passed"] else line.get_color(), alpha=0.8)
        ticks = [p["randomised"] for p in c["curve"]]
    ax.axhline(PASS_RHO, color="k", ls=":", lw=1)
    ax.set_xticks(range(len(ticks)), ticks, rotation=45, ha="right", fontsize=7)
    ax.set_ylim(-0.2, 1.05)
    ax.set_ylabel("Spearman ρ with original CAM")
    ax.set_xlabel("blocks re-initialised (cumulative, from the output)")
    ax.legend(fontsize=7)
    ax.set_title("Adebayo et al. (2018) cascading randomisation: maps must decorrelate",
                 fontsize=9)
    fig.tight_layout()
    return save_figure_atomic(fig, path, dpi=110)
