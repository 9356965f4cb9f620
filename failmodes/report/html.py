"""The study report: one self-contained HTML file (figures as data: URIs, inline CSS, no
script, no network) rendered with jinja2, autoescaped: class names, file names and error
texts are data, never markup.

>>> path = render_report("runs/demo")        # writes runs/demo/report.html  # doctest: +SKIP
"""
from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from .._atomic import write_text_atomic
from ..analysis.result import AnalysisResult
from ..store import FIGURES_DIR as FIG_DIR
from ..store import HISTORY_NAME, REPORT_NAME, RunFolder, stressor_family
from ..store import TABLES_DIR as TABLE_DIR
from . import figures as F
from ._collect import RunData, collect_run, finite, read_json
from ._format import Figure, Table, figure, fmt, pct, table
from .comparison import comparison_table, corruption_deltas, model_facts
from .explorer import content_security_policy
from .page import page_extras

# What each section shows and how to read it: one paragraph above its content.
INTROS = {
    "training": "Loss and accuracy per epoch for every model trained by this study "
                "(train dashed, test solid). A widening gap means over-fitting; a test "
                "curve still rising means the budget stopped training early.",
    "metrics": "Accuracy for every corruption × severity cell, per model, and the corruption "
               "error (CE) and mCE of Hendrycks & Dietterich (2019) against the baseline.",
    "curves": "How accuracy and confidence fall as severity rises. Each curve is fitted with "
              "competing shapes and labelled with its failure regime: graceful, linear, "
              "threshold-collapse (flat, then a cliff) or early-damage-plateau.",
    "comparison": "Per-corruption accuracy of each model minus the baseline, on the very same "
                  "corrupted images (paired; severities 1–5, each image counted once). ± is "
                  "the 95 % normal interval, for scale; a delta is marked * when its paired "
                  "sign-flip test (exact with few discordant images) stays below 0.05 after "
                  "Holm's correction across the corruptions. Both are conditional on the "
                  "trained networks: they count test-image noise, not training-seed "
                  "variation.",
    "failures": "Wrong predictions made with high confidence, the most frequent confusions and "
                "accuracy at the superclass level (does a wrong answer stay in the right "
                "family?).",
    "calibration": "Whether confidence can be trusted under shift: expected calibration error "
                   "on clean and corrupted data, before and after temperature scaling, and "
                   "how well confidence flags errors.",
    "cam": "Grad-CAM on a fixed sample: where each model looks on clean images and how that "
           "attention drifts as corruption grows, and explanations of confident failures.",
    "sweeps": "Accuracy along parametric sweeps (natural units), and single-image probes: one "
              "photo pushed through a stressor with the prediction at each level.",
    "appendix": "Everything needed to reproduce this report.",
}


@dataclass
class Section:
    id: str
    title: str
    status: str = "ok"             # ok | failed | missing | skipped | empty
    message: str = ""
    intro: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float | None = None
    # Appendix only: the resolved study as YAML and the commands that built the run.
    resolved_yaml: str | None = None
    commands: list[dict] = field(default_factory=list)


