"""The first screen's two large figures: every corruption's mean accuracy per model, and
the worst corruptions one per panel (accuracy vs severity, with each model's regime).

Sized to be read at full page width (1120 px): 12 pt text, one bar group per corruption.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .figures import _save, _style, model_colors, plt

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

_FONT: dict[RcKeyType, Any] = {"font.size": 12, "axes.titlesize": 13, "axes.labelsize": 12,
                               "legend.fontsize": 11}


def corruption_overview(per_model: dict[str, list[dict]], path: Path,
                        clean: dict[str, float | None] | None = None,
                        severities: str = "severities 1–5") -> Path:
    """Horizontal bars: mean accuracy (%) of each corruption (rows, grouped by family,
    hardest first within a family) for every model. ``per_model``: model -> rows of
    ``{"corruption", "family", "accuracy"}`` (fractions); ``clean``: model -> clean
    accuracy, drawn as a dotted line in the model's colour."""
    from ..constants import FAMILY_ORDER
    from ..store import stressor_family
    models = list(per_model)
    acc = {(m, r["corruption"]): r["accuracy"] for m, rows in per_model.items() for r in rows}
    fam = {r["corruption"]: r.get("family") or stressor_family(r["corruption"])
           for rows in per_model.values() for r in rows}
    first = models[0]
    order = sorted(fam, key=lambda c: (FAMILY_ORDER.index(fam[c]) if fam[c] in FAMILY_ORDER
                                       else len(FAMILY_ORDER), acc.get((first, c), 1.0)))
    colors = model_colors(models)
    h = 0.8 / max(len(models), 1)
    with plt.rc_context(_FONT):
        fig, ax = plt.subplots(figsize=(11, 0.42 * len(order) * max(1, len(models) / 2) + 1.4))
        for j, m in enumerate(models):
            ys = [i + (j - (len(models) - 1) / 2) * h for i in range(len(order))]
            xs = [100 * (acc.get((m, c)) or 0) for c in order]
            ax.barh(ys, xs, height=h * 0.92, color=colors[m], label=m)
            c0 = clean.get(m) if clean else None
            if c0 is not None:
                ax.axvline(100 * c0, color=colors[m], linestyle=":", linewidth=1.6)
        ax.set_yticks(range(len(order)))
        ax.set_yticklabels([f"{c}{'' if _benchmark(c) else ' †'}  ({fam[c]})" for c in order])
        ax.invert_yaxis()
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"mean accuracy over {severities} (%)")
        _style(ax)
        ax.legend(loc="lower right", frameon=False)
    return _save(fig, path)


def _benchmark(name: str) -> bool:
    from ..store import UNKNOWN, stressor_info
    info = stressor_info(name)
    return info.benchmark or info.family == UNKNOWN


def worst_curves(acc_rows: list[dict], corruptions: list[str], models: list[str], path: Path,
                 regimes: dict[tuple[str, str], str | None]) -> Path | None:
    """One panel per corruption: accuracy (%) vs severity (0 = clean) for every model; the
    legend names each model's regime on that corruption."""
    if not corruptions:
        return None
    clean = {r["model"]: r["accuracy"] for r in acc_rows if r["stressor"] == "clean"}
    colors = model_colors(models)
    with plt.rc_context(_FONT):
        fig, axes = plt.subplots(1, len(corruptions), figsize=(4.2 * len(corruptions), 4.2),
                                 sharey=True, squeeze=False)
        for ax, c in zip(axes[0], corruptions):
            for m in models:
                pts = sorted((float(r["severity"]), 100 * r["accuracy"]) for r in acc_rows
                             if r["model"] == m and r["stressor"] == c)
                if m in clean:
                    pts = [(0.0, 100 * clean[m])] + pts
                if not pts:
                    continue
                reg = regimes.get((m, c))
                ax.plot(*zip(*pts), marker="o", color=colors[m],
                        label=m + (f" — {reg}" if reg else ""))
            ax.set_title(c)
            ax.set_xlabel("severity")
            ax.set_ylim(0, 100)
            _style(ax)
            # Below the axes: inside, the legend would hide the collapsed end of the curves.
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), frameon=False,
                      fontsize=10)
        axes[0][0].set_ylabel("accuracy (%)")
    return _save(fig, path)
