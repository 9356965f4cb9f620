"""The estimate analysis's figure: estimated vs true accuracy per estimator."""
from __future__ import annotations

from pathlib import Path

from .._figures import grid_shape, new_figure, save, slug


def scatter_figure(rows: list[dict], names: list[str], model: str, out_dir: Path) -> dict:
    """One panel per method, raw (blue) and temperature-scaled (orange) estimates of the
    given cells against their measured accuracy; the diagonal is a perfect estimate."""
    methods = [n for n in names if not n.endswith("-TS")]
    shifted = rows
    nr, nc = grid_shape(len(methods))
    fig = new_figure(3.0 * nc, 3.0 * nr)
    truth = [100 * r["true_accuracy"] for r in shifted]
    for i, m in enumerate(methods):
        ax = fig.add_subplot(nr, nc, i + 1)
        ax.plot([0, 100], [0, 100], color="0.6", lw=0.8)
        for name, color in ((m, "tab:blue"), (f"{m}-TS", "tab:orange")):
            if name in names:
                est = [100 * r[name] for r in shifted]
                mae = sum(abs(a - b) for a, b in zip(est, truth)) / max(len(est), 1)
                ax.scatter(truth, est, s=8, color=color, alpha=0.7,
                           label=f"{name}: MAE {mae:.1f}")
        ax.set_title(m, fontsize=9)
        ax.set_xlim(0, 100)
        ax.set_ylim(0, 100)
        ax.set_xlabel("true accuracy (%)", fontsize=8)
        if i % nc == 0:
            ax.set_ylabel("estimated accuracy (%)", fontsize=8)
        ax.legend(fontsize=6, loc="upper left")
        ax.tick_params(labelsize=7)
    return save(fig, out_dir, f"estimate_{slug(model)}.png",
                f"{model}: label-free estimated vs measured accuracy of the {len(rows)} cells the "
                "errors are averaged over, "
                "per estimator (blue raw, orange temperature-scaled; MAE in points)")
