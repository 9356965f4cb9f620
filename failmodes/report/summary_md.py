"""``summary.md``: the report's headline numbers as Markdown, to paste into a pull request,
a README or a write-up (the report is one HTML file; a colleague's doc is usually text).

It holds no number of its own: every value comes from the same store rows and analysis
results the HTML report shows (``RunData``), or from the report's comparison rows.
Sections: the models, the claims with their verdicts, and one row per corruption with each
model's mean accuracy over severities 1–5, its severity-5 accuracy, its fitted regime and,
for a second model, the paired delta against the baseline.
"""
from __future__ import annotations

import math
import re

from ..analysis.registry import list_analyses
from ..store import SUMMARY_NAME
from ..stressors.registry import CORRUPTION_FAMILIES
from ._collect import RunData
from ._format import evaluated_severities, format_headline, severities_text
from .comparison import corruption_accuracy, model_facts

__all__ = ["SUMMARY_NAME", "render_summary"]

_TAG_OPEN = re.compile(r"<(?=[A-Za-z/!?])")


def _cell(v) -> str:
    """One Markdown table cell: pipes escaped, line breaks folded, and a ``<`` that could
    open an HTML tag written as an entity (a model or class name must not become HTML in a
    rendered page; "p < 0.0001" stays readable as plain text)."""
    s = "—" if v is None else str(v)
    s = " ".join(s.split())
    return _TAG_OPEN.sub("&lt;", s).replace("|", r"\|")


def _pct(x, digits: int = 1) -> str | None:
    """A fraction in [0, 1] as a percentage; None stays None (shown as a dash)."""
    if x is None or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return f"{100 * x:.{digits}f}"


def _p(p: float) -> str:
    # A paired test's p printed as 0 would claim certainty; below 1e-4 it says so instead.
    return "< 0.0001" if p < 1e-4 else f"{p:.2g}"


def _table(columns: list[str], rows: list[list]) -> list[str]:
    out = ["| " + " | ".join(_cell(c) for c in columns) + " |",
           "|" + "|".join("---" for _ in columns) + "|"]
    out += ["| " + " | ".join(_cell(v) for v in r) + " |" for r in rows]
    return out


def _rows_of(run: RunData, analysis: str, table: str) -> list[dict]:
    res = run.ok(analysis)
    rows = (res.tables or {}).get(table) if res is not None else None
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


def _headline_cell(h, v) -> str | None:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(v):
        return None
    return format_headline(h, v)  # the first screen's format: one unit, one look


def _models_section(run: RunData) -> list[str]:
    facts = [f for f in model_facts(run.acc) if f["dataset"] == run.dataset] \
        if run.dataset is not None else model_facts(run.acc)
    # Every registered analysis's declared headlines, in report order.
    heads = [(a, h) for a in list_analyses() for h in a.headlines]
    counts = {f.get("n_corruptions") for f in facts}
    mean_col = (f"mean accuracy, {counts.pop()} corruptions %" if len(counts) == 1
                else "mean accuracy, all its corruptions %")
    cols = ["model", "images", "clean acc %", mean_col, "corruption cells",
            "worst cell"] + [h.label + (" %" if h.unit == "percent" else "")
                             for _a, h in heads]
    rows = []
    for f in facts:
        worst = None
        if f.get("worst_stressor") and f.get("largest_drop") is not None \
                and f.get("clean_acc") is not None:
            worst = (f"{f['worst_stressor']} {f['worst_severity']:g}: "
                     f"{_pct(f['clean_acc'] - f['largest_drop'])} %")
        rows.append([f["model"], f.get("n_images"), _pct(f.get("clean_acc"), 2),
                     _pct(f.get("mean_corruption_acc"), 2), f.get("n_corruption_cells"), worst]
                    + [_headline_cell(h, _per_model(run, a.name, f["store_model"]).get(h.key))
                       for a, h in heads])
    out = ["## Models", ""]
    if not rows:
        return out + ["No evaluated cell yet.", ""]
    out += _table(cols, rows)
    note = (f"Accuracies over the integer {severities_text(evaluated_severities(run.acc))} "
            "of every corruption evaluated (the "
            "mean accuracy counts every corruption, the extra ones included; mCA and the "
            "CIFAR-10-C error count the 15 benchmark corruptions only). "
            + " ".join(f"{h.label}: {h.note}." for _a, h in heads if h.note))
    out += ["", note, ""]
    cal = run.ok("calibration")
    floors = ece_floor_lines({f["store_model"]: cal.per_model.get(f["store_model"]) or {}
                              for f in facts}) if cal is not None else []
    if floors:
        out += ["ECE beside its noise floor, before temperature scaling (an ECE at or under "
                "the floor of a perfectly calibrated model with the same confidences and "
                "images cannot be told from perfect calibration):", ""] + floors + [""]
    return out