def _env() -> jinja2.Environment:
    # autoescape=True for every template: nothing from a run is ever trusted as HTML.
    return jinja2.Environment(loader=jinja2.PackageLoader("failmodes.report", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


# ----------------------------------------------------------------------------- summary
def _metric(result: AnalysisResult | None, model: str, name: str):
    """One per-model number of an analysis (None when the analysis did not run)."""
    return result.metric(model, name) if result is not None else None


def _arrow(a, b, f=pct) -> str:
    return "—" if a is None and b is None else f"{f(a)} → {f(b)}"


def _summary(run: RunData, facts: list[dict]) -> dict:
    """The first screen: headline sentences, per-model numbers, regimes, confusions."""
    metrics, curves = run.ok("metrics"), run.ok("curves")
    calib, fails = run.ok("calibration"), run.ok("failures")
    base = run.baseline
    headline = []
    if curves and curves.summary.get("headline"):
        h = str(curves.summary["headline"])
        headline.append(h[0].upper() + h[1:])
    else:
        worst = max((f for f in facts if f["largest_drop"] is not None),
                    key=lambda f: f["largest_drop"], default=None)
        if worst:
            headline.append(f"Largest drop: {100 * worst['largest_drop']:.1f} points for "
                            f"{worst['model']} under {worst['worst_stressor']} at severity "
                            f"{fmt(worst['worst_severity'])} (from {pct(worst['clean_acc'])} "
                            f"to {pct(worst['worst_acc'])}).")
    robust, calib_rows, mca_note = [], [], None
    for f in facts:
        m = f["store_model"]
        v = lambda res, n, m=m: _metric(res, m, n)  # noqa: E731
        mca = v(metrics, "mca")
        if mca is not None:  # the metrics analysis's mCA: one number across the report
            f["mean_corruption_acc"] = mca
            f["mca_over"] = (f"{v(metrics, 'corruptions')} {v(metrics, 'corruption_set') or ''} "
                             "corruptions × severities 1–5")
            ref = metrics.params.get("baseline")
            mca_note = (f"Mean corruption accuracy and CIFAR-10-C error (100 − that mean, "
                        f"needs all {metrics.params.get('n_benchmark_corruptions')} benchmark "
                        f"corruptions): over the {f['mca_over']}. mCE and relative mCE "
                        f"(Hendrycks & Dietterich) are ratios against {ref} (1 = as robust "
                        "as it). The largest drop: over every evaluated cell.")
        name = f["model"] + (" (baseline)" if m == base else "")
        robust.append({
            "model": name, "clean accuracy": pct(f["clean_acc"]),
            "mean corruption accuracy": pct(f["mean_corruption_acc"]),
            "largest drop": (f"{100 * f['largest_drop']:.1f} pt · {f['worst_stressor']} "
                             f"s{fmt(f['worst_severity'])}" if f["largest_drop"] is not None
                             else "—"),
            "CIFAR-10-C error": _pct_points(v(metrics, "cifar10c_error")),
            "mCE (ratio vs baseline)": fmt(v(metrics, "mce"), 3),
            "relative mCE (ratio vs baseline)": fmt(v(metrics, "relative_mce"), 3)})
        if calib or fails:
            calib_rows.append({
                "model": name,
                "ECE clean → shifted": _arrow(v(calib, "ece_clean"), v(calib, "ece_shifted")),
                "ECE after temperature scaling": _arrow(v(calib, "ece_clean_ts"),
                                                        v(calib, "ece_shifted_ts")),
                "temperature": fmt(v(calib, "temperature"), 3),
                "dangerous failures clean → shifted": _arrow(
                    v(calib, "dangerous_rate_clean") if calib else v(fails, "clean_hc_rate"),
                    v(calib, "dangerous_rate_shifted") if calib else v(fails, "shifted_hc_rate"),
                    lambda x: pct(x, 2))})
    models = table("Accuracy and robustness", robust,
                   formatters={c: str for c in robust[0]}) if robust else None
    trust = table("Calibration under shift", calib_rows,
                  formatters={c: str for c in calib_rows[0]}) if calib_rows else None
    gaps = []
    for name, what in (("metrics", "mCE and relative mCE"), ("calibration", "ECE and the "
                       "dangerous-failure rate"), ("curves", "the regimes table"),
                       ("failures", "the top confusions")):
        a = run.analysis(name)
        if a is None or a.status != "ok":
            why = {"failed": "failed", "skipped": "was left out", "missing": "has not run"}.get(
                a.status if a else "", "is not available in this installation")
            gaps.append(f"{what[0].upper() + what[1:]}: the {name} analysis {why}.")
    return {"headline": headline, "models": models, "trust": trust, "gaps": gaps,
            "notes": [n for n in (mca_note, _danger_note(calib, fails)) if n],
            "regimes": _regimes_table(run, curves), "confusions": _confusions_table(fails),
            "cards": _cards(facts, base)}


def _pct_points(x) -> str:
    return "—" if finite(x) is None else f"{x:.1f}%"


def _danger_note(calib: AnalysisResult | None, fails: AnalysisResult | None) -> str | None:
    if calib is not None:
        return (f"ECE: expected calibration error ({calib.params['n_bins']} equal-width bins); "
                "shifted: the mean over the corruption cells at severities 1–5; temperature: "
                "fitted on clean images the model never trained on. Dangerous failures: wrong "
                f"with confidence above {calib.params['dangerous_conf']:g}.")
    if fails is not None:
        return (f"Dangerous failures: wrong with confidence above {fails.params['threshold']:g};"
                " shifted: corruption cells at severities 1–5.")
    return None


def _regimes_table(run: RunData, curves: AnalysisResult | None) -> Table | None:
    """Corruptions × models, each cell the regime label with its breakpoint and drop."""
    rows = [r for r in (curves.tables.get("regimes", []) if curves else [])
            if r.get("dataset") in (None, run.dataset)]
    if not rows:
        return None
    models = list(dict.fromkeys(r["model"] for r in rows))
    by: dict[str, dict] = {}
    for r in rows:
        e = by.setdefault(r["stressor"], {"corruption": r["stressor"],
                                          "family": r.get("family", "")})
        label = str(r.get("regime", "?"))
        if isinstance(r.get("breakpoint"), (int, float)):
            label += f" · break at {r['breakpoint']:.1f}"
        if isinstance(r.get("total_drop"), (int, float)):
            label += f" · −{r['total_drop']:.0f} pt"
        if r.get("confidence") not in (None, "", "n/a", "strong", "positive", "very strong"):
            label += f" ({r['confidence']})"
        e[r["model"]] = label
    out = table("Failure regimes (label · breakpoint severity · total drop)", list(by.values()),
                columns=["corruption", "family", *models], formatters={}, max_rows=60)
    out.csv = _csv_name("curves", "regimes")
    return out


def _confusions_table(fails: AnalysisResult | None) -> Table | None:
    rows = fails.tables.get("confusion_pairs", []) if fails else []
    if not rows:
        return None
    picked = []
    for group in ("clean", "all shifted"):
        sel = [r for r in rows if r.get("group") == group]
        for m in dict.fromkeys(r.get("model") for r in sel):
            picked += sorted((r for r in sel if r.get("model") == m),
                             key=lambda r: -(r.get("count") or 0))[:3]
    picked = picked or sorted(rows, key=lambda r: -(r.get("count") or 0))[:10]
    cols = [c for c in ("model", "group", "true", "predicted", "count", "share_of_errors",
                        "reverse_count") if any(c in r for r in picked)]
    return table("Top confusion pairs (true → predicted)", picked, columns=cols,
                 formatters={"share_of_errors": pct})


def _cards(facts: list[dict], base: str | None) -> list[dict]:
    f = next((f for f in facts if f["store_model"] == base), facts[0] if facts else None)
    if f is None:
        return []
    drop = f["largest_drop"]
    return [
        {"label": "clean accuracy", "value": pct(f["clean_acc"]), "sub": f["model"]},
        {"label": "mean corruption accuracy", "value": pct(f["mean_corruption_acc"]),
         "sub": "over " + f.get("mca_over", f"{f['n_corruption_cells']} corruption × "
                                              "severity cells")},
        {"label": "largest drop", "value": f"{100 * drop:.1f} pt" if drop is not None else "—",
         "sub": (f"{f['worst_stressor']} at severity {fmt(f['worst_severity'])}"
                 if drop is not None else "no corruption cells")},
        {"label": "test images", "value": fmt(f["n_images"]), "sub": f["dataset"]},
    ]


# ----------------------------------------------------------------------------- sections
def _csv_name(analysis: str, tname: str) -> str:
    return f"{TABLE_DIR}/{analysis}__{tname}.csv"


def _analysis_section(run: RunData, a) -> Section:
    s = Section(a.name, a.title, a.status, a.message, INTROS.get(a.name, ""), seconds=a.seconds)
    if a.status != "ok":
        return s
    res: AnalysisResult = a.result
    for k, v in res.summary.items():
        if isinstance(v, str) and len(v) > 40:
            s.notes.append(f"{k.replace('_', ' ')}: {v}")  # a sentence reads better as a note
        else:
            s.facts.append((k.replace("_", " "), fmt(v)))
    used = [f"{k.replace('_', ' ')} {fmt(v)}" for k, v in res.params.items()
            if v is not None and not isinstance(v, (list, dict))]
    if used:
        s.facts.append(("parameters", "; ".join(used)))
    metrics = list(dict.fromkeys(k for vals in res.per_model.values() for k in vals))
    if metrics:
        rows = [{"number": k.replace("_", " "),
                 **{m: res.per_model[m].get(k) for m in res.per_model}} for k in metrics]
        t = table("Headline numbers per model", rows, max_rows=80)
        t.open = len(rows) <= 16
        s.tables.append(t)
    for f in res.figures:
        s.figures.append(figure(a.base or run.run_dir, f.path, f.caption))
    for tname, rows in res.tables.items():
        if rows:
            s.tables.append(table(str(tname).replace("_", " "), rows,
                                  csv=_csv_name(a.name, tname)))
    s.notes += list(res.notes)
    if not (s.facts or s.figures or s.tables or s.notes):
        s.status, s.message = "empty", "The analysis ran but reported nothing."
    return s


def _training_section(run: RunData) -> Section:
    s = Section("training", "Training curves", intro=INTROS["training"])
    steps = run.state.get("steps", {})
    histories, rows = {}, []
    for m in run.model_names:
        hist = read_json(RunFolder(run.run_dir).models / m / HISTORY_NAME)
        st = steps.get(f"train:{m}", {})
        if isinstance(hist, list) and hist:
            histories[m] = hist
        last = hist[-1] if isinstance(hist, list) and hist else {}
        rows.append({"model": m, "source": st.get("source", "—"),
                     "epochs": len(hist) if isinstance(hist, list) else None,
                     "final train acc": last.get("train_acc"),
                     "final test acc": last.get("test_acc"),
                     "training time (s)": st.get("seconds"),
                     "checkpoint": st.get("checkpoint", "—")})
    if not run.model_names:
        s.status, s.message = "missing", "No model has been evaluated in this run folder yet."
        return s
    path = F.training_curves(histories, run.run_dir / FIG_DIR / "report_training_curves.png") \
        if histories else None
    if path:
        s.figures.append(figure(run.run_dir, f"{FIG_DIR}/{path.name}",
                                "Loss and accuracy per epoch (train dashed, test solid)."))
    else:
        s.notes.append("No training history is recorded in this run folder: the models "
                       "were loaded from checkpoints trained elsewhere, or training has "
                       "not run yet.")
    s.tables.append(table("Models", rows))
    return s


def _comparison_section(run: RunData, facts: list[dict]) -> tuple[Section, list[dict]]:
    s = Section("comparison", "Model comparison", intro=INTROS["comparison"])
    base, names = run.baseline, run.model_names
    if len(names) < 2:
        s.status = "empty"
        s.message = ("This run has one model, so there is nothing to compare; add a second "
                     "model to the study, or use `failmodes compare RUN_A RUN_B`.")
        return s, []
    others = [m for m in names if m != base]
    store = RunFolder(run.run_dir).store
    rows = comparison_table(store, run.acc, base, others, run.dataset)
    deltas = {m: corruption_deltas(store, base, store, m, run.dataset) for m in others}
    colors = F.model_colors(names)
    path = F.comparison_bars(deltas, base, run.run_dir / FIG_DIR / "report_comparison.png",
                             colors)
    if path:
        s.figures.append(figure(run.run_dir, f"{FIG_DIR}/{path.name}",
                                f"Accuracy of each model minus {base}, per corruption."))
    fmts = {base: _pt_abs}
    shown = [dict(r) for r in rows]
    for m in others:
        fmts[m], fmts[f"±95% {m}"] = _pt_abs, _pt_ci
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


def _pt_abs(v):
    return "—" if v is None else f"{v:.1f}"


def _pt_delta(v):
    return "—" if v is None else f"{v:+.1f}"


def _pt_ci(v):
    return "—" if v is None else f"±{v:.1f}"


def _sweeps_section(run: RunData) -> Section:
    s = Section("sweeps", "Sweeps and probes", intro=INTROS["sweeps"])
    sweeps = sorted({r["stressor"] for r in run.acc if stressor_family(r["stressor"]) == "sweep"})
    if sweeps:
        from ..stressors import get_stressor
        units = {n: get_stressor(n).unit for n in sweeps}
        path = F.sweep_curves(run.acc, sweeps, run.model_names,
                              run.run_dir / FIG_DIR / "report_sweeps.png", units)
        if path:
            s.figures.append(figure(run.run_dir, f"{FIG_DIR}/{path.name}",
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


def _appendix(run: RunData) -> Section:
    import yaml
    s = Section("appendix", "Reproducibility", intro=INTROS["appendix"])
    cfg = (run.resolved or {}).get("config")
    versions = (run.resolved or {}).get("versions") or {}
    if cfg is not None:
        s.facts.append(("seed", fmt(cfg.get("seed"))))
        s.facts.append(("device", str(cfg.get("device"))))
    s.facts += [(k, str(v)) for k, v in versions.items()]
    s.resolved_yaml = yaml.safe_dump(cfg, sort_keys=False) if cfg is not None else None
    s.commands = [{"time": c.get("time", ""), "command": c.get("command", ""),
                   "cwd": c.get("cwd", "")} for c in run.state.get("commands", [])]
    steps = [{"step": k, "status": v.get("status"), "wall s": v.get("seconds"),
              "CPU s": v.get("cpu_s"), "finished": v.get("finished"),
              "detail": (v.get("detail") or v.get("error") or "").split("\n")[0]}
             for k, v in run.state.get("steps", {}).items()]
    if steps:
        s.tables.append(table("Study steps (latest invocation that ran each)", steps))
    if run.models:
        s.tables.append(table("Models: where each came from", _provenance_rows(run.models)))
    if run.store_runs:
        s.tables.append(table("Evaluation runs recorded in the store",
                              [{"id": r["id"], "started": r["started"], "command": r["command"]}
                               for r in run.store_runs]))
    if run.failed_cells:
        s.tables.append(table("Cells that failed to evaluate", run.failed_cells))
    return s


def _provenance_rows(models: list[dict]) -> list[dict]:
    # meta["provenance"]: what failmodes.models recorded when it built the model.
    rows = []
    for m in models:
        p = (m.get("meta") or {}).get("provenance") or {}
        classes = p.get("classes") or m.get("class_names") or []
        rows.append({
            "model": m["name"], "arch": p.get("arch") or m.get("arch"),
            "weights": p.get("weights") or p.get("format") or m.get("spec"),
            "file SHA-256": (p.get("weights_sha256") or "")[:16] or "—",
            "format": p.get("format") or "—",
            "mean": ", ".join(f"{v:.4g}" for v in p["mean"]) if p.get("mean") else "—",
            "std": ", ".join(f"{v:.4g}" for v in p["std"]) if p.get("std") else "—",
            "mean/std from": p.get("normalization_from") or "—",
            "classes": f"{len(classes)}: " + ", ".join(classes[:4])
                       + (", ..." if len(classes) > 4 else ""),
            "input": p.get("input_size") or "—"})
    return rows


# ----------------------------------------------------------------------------- render
def build_sections(run: RunData) -> tuple[dict, list[Section], list[dict]]:
    """The summary, the sections in report order and the comparison rows of a run."""
    facts = model_facts(run.acc)
    summary = _summary(run, facts)
    sections = [_training_section(run)]
    comp, comp_rows = _comparison_section(run, facts)
    names = [a.name for a in run.analyses]
    anchor = "curves" if "curves" in names else ("metrics" if "metrics" in names else None)
    if anchor is None:
        sections.append(comp)
    for a in run.analyses:
        sections.append(_analysis_section(run, a))
        if a.name == anchor:
            sections.append(comp)
    sections.append(_sweeps_section(run))
    sections.append(_appendix(run))
    return summary, sections, comp_rows


def render_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write ``run_dir/report.html`` (or ``out``), plus its report-level figures under
    ``run_dir/figures``; returns the report path. Works on a partial run: sections whose
    analysis has not run say so."""
    from .export import export_tables
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} not found")
    run = collect_run(run_dir)
    summary, sections, comp_rows = build_sections(run)
    export_tables(run, comp_rows)
    cfg = (run.resolved or {}).get("config") or {}
    first, explorer, scripts = page_extras(run)
    html = _env().get_template("report.html.j2").render(
        first=first, explorer=explorer, explorer_js=scripts[0] if scripts else None,
        csp=content_security_policy(scripts),
        title=run.title, description=cfg.get("description", ""), run_dir=str(run_dir),
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        summary=summary, sections=sections, models=run.model_names, baseline=run.baseline,
        n_cells=len(run.acc), n_failed=len(run.failed_cells))
    out = Path(out) if out else run_dir / REPORT_NAME
    return write_text_atomic(out, html)


