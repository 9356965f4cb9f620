"""Machine-readable outputs beside the report: ``results.json`` (headline numbers, every
cell's accuracy, each analysis's status and summary) and CSV tables under ``tables/``."""
from __future__ import annotations

import csv
import datetime as _dt
import io
import json
from pathlib import Path

from .._atomic import write_text_atomic
from ..store import RESULTS_NAME
from ..store import TABLES_DIR as TABLE_DIR
from ._collect import AnalysisView, RunData
from .comparison import model_facts


def _write_csv(path: Path, rows: list[dict]) -> Path:
    cols: list[str] = []
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(k)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in r.items()})
    return write_text_atomic(path, buf.getvalue())


def _numbers(a: AnalysisView) -> dict:
    if a.status != "ok" or a.result is None:
        return {"summary": None}
    return {"summary": a.result.summary, "per_model": a.result.per_model,
            "params": a.result.params}


def export_tables(run: RunData, own: dict[str, list[dict]],
                  root: Path | None = None) -> dict[str, Path]:
    """Write ``tables/*.csv`` and ``results.json`` for ``run`` under ``root`` (default: the
    run folder); ``own``: the report's own tables (``comparison``, ``adversarial``) by
    name. Returns name -> path."""
    from .sections import _csv_name
    root = Path(root) if root is not None else run.run_dir
    out = {}
    if run.acc:
        out["accuracy_cells"] = _write_csv(root / TABLE_DIR / "accuracy_cells.csv", run.acc)
    for name, got in own.items():
        if got:
            out[name] = _write_csv(root / TABLE_DIR / f"{name}.csv", got)
    for a in run.analyses:
        res = a.result if a.status == "ok" else None
        if res is None:
            continue
        for tname, rows in res.tables.items():
            if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
                out[f"{a.name}__{tname}"] = _write_csv(root / _csv_name(a.name, tname), rows)
    results = {
        "study": run.title,
        "generated": _dt.datetime.now().isoformat(timespec="seconds"),
        "baseline": run.baseline,
        "models": model_facts(run.acc),
        "cells": run.acc,
        "failed_cells": run.failed_cells,
        "comparison": own.get("comparison", []),
        "attacks": own.get("adversarial", []),
        "analyses": {a.name: {"status": a.status, "message": a.message, **_numbers(a)}
                     for a in run.analyses},
        "probes": [{"spec": p["spec"], "status": p["status"], "error": p["error"]}
                   for p in run.probes],
        "tables": {k: str(v.relative_to(root)) for k, v in out.items()},
    }
    from ..analysis.registry import _finite
    out["results"] = write_text_atomic(root / RESULTS_NAME, json.dumps(_finite(results), indent=1,
                                                              default=str))
    return out