def ece_floor_lines(per_model: dict[str, dict]) -> list[str]:
    """One bullet per model: the clean ECE and the shifted mean-of-cells ECE (before T), each
    with its 95 % interval and the noise floor of a perfectly calibrated model at that n
    (calibration's ``ece_{clean,shifted}_ci_low/high`` and ``_floor``/``_floor_q95``)."""
    out = []
    for m, row in per_model.items():
        parts = []
        for scope, name in (("clean", "ECE clean"), ("shifted", "ECE shifted, mean of cells")):
            k = f"ece_{scope}"
            if not all(isinstance(row.get(x), (int, float)) for x in
                       (k, f"{k}_ci_low", f"{k}_ci_high", f"{k}_floor", f"{k}_floor_q95")):
                continue
            parts.append(f"{name} {_pct(row[k])} % (95 % CI {_pct(row[k + '_ci_low'])}–"
                         f"{_pct(row[k + '_ci_high'])}; perfectly calibrated: "
                         f"{_pct(row[k + '_floor'])}, up to {_pct(row[k + '_floor_q95'])})")
        if parts:
            out.append(f"- {m}: " + "; ".join(parts))
    return out


def _per_model(run: RunData, analysis: str, model: str) -> dict:
    res = run.ok(analysis)
    return (res.per_model.get(model) or {}) if res is not None else {}


def _claims_section(run: RunData) -> list[str]:
    view = run.analysis("claims")
    if view is None:
        return []
    out = ["## Claims", ""]
    if view.status != "ok":
        return out + [f"The claims analysis is {view.status}"
                      + (f": {view.message}" if view.message else "."), ""]
    rows = _rows_of(run, "claims", "claims")
    if not rows:
        return out + ["The study lists no claims.", ""]
    summ = (view.result.summary if view.result else None) or {}
    counts = ", ".join(f"{summ[k]} {k}" for k in ("supported", "contradicted", "inconclusive")
                       if isinstance(summ.get(k), int))
    params = (view.result.params if view.result else None) or {}
    head = f"{len(rows)} claims" + (f": {counts}" if counts else "") + "."
    if params.get("interval"):
        head += f" Intervals: {params['interval']}."
    if summ.get("family_wise"):
        head += f" {summ['family_wise']}"
    out += [head, ""]
    out += _table(["verdict", "claim", "evidence", "p", "p (Holm over claims)"],
                  [[r.get("verdict"), r.get("claim"), r.get("reason"),
                    None if r.get("p_value") is None else _p(r["p_value"]),
                    None if r.get("p_holm") is None else _p(r["p_holm"])] for r in rows])
    return out + [""]


def _corruption_section(run: RunData, comparison: list[dict]) -> list[str]:
    models = run.model_names
    acc = {m: corruption_accuracy(run.acc, m) for m in models}
    order: list[str] = []
    for r in _rows_of(run, "metrics", "corruptions"):       # the registry's order
        if r.get("corruption") not in order:
            order.append(r["corruption"])
    for m in models:
        order += [s for s in acc[m] if s not in order]
    if not order:
        return []
    regimes = {(r.get("model"), r.get("stressor")): r for r in _rows_of(run, "curves", "regimes")}
    comp = {r.get("corruption"): r for r in comparison}
    base = run.baseline
    others = [m for m in models if m != base] if comparison else []
    cols = ["corruption", "family"]
    for m in models:
        cols += [f"{m} mean %", f"{m} sev 5 %", f"{m} regime"]
    cols += [f"Δ {m} − {base} (p Holm)" for m in others]
    rows = []
    for s in order:
        fam = next((acc[m][s]["family"] for m in models if s in acc[m]), None)
        if fam not in CORRUPTION_FAMILIES:
            continue
        row: list = [s, fam]
        for m in models:
            e = acc[m].get(s)
            g = regimes.get((m, s), {})
            regime = g.get("regime")
            if regime and g.get("confidence"):
                regime = f"{regime} ({g['confidence']})"
            row += [_pct(e["mean"]) if e else None,
                    _pct(e["by_severity"].get(5.0)) if e else None, regime]
        for m in others:
            c = comp.get(s, {})
            d, q = c.get(f"Δ {m}"), c.get(f"p (Holm) {m}")
            row.append(None if d is None else f"{d:+.1f}" + ("" if q is None else f" ({_p(q)})"))
        rows.append(row)
    out = ["## Per corruption", ""]
    out += _table(cols, rows)
    note = (f"mean %: accuracy averaged over {severities_text(evaluated_severities(run.acc))}; "
            "sev 5 %: at severity 5; regime: the "
            "curves analysis's fitted shape of the accuracy-vs-severity curve and its "
            "confidence.")
    if others:
        note += (" Δ: accuracy points, paired on the same images (a sign-flip test per "
                 "corruption, Holm-corrected across corruptions).")
    return out + ["", note, ""]


def render_summary(run: RunData, comparison: list[dict] | None = None,
                   generated: str | None = None) -> str:
    """The Markdown text of ``summary.md`` for ``run``; ``comparison``: the report's
    per-corruption comparison rows (``comparison_table``), when it has them."""
    lines = [f"# {run.title}", ""]
    meta = [f"Run folder `{run.run_dir.name}`"]
    if run.dataset:
        meta.append(f"dataset `{run.dataset}`")
    if generated:
        meta.append(f"written {generated}")
    lines += ["; ".join(meta) + ".", ""]
    missing = [f"{a.name} ({a.status})" for a in run.analyses
               if a.status not in ("ok", "skipped")]
    if missing:
        lines += ["Not in this summary: " + ", ".join(missing) + ".", ""]
    if run.failed_cells:
        lines += [f"{len(run.failed_cells)} cells failed; the report lists them.", ""]
    lines += _models_section(run)
    lines += _claims_section(run)
    lines += _corruption_section(run, comparison or [])
    return "\n".join(lines).rstrip() + "\n"
