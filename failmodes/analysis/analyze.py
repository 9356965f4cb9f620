"""``failmodes analyze``: the store analyses of one run (those registered with
``analyze=True``: metrics, curves and regimes, failures) in report order, each writing its
JSON and figures.

>>> results = analyze_run("runs/r18")   # doctest: +SKIP
>>> results["curves"].summary["headline"]                                # doctest: +SKIP
'largest drop: 61.2 points under gaussian_noise at severity 5'
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..store import STORE_NAME, RunFolder
from .registry import Analysis, list_analyses
from .result import AnalysisResult


def analyze_analyses() -> list[Analysis]:
    """The analyses ``failmodes analyze`` runs, in report order (calibration and cam have
    commands of their own)."""
    return [a for a in list_analyses() if a.analyze]


def analyze_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None,
                **options: Any) -> dict[str, AnalysisResult]:
    """Run the store analyses of ``run_dir`` into ``out_dir`` (default ``RUN_DIR/analysis``,
    where the study runner writes and the report reads ``<analysis>.json`` and
    ``figures/``).

    options: fields of those analyses' options dataclasses by name (one name is one concept:
        ``confidence_threshold`` goes to every analysis that takes it); a name none of them
        takes raises ``TypeError``.
    Returns ``{analysis name: its AnalysisResult}`` in report order.
    """
    run_dir = Path(run_dir)
    if not RunFolder(run_dir).store.is_file():
        raise FileNotFoundError(f"no {STORE_NAME} in {run_dir}; run `failmodes evaluate "
                                f"--out {run_dir}` first")
    out_dir = Path(out_dir) if out_dir is not None else RunFolder(run_dir).analysis
    chosen = analyze_analyses()
    known = {f.name for a in chosen for f in dataclasses.fields(a.options)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"analyze_run: unknown option(s) {', '.join(unknown)} "
                        f"(allowed: {', '.join(sorted(known))})")
    return {a.name: a.run(run_dir, out_dir, a.parse_options(_own(a, options), a.name))
            for a in chosen}


def _own(a: Analysis, options: Mapping[str, Any]) -> dict[str, Any]:
    return {f.name: options[f.name] for f in dataclasses.fields(a.options) if f.name in options}
