"""Curve points grouped per curve, shared by the analysis and its figures."""
from __future__ import annotations

from collections import defaultdict


def group_points(rows: list[dict]) -> dict[tuple, list[dict]]:
    """Rows of ``curve_points`` grouped by (model, dataset, stressor), in first-seen order."""
    out = defaultdict(list)
    for r in rows:
        out[(r["model"], r["dataset"], r["stressor"])].append(r)
    return dict(out)
