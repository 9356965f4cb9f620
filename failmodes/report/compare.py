"""``failmodes compare RUN_A RUN_B``: one HTML page comparing two run folders — their
headline numbers side by side and per-corruption accuracy deltas of every model of B
against A's baseline, paired on the images both runs evaluated.

>>> compare_runs("runs/quick", "runs/quick-augmix")  # doctest: +SKIP
PosixPath('runs/quick-vs-quick-augmix/compare.html')
"""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

from .._atomic import write_text_atomic
from ..errors import FailmodesError
from ..store import FIGURES_DIR as FIG_DIR
from ..store import STORE_NAME
from ..store import TABLES_DIR as TABLE_DIR
from . import figures as F
from ._collect import RunData, collect_run
from ._format import _pt_ci, _pt_delta, _pt_interval, figure, fmt, pct, table
from ._section import Section
from .comparison import clean_deltas, corruption_deltas, model_facts
from .export import _write_csv
from .html import _env

COMPARE_NAME = "compare.html"


class CompareError(ValueError, FailmodesError):
    """A run folder to compare is missing or holds no results store."""


def _open(run_dir: Path, which: str) -> RunData:
    if not (run_dir / STORE_NAME).is_file():
        raise CompareError(f"{which}: {run_dir} holds no {STORE_NAME}; pass a run folder "
                           "written by `failmodes run` or `failmodes evaluate`")
    return collect_run(run_dir)


def compare_runs(run_a: str | os.PathLike, run_b: str | os.PathLike,
                 out: str | os.PathLike | None = None) -> Path:
    """Write ``out/compare.html`` (default ``<parent of A>/<A>-vs-<B>/``), a CSV of the
    deltas and a figure; returns the HTML path."""
    a_dir, b_dir = Path(run_a), Path(run_b)
    a, b = _open(a_dir, "run A"), _open(b_dir, "run B")
    out_dir = Path(out) if out else a_dir.parent / f"{a_dir.name}-vs-{b_dir.name}"
    out_dir.mkdir(parents=True, exist_ok=True)
    ref = a.baseline
    if ref is None:
        raise CompareError(f"run A: {a_dir} has no evaluated model to compare B against; "
                           "run `failmodes evaluate` into it first")
    label = {("A", m): f"A:{m}" for m in a.model_names}
    label.update({("B", m): f"B:{m}" for m in b.model_names})

    facts = [dict(f, run="A") for f in model_facts(a.acc)] + \
            [dict(f, run="B") for f in model_facts(b.acc)]
    side = [{"run": f["run"], "model": f["model"], "clean accuracy": pct(f["clean_acc"]),
             "mean accuracy, all corruptions": pct(f["mean_corruption_acc"]),
             "corruptions": f["n_corruptions"], "corruption cells": f["n_corruption_cells"],
             "largest drop": (f"{100 * f['largest_drop']:.1f} pt · {f['worst_stressor']} "
                              f"s{fmt(f['worst_severity'])}" if f["largest_drop"] is not None
                              else "—")} for f in facts]
    summary = Section("side-by-side", "Summary side by side")
    summary.tables.append(table("Models", side, formatters={c: str for c in side[0]})
                          if side else table("Models", []))
    summary.tables += _analysis_summaries(a, b)

    deltas_sec = Section("deltas", f"Per-corruption deltas vs A:{ref}",
                         intro="Accuracy of each model of run B minus the baseline of run A "
                               "on the images both runs evaluated (paired, severities 1–5), "
                               "in points; flagged: paired sign-flip test (exact with few "
                               "discordant images) below 0.05 after Holm's correction across "
                               "corruptions; Holm interval (the figure's whiskers): the shifts "
                               "of the Δ the same sign-flip test keeps at the row's Holm step "
                               "level (the test inverted), so it excludes 0 exactly where the "
                               "row is flagged; ±95% unadjusted: for scale only. "
                               "Conditional on the trained networks (test-image noise only).")
    deltas = {label[("B", m)]: corruption_deltas(a_dir / STORE_NAME, ref, b_dir / STORE_NAME, m,
                                                 a.dataset)
              for m in b.model_names}
    rows = []
    for m, ds in deltas.items():
        rows += [{"model": m, "corruption": d["stressor"], "family": d["family"],
                  "images": d["n"], "Δ accuracy": d["delta"],
                  "Holm interval": [d["ci_holm_low"], d["ci_holm_high"]],
                  "±95% unadjusted": d["ci95"],
                  "discordant images": d["n_discordant"], "p": d["p"],
                  "p (Holm)": d["p_holm"], "flagged": d["significant"]} for d in ds]
    if rows:
        _write_csv(out_dir / TABLE_DIR / "compare_deltas.csv", rows)
        path = F.comparison_bars(deltas, f"A:{ref}", out_dir / FIG_DIR / "compare_deltas.png")
        if path:
            deltas_sec.figures.append(figure(out_dir, f"{FIG_DIR}/{path.name}",
                                             f"Run B's models minus A:{ref}, per corruption."))
        deltas_sec.tables.append(table("Deltas per corruption", rows,
                                       csv=f"{TABLE_DIR}/compare_deltas.csv",
                                       formatters={"Δ accuracy": _pt_delta, "Holm interval": _pt_interval,
                                                   "±95% unadjusted": _pt_ci},
                                       max_rows=120))
        for m, d in clean_deltas(a_dir / STORE_NAME, ref, b_dir / STORE_NAME, b.model_names,
                                 a.dataset).items():
            deltas_sec.notes.append(f"Clean accuracy of B:{m} minus A:{ref}: "
                                    f"{d['delta']:+.1f} ± {d['ci95']:.1f} points "
                                    f"on {d['n']} shared images ({d['b_only']} vs "
                                    f"{d['a_only']} discordant, exact McNemar "
                                    f"p = {d['p']:.2g}).")
    else:
        deltas_sec.status = "empty"
        deltas_sec.message = ("The two runs share no corruption cells on the same images "
                              "(different data, subset, seed or stressors), so no paired "
                              "delta can be computed; compare the summaries above instead.")
    html = _env().get_template("compare.html.j2").render(
        a=str(a_dir), b=str(b_dir), a_title=a.title, b_title=b.title,
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        sections=[summary, deltas_sec])
    return write_text_atomic(out_dir / COMPARE_NAME, html)


def _numbers(res) -> dict[str, object]:
    """An analysis's summary and per-model numbers, keyed "number" or "model: number"."""
    if res is None:
        return {}
    out = dict(res.summary)
    for m, vals in res.per_model.items():
        out.update({f"{m}: {k}": v for k, v in vals.items()})
    return out


def _analysis_summaries(a: RunData, b: RunData) -> list:
    out = []
    for name in dict.fromkeys([x.name for x in a.analyses] + [x.name for x in b.analyses]):
        sa, sb = a.ok(name), b.ok(name)
        if not sa and not sb:
            continue
        ka, kb = _numbers(sa), _numbers(sb)
        keys = list(dict.fromkeys(list(ka) + list(kb)))
        rows = [{"number": k.replace("_", " "),
                 "A": fmt(ka.get(k)) if sa else "not run", "B": fmt(kb.get(k)) if sb else "not run"}
                for k in keys]
        view = a.analysis(name) or b.analysis(name)
        if rows and view is not None:
            title = view.title
            out.append(table(f"{title}: summary", rows, formatters={c: str for c in rows[0]}))
    return out
