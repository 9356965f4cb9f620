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
from ._collect import RunData, collect_run, read_json
from ._format import Figure, Table, figure, fmt, table
from .comparison import comparison_table, corruption_deltas
from .explorer import check_thumb_budget, content_security_policy
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
    "adversarial": "Robust accuracy under white-box attacks (FGSM, PGD) as the budget ε grows, "
                   "per model: ε in its natural unit (L∞ in grey levels /255, L2 in pixel "
                   "units), with each attack's success rate, loss and settings.",
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


# ----------------------------------------------------------------------------- sections
def _csv_name(analysis: str, tname: str) -> str:
    return f"{TABLE_DIR}/{analysis}__{tname}.csv"


def _analysis_section(run: RunData, a) -> Section:
    s = Section(a.name, a.title, a.status, a.message, INTROS.get(a.name, ""), seconds=a.seconds)
    if a.status != "ok":
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
        s.notes.append("No training history is recorded in this run folder: the models "
                       "were loaded from checkpoints trained elsewhere, or training has "
                       "not run yet.")
    s.tables.append(table("Models", rows))
    return s


def _comparison_section(run: RunData, out_dir: Path) -> tuple[Section, list[dict]]:
    s = Section("comparison", "Model comparison", intro=INTROS["comparison"])
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


def _adversarial_section(run: RunData, out_dir: Path) -> tuple[Section, list[dict]]:
    from . import adversarial as A
    s = Section("adversarial", "Adversarial attacks", intro=INTROS["adversarial"])
    rows = A.attack_rows(run)
    if not rows:
        s.status = "empty"
        s.message = ("This study has no attack cells; add one with e.g. `--sweep "
                     "pgd_linf=0:8:2` (or `sweeps:` in the study file).")
        return s, []
    s.notes += [A.NOT_PAIRED, A.DEFINITIONS]
    path = A.attack_curves(rows, run.model_names, A.clean_accuracy(run),
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
    s.tables += [A.results_table(rows, f"{TABLE_DIR}/adversarial.csv"), A.settings_table(rows)]
    return s, rows


# ----------------------------------------------------------------------------- render
def build_sections(run: RunData, out_dir: Path | None = None) -> tuple[list[Section], dict]:
    """The sections in report order, and the rows the CSV export adds (``comparison``,
    ``adversarial``); report-level figures go under ``out_dir/figures`` (default: the run
    folder)."""
    out_dir = Path(out_dir) if out_dir is not None else run.run_dir
    sections = [_training_section(run, out_dir)]
    comp, comp_rows = _comparison_section(run, out_dir)
    names = [a.name for a in run.analyses]
    anchor = "curves" if "curves" in names else ("metrics" if "metrics" in names else None)
    if anchor is None:
        sections.append(comp)
    for a in run.analyses:
        sections.append(_analysis_section(run, a))
        if a.name == anchor:
            sections.append(comp)
    adv, adv_rows = _adversarial_section(run, out_dir)
    sections += [adv, _sweeps_section(run, out_dir), _appendix(run)]
    return sections, {"comparison": comp_rows, "adversarial": adv_rows}


def render_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, *,
                  thumb_budget: int | None = None) -> Path:
    """Write ``run_dir/report.html`` and beside it ``figures/`` (report-level figures),
    ``tables/*.csv`` and ``results.json``; returns the report path.

    ``out``: write the report there instead, and its figures, tables and results.json in
    its folder: nothing is then written into the run folder, which may be read-only.
    ``thumb_budget``: bytes of explorer thumbnails the page may embed (see
    ``check_thumb_budget``). Works on a partial run: sections whose analysis has not run
    say so."""
    from .export import export_tables
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} not found")
    if thumb_budget is not None:
        check_thumb_budget(thumb_budget)
    out = Path(out) if out else run_dir / REPORT_NAME
    out_dir = out.parent
    run = collect_run(run_dir)
    sections, rows = build_sections(run, out_dir)
    export_tables(run, rows, out_dir)
    cfg = (run.resolved or {}).get("config") or {}
    first, explorer, scripts = page_extras(run, out_dir, thumb_budget)
    html = _env().get_template("report.html.j2").render(
        first=first, explorer=explorer, explorer_js=scripts[0] if scripts else None,
        csp=content_security_policy(scripts),
        title=run.title, description=cfg.get("description", ""), run_dir=str(run_dir),
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        sections=sections, models=run.model_names, baseline=run.baseline,
        n_cells=len(run.acc), n_failed=len(run.failed_cells))
    return write_text_atomic(out, html)
