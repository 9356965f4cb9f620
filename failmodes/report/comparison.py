"""Model comparison from results stores: per-model headline accuracies and per-corruption
accuracy deltas with paired 95 % confidence intervals.

Two models of a study see the very same corrupted images (the stressor randomness keys on
the image index), so a delta is a paired difference: per image, d = correct_B − correct_A.
Under one corruption an image appears once per severity; its d is first averaged over the
severities so that the interval counts images, not image × severity pairs.

>>> rows = corruption_deltas("runs/demo/results.sqlite", "a", "runs/demo/results.sqlite", "b")  # doctest: +SKIP
>>> rows[0]["stressor"], rows[0]["delta"]   # delta in accuracy points, B minus A  # doctest: +SKIP
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

from ..store import paired_sums, stressor_family

# Two-sided 95 % normal quantile: the intervals are normal approximations on ≥ 100 images.
Z95 = 1.959964


def model_facts(acc_rows: list[dict]) -> list[dict]:
    """Per model (and dataset, when a store holds several): clean accuracy, mean accuracy over
    the corruption cells, the largest drop from clean and the cell where it happens.

    Accuracies are fractions in [0, 1]; ``largest_drop`` is clean minus the worst cell.
    """
    by_model: dict[tuple, list[dict]] = defaultdict(list)
    for r in acc_rows:
        by_model[(r["model"], r["dataset"])].append(r)
    several = len({d for _, d in by_model}) > 1
    out = []
    for (model, dataset), rows in by_model.items():
        clean = [r for r in rows if r["stressor"] == "clean"]
        corr = [r for r in rows if stressor_family(r["stressor"]) not in ("clean", "sweep")
                and r["severity"] > 0]
        clean_acc = sum(r["accuracy"] * r["n"] for r in clean) / sum(r["n"] for r in clean) \
            if clean else None
        mean_corr = sum(r["accuracy"] for r in corr) / len(corr) if corr else None
        worst = min(corr, key=lambda r: r["accuracy"]) if corr else None
        out.append({
            "model": f"{model} [{dataset}]" if several else model,
            "store_model": model, "dataset": dataset,
            "n_images": clean[0]["n"] if clean else None,
            "clean_acc": clean_acc,
            "mean_corruption_acc": mean_corr,
            "n_corruption_cells": len(corr),
            "largest_drop": (clean_acc - worst["accuracy"]) if worst and clean_acc is not None
            else None,
            "worst_stressor": worst["stressor"] if worst else None,
            "worst_severity": worst["severity"] if worst else None,
            "worst_acc": worst["accuracy"] if worst else None,
        })
    return out


def corruption_accuracy(acc_rows: list[dict], model: str) -> dict[str, dict]:
    """``{stressor: {"family", "mean", "by_severity": {sev: acc}}}`` of one model's corruption
    cells, in the order the rows come (the store orders by stressor name)."""
    out: dict[str, dict] = {}
    for r in acc_rows:
        if r["model"] != model or r["stressor"] == "clean":
            continue
        fam = stressor_family(r["stressor"])
        if fam == "sweep" or r["severity"] <= 0:
            continue
        e = out.setdefault(r["stressor"], {"family": fam, "by_severity": {}})
        e["by_severity"][float(r["severity"])] = r["accuracy"]
    for e in out.values():
        e["mean"] = sum(e["by_severity"].values()) / len(e["by_severity"])
    return out


def _interval(n: int, s: float, ss: float) -> tuple[float, float]:
    mean = s / n
    var = max(ss / n - mean * mean, 0.0) * n / max(n - 1, 1)
    return mean, Z95 * math.sqrt(var / n)


def corruption_deltas(store_a: str | Path, model_a: str, store_b: str | Path,
                      model_b: str, dataset: str | None = None) -> list[dict]:
    """Per corruption: B's accuracy minus A's on the images both evaluated, in points
    (percent), with the paired 95 % half-width ``ci95`` (points) and ``n`` images.

    Rows also carry ``family`` and ``significant`` (the interval excludes 0). Only cells
    present in both stores count (of ``dataset`` only, when given); clean and sweep cells
    are left out.
    """
    rows = paired_sums(store_a, model_a, store_b, model_b, dataset, per="stressor")
    out = []
    for stressor, n, s, ss in rows:
        fam = stressor_family(stressor)
        if fam in ("clean", "sweep") or not n:
            continue
        mean, half = _interval(n, s, ss)
        out.append({"stressor": stressor, "family": fam, "n": n, "delta": 100 * mean,
                    "ci95": 100 * half, "significant": abs(mean) > half})
    return _in_registry_order(out)


def cell_deltas(store_a: str | Path, model_a: str, store_b: str | Path,
                model_b: str, dataset: str | None = None) -> list[dict]:
    """Per shared cell (stressor, severity, clean included): B − A accuracy in points, ci95."""
    rows = paired_sums(store_a, model_a, store_b, model_b, dataset, per="cell")
    out = []
    for stressor, sev, n, s, ss in rows:
        mean, half = _interval(n, s, ss)
        out.append({"stressor": stressor, "severity": sev, "family": stressor_family(stressor),
                    "n": n, "delta": 100 * mean, "ci95": 100 * half})
    return out


def _in_registry_order(rows: list[dict], key: str = "stressor") -> list[dict]:
    from ..stressors import list_stressors
    rank = {n: i for i, n in enumerate(list_stressors())}
    return sorted(rows, key=lambda r: (rank.get(r[key], len(rank)), r[key]))


def comparison_table(store: str | Path, acc_rows: list[dict], baseline: str,
                     others: list[str], dataset: str | None = None) -> list[dict]:
    """One row per corruption: the baseline's mean accuracy (%), and per other model its
    accuracy, delta vs the baseline and the paired ci95 (all in points)."""
    base = corruption_accuracy(acc_rows, baseline)
    rows = {s: {"corruption": s, "family": e["family"], baseline: 100 * e["mean"]}
            for s, e in base.items()}
    for m in others:
        acc_m = corruption_accuracy(acc_rows, m)
        for d in corruption_deltas(store, baseline, store, m, dataset):
            r = rows.get(d["stressor"])
            if r is None:
                continue
            r[m] = 100 * acc_m[d["stressor"]]["mean"] if d["stressor"] in acc_m else None
            r[f"Δ {m}"] = d["delta"]
            r[f"±95% {m}"] = d["ci95"]
    return _in_registry_order(list(rows.values()), key="corruption")
