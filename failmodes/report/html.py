"""The study report: one self-contained HTML file (figures as data: URIs, inline CSS, no
script, no network) rendered with jinja2, autoescaped: class names, file names and error
texts are data, never markup. The page is assembled here from the sections
(``sections.py``), the first screen and the explorer (``page.py``).

>>> path = render_report("runs/demo")        # writes runs/demo/report.html  # doctest: +SKIP
"""
from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

import jinja2

from .._atomic import write_text_atomic
from ..errors import FailmodesError
from ..store import REPORT_NAME, RunFolder
from ._collect import collect_run
from .explorer import auto_thumb_budget, check_thumb_budget, content_security_policy
from .page import page_extras
from .sections import build_sections


def _env() -> jinja2.Environment:
    # autoescape=True for every template: nothing from a run is ever trusted as HTML.
    return jinja2.Environment(loader=jinja2.PackageLoader("failmodes.report", "templates"),
                              autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


class ReportError(FailmodesError):
    """A report that would be poorer than the one it replaces; one line (exit 2)."""


def render_report(run_dir: str | os.PathLike, out: str | os.PathLike | None = None, *,
                  thumb_budget: int | None = None, force: bool = False) -> Path:
    """Write ``run_dir/report.html`` and beside it ``figures/`` (report-level figures),
    ``tables/*.csv``, ``results.json`` and ``summary.md`` (the headline tables as Markdown);
    returns the report path.

    ``out``: write the report there instead, and its figures, tables and results.json in
    its folder: nothing is then written into the run folder, which may be read-only.
    ``thumb_budget``: bytes of explorer thumbnails the page may embed (see
    ``check_thumb_budget``). Works on a partial run: sections whose analysis has not run
    say so. A folder without ``results.sqlite`` would give a page of no model in place of
    whatever report is there: refused (ReportError) unless ``force``."""
    from .export import export_tables
    from .summary_md import SUMMARY_NAME, render_summary
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"run folder {run_dir} not found")
    if thumb_budget is not None:
        check_thumb_budget(thumb_budget)
    out = Path(out) if out else run_dir / REPORT_NAME
    if not force and not RunFolder(run_dir).store.is_file():
        there = " and would replace the report there" if out.exists() else ""
        raise ReportError(f"{run_dir} has no results store ({RunFolder(run_dir).store.name}), so "
                          f"its report would show no model{there}; check the folder (`failmodes "
                          "evaluate` writes the store), or pass --force to write it anyway")
    out_dir = out.parent
    run = collect_run(run_dir)
    sections, rows = build_sections(run, out_dir)
    export_tables(run, rows, out_dir)
    write_text_atomic(out_dir / SUMMARY_NAME, render_summary(
        run, rows.get("comparison"), generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M")))
    cfg = (run.resolved or {}).get("config") or {}
    if thumb_budget is None:   # the default: what the figures leave of a ~10 MB page
        thumb_budget = auto_thumb_budget(sum(len(f.src or "") for s in sections
                                             for f in s.figures))
    first, explorer, scripts = page_extras(run, out_dir, thumb_budget)
    html = _env().get_template("report.html.j2").render(
        first=first, explorer=explorer, explorer_js=scripts[0] if scripts else None,
        csp=content_security_policy(scripts),
        title=run.title, description=cfg.get("description", ""), run_dir=str(run_dir),
        generated=_dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        sections=sections, models=run.model_names, baseline=run.baseline,
        n_cells=len(run.acc), n_failed=len(run.failed_cells))
    return write_text_atomic(out, html)
