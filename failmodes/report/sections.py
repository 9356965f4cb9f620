"""The report's sections in report order (:func:`build_sections`): training curves, one
section per analysis with the model comparison after the metrics or curves, the
adversarial attacks, sweeps and probes, and the reproducibility appendix.

>>> sections, rows = build_sections(collect_run("runs/demo"))   # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

from ..analysis.registry import list_analyses
from ..analysis.result import AnalysisResult
from ..store import FIGURES_DIR as FIG_DIR
from ..store import HISTORY_NAME, RunFolder, stressor_family
from ..store import TABLES_DIR as TABLE_DIR
from . import figures as F
from ._collect import RunData, read_json
from ._format import (
    _pt_abs,
    _pt_delta,
    _pt_interval,
    evaluated_severities,
    figure,
    fmt,
    severities_text,
    table,
    unit_formatter,
    unit_of,
)
from ._section import INTROS, Section
from .adversarial import adversarial_section
from .appendix import appendix_section
from .comparison import comparison_table, corruption_deltas


def _csv_name(analysis: str, tname: str) -> str:
    return f"{TABLE_DIR}/{analysis}__{tname}.csv"


def _intro(name: str) -> str:
    """The intro the analysis ``name`` registered ("" for one this installation lacks)."""
    return next((a.intro for a in list_analyses() if a.name == name), "")


def _analysis_section(run: RunData, a) -> Section:
    s = Section(a.name, a.title, a.status, a.message, _intro(a.name), seconds=a.seconds)
    if a.name == "claims" and a.status in ("missing", "skipped") and not _study_claims(run):
        s.status = "empty"
        s.message = ("No claims in this study: a study file's `claims:` list states what to "
                     "check against the data (README, Claims).")
    if s.status != "ok":
        return s
    res: AnalysisResult = a.result
    for k, v in res.summary.items():
        if a.name == "curves" and k == "headline":
            continue  # the first screen's sentence: one place for it
        if isinstance(v, str) and len(v) > 40:
            s.notes.append(f"{k.replace('_', ' ')}: {v}")  # a sentence reads better as a note
        else:
            s.facts.append((k.replace("_", " "), fmt(v)))
    used = [f"{k.replace('_', ' ')} {fmt(v)}" for k, v in res.params.items()
            if v is not None and not isinstance(v, (list, dict))]
    if used:
        s.facts.append(("parameters", "; ".join(used)))
    metrics = list(dict.fromkeys(k for vals in res.per_model.values() for k in vals))
    declared = _declared_units(a.name)
    if metrics:
        # Each number in its unit: fractions and percents both print as percentages.
        rows = []
        for k in metrics:
            vals = {m: res.per_model[m].get(k) for m in res.per_model}
            show = unit_formatter(unit_of(k, vals.values(), declared))
            rows.append({"number": k.replace("_", " "), **{m: show(v) for m, v in vals.items()}})
        t = table("Headline numbers per model", rows, max_rows=80)
        t.open = len(rows) <= 16
        s.tables.append(t)
    for f in res.figures:
        s.figures.append(figure(a.base or run.run_dir, f.path, f.caption))
    for tname, rows in res.tables.items():
        if rows:
            cols = list(dict.fromkeys(k for r in rows for k in r))
            fmts = {c: unit_formatter(unit_of(c, [r.get(c) for r in rows], declared))
                    for c in cols}
            s.tables.append(table(str(tname).replace("_", " "), rows,
                                  csv=_csv_name(a.name, tname), formatters=fmts))
    s.notes += list(res.notes)
    if not (s.facts or s.figures or s.tables or s.notes):
        s.status, s.message = "empty", "The analysis ran but reported nothing."
    return s


def _study_claims(run: RunData) -> list:
    cfg = (run.resolved or {}).get("config") or {}
    return list(cfg.get("claims") or [])


def _declared_units(name: str) -> dict[str, str]:
    return {h.key: h.unit for a in list_analyses() if a.name == name for h in a.headlines}


def _training_section(run: RunData, out_dir: Path) -> Section:
    s = Section("training", "Training curves", intro=INTROS["training"])
    steps = run.state.get("steps", {})
    histories: dict[str, list[dict]] = {}
    rows: list[dict] = []
    for m in run.model_names:
        hist = read_json(RunFolder(run.run_dir).models / m / HISTORY_NAME)
        st = steps.get(f"train:{m}", {})
        if isinstance(hist, list) and hist:
            histories[m] = hist
        last: dict = hist[-1] if isinstance(hist, list) and hist else {}
        rows.append({"model": m, "source": st.get("source", "—"),
                     "epochs": len(hist) if isinstance(hist, list) else None,
                     "final train acc": last.get("train_acc"),
                     "final test acc": last.get("test_acc"),
                     "training time (s)": st.get("seconds"),
                     "checkpoint": st.get("checkpoint", "—")})
    if not run.model_names:
        s.status, s.message = "missing", "No model has been evaluated in this run folder yet."
        return s
    path = F.training_curves(histories, out_dir / FIG_DIR / "report_training_curves.png") \
        if histories else None
    if path:
        s.figures.append(figure(out_dir, f"{FIG_DIR}/{path.name}",
                                "Loss and accuracy per epoch (train dashed, test solid)."))
    else:
        # Nothing to plot is not a green, first section: it goes after the analyses (see
        # build_sections), marked "nothing to show".
        s.status = "empty"
        s.message = ("No training history is recorded in this run folder: the models were "
                     "loaded from checkpoints or files trained elsewhere, or training has not "
                     "run yet.")
    s.tables.append(table("Models", rows))
    return s


def _comparison_section(run: RunData, out_dir: Path) -> tuple[Section, list[dict]]:
    s = Section("comparison", "Model comparison", intro=INTROS["comparison"].replace(
        "severities 1–5", severities_text(evaluated_severities(run.acc))))
    base, names = run.baseline, run.model_names
    if len(names) < 2 or base is None:
        s.status = "empty"
        s.message = ("This run has one model, so there is nothing to compare; add a second "
                     "model to the study, or use `failmodes compare RUN_A RUN_B`.")
        return s, []
    others = [m for m in names if m != base]
    store = RunFolder(run.run_dir).store
    rows = comparison_table(store, run.acc, base, others, run.dataset)
    deltas = {m: corruption_deltas(store, base, store, m, run.dataset) for m in others}
    colors = F.model_colors(names)
    path = F.comparison_bars(deltas, base, out_dir / FIG_DIR / "report_comparison.png", colors)
    if path:
        s.figures.append(figure(out_dir, f"{FIG_DIR}/{path.name}",
                                f"Accuracy of each model minus {base}, per corruption."))
    fmts = {base: _pt_abs}
    shown = [dict(r) for r in rows]
    for m in others:
        fmts[m], fmts[f"Holm interval {m}"] = _pt_abs, _pt_interval
        fmts[f"Δ {m}"] = str
        fmts[f"p (Holm) {m}"] = lambda p: "—" if p is None else f"{p:.2g}"
        for r in shown:
            d, q = r.get(f"Δ {m}"), r.get(f"p (Holm) {m}")
            r[f"Δ {m}"] = _pt_delta(d) + ("*" if q is not None and q < 0.05 else "")
    s.tables.append(table(f"Per-corruption accuracy (%) and deltas vs {base}", shown,
                          csv=f"{TABLE_DIR}/comparison.csv", formatters=fmts))
    for m in others:
        d = deltas[m]
        if not d:
            continue
        better = [r for r in d if r["significant"] and r["delta"] > 0]
        worse = [r for r in d if r["significant"] and r["delta"] < 0]
        best = max(d, key=lambda r: r["delta"])
        s.notes.append(f"{m} vs {base}: better on {len(better)} and worse on {len(worse)} of "
                       f"{len(d)} corruptions (paired test, Holm-corrected p < 0.05); the "
                       f"largest gain is {best['delta']:+.1f} points under {best['stressor']}. "
                       "Conditional on these two trained networks (one seed each).")
    return s, rows


def _sweeps_section(run: RunData, out_dir: Path) -> Section:
    s = Section("sweeps", "Sweeps and probes", intro=INTROS["sweeps"])
    sweeps = sorted({r["stressor"] for r in run.acc if stressor_family(r["stressor"]) == "sweep"})
    if sweeps:
        from ..stressors import get_stressor
        units = {n: get_stressor(n).unit for n in sweeps}
        path = F.sweep_curves(run.acc, sweeps, run.model_names,
                              out_dir / FIG_DIR / "report_sweeps.png", units)
        if path:
            s.figures.append(figure(out_dir, f"{FIG_DIR}/{path.name}",
                                    "Accuracy along each sweep (dotted: clean accuracy)."))
    for p in run.probes:
        spec = p["spec"]
        what = (f"{spec.get('model', '?')} on {spec.get('image', '?')} under "
                f"{spec.get('stressor', '?')}")
        if p["status"] != "ok" or not p["result"]:
            s.notes.append(f"Probe {what}: failed — {p.get('error') or 'no result written'}.")
            continue
        res = p["result"]
        base = run.run_dir / Path(p.get("dir", ""))
        for f in res.get("figures") or []:
            if isinstance(f, dict) and f.get("path"):
                s.figures.append(figure(base, str(f["path"]), f"Probe: {what}. "
                                        + str(f.get("caption", ""))))
        for n in res.get("notes") or []:
            s.notes.append(f"Probe {what}: {n}")
        rows = [_probe_row(r) for r in res.get("rows") or [] if isinstance(r, dict)]
        if rows:
            target = res.get("target")
            tname = target.get("name") if isinstance(target, dict) else target
            s.tables.append(table(f"Probe: {what} (target class: {tname or '?'})", rows,
                                  max_rows=40))
    if not s.figures and not s.notes:
        s.status = "empty"
        s.message = "This study has no sweeps and no probes."
    return s


def _probe_row(r: dict) -> dict:
    top1 = r.get("top1")
    name = top1.get("name") if isinstance(top1, dict) else top1
    prob = top1.get("prob") if isinstance(top1, dict) else None
    return {"value": r.get("value"), "top-1": name, "top-1 prob": prob,
            "p(target)": r.get("p_target")}


def build_sections(run: RunData, out_dir: Path | None = None) -> tuple[list[Section], dict]:
    """The sections in report order, and the rows the CSV export adds (``comparison``,
    ``adversarial``); report-level figures go under ``out_dir/figures`` (default: the run
    folder)."""
    out_dir = Path(out_dir) if out_dir is not None else run.run_dir
    training = _training_section(run, out_dir)
    sections = [training] if training.status == "ok" else []
    comp, comp_rows = _comparison_section(run, out_dir)
    names = [a.name for a in run.analyses]
    anchor = "curves" if "curves" in names else ("metrics" if "metrics" in names else None)
    if anchor is None:
        sections.append(comp)
    for a in run.analyses:
        sections.append(_analysis_section(run, a))
        if a.name == anchor:
            sections.append(comp)
    adv, adv_rows = adversarial_section(run, out_dir)
    sections += [adv, _sweeps_section(run, out_dir)]
    if training.status != "ok":
        sections.append(training)
    sections.append(appendix_section(run))
    return sections, {"comparison": comp_rows, "adversarial": adv_rows}
