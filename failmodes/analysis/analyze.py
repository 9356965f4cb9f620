"""``failmodes analyze``: the store analyses of one run (metrics when registered, curves
and regimes, failures) in report order, each writing its JSON and figures.

>>> results = analyze_run("runs/r18")   # doctest: +SKIP
>>> results["curves"].summary["headline"]                                # doctest: +SKIP
'largest drop: 61.2 points under gaussian_noise at severity 5'
"""
from __future__ import annotations

import os
from pathlib import Path

from ..constants import CONFIDENT_THRESHOLD
from ..store import STORE_NAME, RunFolder
from .registry import list_analyses
from .result import AnalysisResult

ANALYZE = ("metrics", "curves", "failures")  # calibration and cam have their own commands


def analyze_run(run_dir: str | os.PathLike, out_dir: str | os.PathLike | None = None, *,
                threshold: float = CONFIDENT_THRESHOLD,
                superclasses: str | None = None) -> dict[str, AnalysisResult]:
    """Run the store analyses of ``run_dir`` into ``out_dir`` (default ``RUN_DIR/analysis``,
    where the study runner writes and the report reads ``<analysis>.json`` and
    ``figures/``).

    threshold: confidence above which a wrong prediction is a high-confidence failure.
    superclasses: superclass map for the failures analysis (YAML file, ``cifar10``,
        ``imagenet``, ``none``; default: built in when the class names allow).
    Returns ``{analysis name: its AnalysisResult}`` in report order.
    """
    run_dir = Path(run_dir)
    if not RunFolder(run_dir).store.is_file():
        raise FileNotFoundError(f"no {STORE_NAME} in {run_dir}; run `failmodes evaluate "
                                f"--out {run_dir}` first")
    out_dir = Path(out_dir) if out_dir is not None else RunFolder(run_dir).analysis
    options = {"failures": {"threshold": threshold, "superclasses": superclasses}}
    return {a.name: a.fn(run_dir, out_dir, **options.get(a.name, {}))
            for a in list_analyses() if a.name in ANALYZE}
