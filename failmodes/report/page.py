"""The report's first screen and explorer, as the template's context: kept apart from
``html.py`` (the sections) so each side changes on its own.

>>> first, explorer, scripts = page_extras(collect_run("runs/demo"))   # doctest: +SKIP
"""
from __future__ import annotations

from pathlib import Path

from ..analysis.curves.regimes import REGIMES
from ..store.sanity import sanity_warnings
from ._collect import RunData
from .explorer import build_explorer_data, explorer_script, page_context
from .first_screen import card_rows, first_screen


def page_extras(run: RunData, out_dir: Path | None = None,
                thumb_budget: int | None = None) -> tuple[dict, dict | None, list[str]]:
    """(first screen, explorer context or None, the inline scripts the page runs); the first
    screen's figures go under ``out_dir/figures`` (default: the run folder)."""
    fs = first_screen(run, out_dir)
    first = {"cards": card_rows(fs), "claims": fs.claims, "claims_message": fs.claims_message,
             "figures": fs.figures, "gaps": fs.gaps, "headline": fs.headline,
             "attacks": fs.attacks, "evaluated": bool(run.acc), "severities": fs.severities,
             "regime_labels": ", ".join(REGIMES),
             # what looks broken (chance-level clean accuracy, mean/std off the [0, 1]
             # scale): the same lines the evaluation printed
             "warnings": sanity_warnings(run.models, run.acc)}
    kw = {} if thumb_budget is None else {"thumb_budget": thumb_budget}
    data = build_explorer_data(run.run_dir, run.dataset, models=run.model_names or None,
                               **kw) if run.dataset else None
    if data is None:
        return first, None, []
    return first, page_context(data), [explorer_script()]
