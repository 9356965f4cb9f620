"""The report's adversarial section: robust accuracy vs ε for every model and attack, the
attack's success rate and loss per ε, and the settings each attack ran with.

An attack is white-box: it follows the gradients of the very model it is evaluated on, so
the images of an attack cell differ from model to model. Attack cells are therefore never
paired across models (the comparison section's paired tests cover corruptions only); the
section compares curves, not per-image deltas.

Everything is read, never recomputed: accuracy from the store's accuracy table, loss,
success rate and the clean-correct count from its ``attack_stats`` (both through
``failmodes.store``), the settings from the stressor registry
(``stressors.adversarial.attack_settings``). ε is in the attack's natural unit: L∞ in grey
levels (/255 of the pixel range), L2 in pixel units of [0, 1] images.

>>> rows = attack_rows(collect_run("runs/demo"))     # doctest: +SKIP
>>> rows[0]["attack"], rows[0]["eps"], rows[0]["success_rate"]   # doctest: +SKIP
('pgd_linf', 2.0, 0.1277)
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..store import FIGURES_DIR as FIG_DIR
from ..store import TABLES_DIR as TABLE_DIR
from ._collect import RunData, finite
from ._format import Table, figure, fmt, pct, table
from ._section import INTROS, Section
from .figures import _save, _style, model_colors, plt
from .first_figures import _FONT

ADVERSARIAL = "adversarial"
NORM_LABEL = {"linf": "L∞", "l2": "L2"}
EPS_UNIT = {"linf": "ε in grey levels (/255 of the pixel range)",
            "l2": "ε in pixel units (L2 norm of the perturbation of a [0, 1] image)"}
NOT_PAIRED = ("These are white-box attacks: each model is attacked through its own "
              "gradients, so an attack cell holds different images for every model. Attack "
              "cells are not paired across models, and no paired test between models is made "
              "for attacks; compare the curves, not per-image deltas.")
DEFINITIONS = ("Robust accuracy: accuracy on the attacked images. Attack success rate: the "
               "share of the images the model classifies correctly when clean that the attack "
               "makes wrong. Mean attack loss: the cross-entropy at the attacked images "
               "(untargeted attacks maximise it).")
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_DASHES = ("-", "--", "-.", ":")


@dataclass(frozen=True)
class Settings:
    norm: str           # linf | l2
    steps: int
    step: str           # the step size as the page writes it: "2.5·ε/10", "ε", "0.5/255"
    per_eps: float | None   # step = per_eps·ε when the step is a rule in ε, else None
    restarts: int
    random_start: bool

    def step_at(self, eps: float) -> str:
        return self.step if self.per_eps is None else eps_label(self.per_eps * eps, self.norm)


def settings(attack: str) -> Settings | None:
    """The settings ``attack`` ran with, from the registry; None for a name this
    installation does not know."""
    from ..stressors import StressorError
    from ..stressors.adversarial import attack_settings
    try:
        one, two = attack_settings(attack, 1.0), attack_settings(attack, 2.0)
    except StressorError:
        return None
    steps, k = one["steps"], one["step"]
    if abs(two["step"] - 2 * k) > 1e-12:      # a fixed step, given as an option
        step, per_eps = eps_label(k, one["norm"]), None
    else:   # a rule in ε: FGSM's ε, or the Madry default 2.5·ε/steps
        step = "ε" if k == 1 else (f"{k * steps:.4g}·ε/{steps}" if steps > 1 else f"{k:.4g}·ε")
        per_eps = k
    return Settings(one["norm"], steps, step, per_eps, one["restarts"], one["random_start"])


def eps_label(eps: float, norm: str | None) -> str:
    """ε as the page writes it: ``4/255`` for L∞, ``0.5`` for L2."""
    return f"{eps:g}/255" if norm == "linf" else f"{eps:g}"


def attack_rows(run: RunData) -> list[dict]:
    """One dict per attack cell of the main dataset, ordered by model, attack, ε: model,
    attack, norm, eps (natural unit), n, accuracy, success_rate, loss, n_clean_correct
    (None where the store kept no attack statistics for the cell)."""
    from ..store import stressor_family
    stats = {(a["model"], a["stressor"], float(a["severity"]), a["seed"]): a
             for a in run.attacks}
    rank = {m: i for i, m in enumerate(run.model_names)}
    out = []
    for r in run.acc:
        if stressor_family(r["stressor"]) != ADVERSARIAL:
            continue
        a = stats.get((r["model"], r["stressor"], float(r["severity"]), r["seed"]), {})
        s = settings(r["stressor"])
        out.append({"model": r["model"], "attack": r["stressor"],
                    "norm": s.norm if s else None, "eps": float(r["severity"]),
                    "seed": r["seed"], "n": r["n"], "accuracy": r["accuracy"],
                    "success_rate": finite(a.get("success_rate")), "loss": finite(a.get("loss")),
                    "n_clean_correct": a.get("n_clean_correct")})
    return sorted(out, key=lambda r: (rank.get(r["model"], len(rank)), r["attack"], r["eps"],
                                      r["seed"]))


def clean_accuracy(run: RunData) -> dict[str, float]:
    return {r["model"]: r["accuracy"] for r in run.acc if r["stressor"] == "clean"}


def headline(rows: list[dict], model: str) -> dict | None:
    """The first screen's attack line for ``model``: of each attack's largest ε, the cell
    with the lowest accuracy."""
    mine = [r for r in rows if r["model"] == model]
    top: dict[str, dict] = {}
    for r in mine:
        if r["attack"] not in top or r["eps"] > top[r["attack"]]["eps"]:
            top[r["attack"]] = r
    if not top:
        return None
    return min(top.values(), key=lambda r: (r["accuracy"], r["attack"]))


def attack_curves(rows: list[dict], models: list[str], clean: dict[str, float],
                  path: Path) -> Path | None:
    """Robust accuracy (%) vs ε: one panel per norm (ε units differ), one colour per model,
    one line style per attack; each model's clean accuracy dotted. Returns None without
    rows."""
    norms = [n for n in NORM_LABEL if any(r["norm"] == n for r in rows)]
    if not norms:
        return None
    colors = model_colors(models)
    with plt.rc_context(_FONT):
        fig, axes = plt.subplots(1, len(norms), figsize=(9.5 if len(norms) == 1 else 7.2 *
                                                         len(norms), 5.0), squeeze=False)
        for ax, norm in zip(axes[0], norms):
            mine = [r for r in rows if r["norm"] == norm]
            attacks = list(dict.fromkeys(r["attack"] for r in mine))
            for m in models:
                for k, a in enumerate(attacks):
                    pts = sorted((r["eps"], 100 * r["accuracy"]) for r in mine
                                 if r["model"] == m and r["attack"] == a)
                    if not pts:
                        continue
                    if pts[0][0] > 0 and m in clean:   # ε = 0 is the clean image
                        pts = [(0.0, 100 * clean[m])] + pts
                    ax.plot(*zip(*pts), _DASHES[k % len(_DASHES)],
                            marker=_MARKERS[k % len(_MARKERS)], color=colors[m], linewidth=2,
                            markersize=7, label=f"{m} · {a}")
                if m in clean:
                    ax.axhline(100 * clean[m], color=colors[m], linestyle=":", linewidth=1.2)
            ax.set_title(f"{NORM_LABEL[norm]} attacks")
            ax.set_xlabel(EPS_UNIT[norm])
            ax.set_ylabel("robust accuracy (%)")
            ax.set_ylim(0, 100)
            ax.set_xlim(left=0)
            _style(ax)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False,
                      ncol=2 if len(models) * len(attacks) > 3 else 1)
    return _save(fig, path)


def results_table(rows: list[dict], csv: str | None) -> Table:
    shown = []
    for r in rows:
        s = settings(r["attack"])
        shown.append({"model": r["model"], "attack": r["attack"],
                      "ε": eps_label(r["eps"], r["norm"]),
                      "robust accuracy": pct(r["accuracy"]),
                      "attack success rate": pct(r["success_rate"]),
                      "mean attack loss": fmt(r["loss"], 3),
                      "clean-correct images": fmt(r["n_clean_correct"]),
                      "images": fmt(r["n"]),
                      "step size": s.step_at(r["eps"]) if s else "—"})
    t = table("Robust accuracy, attack success rate and loss per ε", shown, csv=csv,
              formatters={c: str for c in shown[0]} if shown else None, max_rows=60)
    t.open = True
    return t


def settings_table(rows: list[dict]) -> Table:
    out = []
    for a in dict.fromkeys(r["attack"] for r in rows):
        s = settings(a)
        eps = sorted({r["eps"] for r in rows if r["attack"] == a})
        out.append({"attack": a, "norm": NORM_LABEL.get(s.norm, "?") if s else "?",
                    "ε evaluated": ", ".join(eps_label(e, s.norm if s else None) for e in eps),
                    "steps": fmt(s.steps) if s else "—", "step size": s.step if s else "—",
                    "restarts": fmt(s.restarts) if s else "—",
                    "random start": ("yes" if s.random_start else "no") if s else "—"})
    t = table("Attack settings (from the stressor registry)", out,
              formatters={c: str for c in out[0]})
    t.open = True
    return t


def adversarial_section(run: RunData, out_dir: Path) -> tuple[Section, list[dict]]:
    s = Section("adversarial", "Adversarial attacks", intro=INTROS["adversarial"])
    rows = attack_rows(run)
    if not rows:
        s.status = "empty"
        s.message = ("This study has no attack cells; add one with e.g. `--sweep "
                     "pgd_linf=0:8:2` (or `sweeps:` in the study file).")
        return s, []
    s.notes += [NOT_PAIRED, DEFINITIONS]
    path = attack_curves(rows, run.model_names, clean_accuracy(run),
                         out_dir / FIG_DIR / "report_adversarial.png")
    if path:
        s.figures.append(figure(out_dir, f"{FIG_DIR}/{path.name}",
                                "Robust accuracy vs ε for every model (colour) and attack (line "
                                "style); dotted: each model's clean accuracy. Each model is "
                                "attacked through its own gradients."))
    if any(r["success_rate"] is None for r in rows):
        s.notes.append("Some attack cells have no loss or success rate in the store "
                       "(evaluated before failmodes recorded them); re-evaluate them to fill "
                       "the table.")
    s.tables += [results_table(rows, f"{TABLE_DIR}/adversarial.csv"), settings_table(rows)]
    return s, rows
