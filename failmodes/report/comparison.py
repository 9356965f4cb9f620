"""Model comparison from results stores: per-model headline accuracies and per-corruption
accuracy deltas with paired tests.

Two models of a study see the very same corrupted images (the stressor randomness keys on
the image index), so a delta is a paired difference: per image, d = correct_B − correct_A.
Under one corruption an image appears once per severity (integer severities 1–5 only); its
d is first averaged over the severities so that every test counts images, not image ×
severity pairs. A per-corruption delta is *flagged* when its paired sign-flip test (exact
with few discordant images; McNemar's exact test for one severity) stays below 0.05 after
Holm's correction across the corruptions of the comparison. Its interval
(``ci_holm_low``/``ci_holm_high``, the figure's whiskers and the tables' Holm interval)
inverts that same test at the corruption's Holm step level: the shifts δ of the delta for
which the sign-flip test of d − δ keeps p at or above the level, so it excludes 0 exactly
when the row is flagged; ``ci95`` is the unadjusted normal 95 % half-width. Tests and
intervals are conditional on the two trained networks: they count test-image noise, not
training-seed variation.

>>> rows = corruption_deltas("runs/demo/results.sqlite", "a",
...                          "runs/demo/results.sqlite", "b")  # doctest: +SKIP
>>> rows[0]["stressor"], rows[0]["delta"]   # delta in accuracy points, B minus A  # doctest: +SKIP
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np

from ..analysis.paired import (
    ALPHA,
    EXACT_MAX,
    MONTE_CARLO_DRAWS,
    MONTE_CARLO_MAX,
    holm,
    mcnemar_exact,
    sign_flip_p,
)
from ..store import paired_sums, stressor_family
from ..stressors.registry import CORRUPTION_FAMILIES

# Two-sided 95 % normal quantile: the intervals are normal approximations on ≥ 100 images.
Z95 = 1.959964
BENCHMARK_SEVERITIES = (1.0, 2.0, 3.0, 4.0, 5.0)


def model_facts(acc_rows: list[dict]) -> list[dict]:
    """Per model (and dataset, when a store holds several): clean accuracy, mean accuracy over
    the corruption cells (integer severities 1–5: "shifted") of *every* corruption evaluated
    (``n_corruptions``, named by ``mean_label``, e.g. "mean accuracy, 19 corruptions": not the
    mCA of the 15 benchmark corruptions), the largest drop from clean and the cell where it
    happens.

    Accuracies are fractions in [0, 1]; ``largest_drop`` is clean minus the worst cell.
    """
    by_model: dict[tuple, list[dict]] = defaultdict(list)
    for r in acc_rows:
        by_model[(r["model"], r["dataset"])].append(r)
    several = len({d for _, d in by_model}) > 1
    out = []
    for (model, dataset), rows in by_model.items():
        clean = [r for r in rows if r["stressor"] == "clean"]
        corr = [r for r in rows if stressor_family(r["stressor"]) in CORRUPTION_FAMILIES
                and float(r["severity"]) in BENCHMARK_SEVERITIES]
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
            "n_corruptions": len({r["stressor"] for r in corr}),
            "mean_label": f"mean accuracy, {len({r['stressor'] for r in corr})} corruptions",
            "largest_drop": (clean_acc - worst["accuracy"]) if worst and clean_acc is not None
            else None,
            "worst_stressor": worst["stressor"] if worst else None,
            "worst_severity": worst["severity"] if worst else None,
            "worst_acc": worst["accuracy"] if worst else None,
        })
    return out


def corruption_accuracy(acc_rows: list[dict], model: str) -> dict[str, dict]:
    """``{stressor: {"family", "mean", "by_severity": {sev: acc}}}`` of one model's corruption
    cells at integer severities 1–5, in the order the rows come (the store orders by
    stressor name)."""
    out: dict[str, dict] = {}
    for r in acc_rows:
        if r["model"] != model or r["stressor"] == "clean":
            continue
        fam = stressor_family(r["stressor"])
        if fam not in CORRUPTION_FAMILIES or float(r["severity"]) not in BENCHMARK_SEVERITIES:
            continue
        e = out.setdefault(r["stressor"], {"family": fam, "by_severity": {}})
        e["by_severity"][float(r["severity"])] = r["accuracy"]
    for e in out.values():
        e["mean"] = sum(e["by_severity"].values()) / len(e["by_severity"])
    return out


def _half_width(d) -> float:
    d = [float(x) for x in d]
    n = len(d)
    mean = sum(d) / n
    var = sum((x - mean) ** 2 for x in d) / max(n - 1, 1)
    return Z95 * math.sqrt(var / n)


def corruption_deltas(store_a: str | Path, model_a: str, store_b: str | Path,
                      model_b: str, dataset: str | None = None) -> list[dict]:
    """Per corruption: B's accuracy minus A's on the images both evaluated (integer
    severities 1–5), in points, with the normal 95 % half-width ``ci95`` (points), ``n``
    images, the paired sign-flip ``p`` (``test``: exact / monte-carlo / normal), ``p_holm``
    (Holm across these corruptions) and ``significant`` (``p_holm`` < 0.05). Only cells in
    both stores count (of ``dataset`` only, when given); clean and sweeps are left out."""
    rows = paired_sums(store_a, model_a, store_b, model_b, dataset, per="image")
    per: dict[str, list[float]] = defaultdict(list)
    for stressor, _idx, d in rows:
        per[stressor].append(float(d))
    return _in_registry_order(delta_rows(per))


def delta_rows(per: dict[str, list[float]]) -> list[dict]:
    """The rows of ``corruption_deltas`` from per-image paired differences per stressor
    (non-corruptions are left out): delta, ``ci95`` (unadjusted), ``ci_holm_low/high`` (at the Holm
    step level), the sign-flip ``p``, ``p_holm`` and ``significant``."""
    out: list[dict] = []
    for stressor, d in per.items():
        fam = stressor_family(stressor)
        if fam not in CORRUPTION_FAMILIES or not d:  # attacks are per model: never paired
            continue
        p, how = sign_flip_p(d)
        out.append({"stressor": stressor, "family": fam, "n": len(d),
                    "delta": 100 * sum(d) / len(d), "ci95": 100 * _half_width(d),
                    "n_discordant": sum(x != 0 for x in d), "p": p, "test": how})
    for r, q in zip(out, holm([r["p"] for r in out])):
        r["p_holm"] = q
        r["significant"] = q < ALPHA
    for r, level in zip(out, holm_levels([r["p"] for r in out])):
        r["holm_level"] = level
        lo, hi = holm_interval(per[r["stressor"]], level, r["significant"])
        r["ci_holm_low"], r["ci_holm_high"] = 100 * lo, 100 * hi
    return out


# Bisection stops when the bracket is this narrow (fraction: 0.01 accuracy points).
INTERVAL_TOL = 1e-4


def holm_interval(d, level: float, flagged: bool) -> tuple[float, float]:
    """The row's interval at its Holm step level, by inverting the test that flags it: the
    shifts δ (fraction) for which the sign-flip test of ``d − δ`` keeps p ≥ ``level``.

    Each end is found by bisection between a kept and a rejected shift; 0 enters as the
    table's own decision (``flagged``: rejected, else kept), so the interval excludes 0
    exactly when the row is flagged. The ends are the kept side of a bracket narrower than
    ``INTERVAL_TOL``, clipped to [−1, 1] (a difference of accuracies)."""
    x = np.asarray(d, dtype=np.float64)
    m = float(x.mean())
    p = _shifted_p(x)

    def kept(delta: float) -> bool:
        if delta == 0.0:
            return not flagged
        return p(delta) >= level

    def end(direction: float) -> float:
        acc = m
        rej = None
        if (0.0 - m) * direction > 0:              # 0 lies on this side
            if kept(0.0):
                acc = 0.0
            else:
                rej = 0.0
        step = max(INTERVAL_TOL, abs(acc - m), 1e-3)
        while rej is None:
            cand = acc + direction * step
            if abs(cand) >= 1.0:
                cand = math.copysign(1.0, direction)
                if kept(cand):
                    return cand
                rej = cand
            elif kept(cand):
                acc, step = cand, 2 * step
            else:
                rej = cand
        while abs(rej - acc) > INTERVAL_TOL:
            mid = 0.5 * (acc + rej)
            if kept(mid):
                acc = mid
            else:
                rej = mid
        return acc

    return end(-1.0), end(1.0)


def _shifted_p(d: np.ndarray):
    """δ -> the sign-flip p-value of ``d − δ`` (``sign_flip_p``). When every shifted value
    is non-zero and the test would draw Monte Carlo signs, the seeded sign matrix is the
    same for every δ, so its products with ``d`` and with 1 are computed once."""
    n = d.size
    if not EXACT_MAX < n <= MONTE_CARLO_MAX:
        return lambda delta: sign_flip_p(d - delta)[0]
    signs = (np.random.default_rng(0).integers(0, 2, (MONTE_CARLO_DRAWS, n)) * 2 - 1
             ).astype(np.float64)
    sd, s1 = signs @ d, signs.sum(1)

    def p(delta: float) -> float:
        z = d - delta
        mags = np.abs(z)
        if np.any(z == 0) or np.all(np.abs(mags - mags[0]) <= 1e-12 * mags[0]):
            return sign_flip_p(z)[0]      # another branch of the test: call it
        t = abs(z.sum())
        tol = 1e-9 * max(1.0, t)
        hits = int(np.sum(np.abs(sd - delta * s1) >= t - tol))
        return (hits + 1) / (MONTE_CARLO_DRAWS + 1)
    return p


def holm_levels(pvals: list[float], alpha: float = ALPHA) -> list[float]:
    """Per test, the two-sided level its interval is drawn at so that it excludes 0 where
    Holm rejects: α/(m − rank) in the order of increasing p while Holm keeps rejecting, and
    the level of the first test it keeps for every test after it (step-down)."""
    m = len(pvals)
    levels = [alpha] * m
    stop = None
    for rank, i in enumerate(sorted(range(m), key=lambda i: pvals[i])):
        level = alpha / (m - rank)
        if stop is None and pvals[i] >= level:
            stop = level
        levels[i] = level if stop is None else stop
    return levels


def cell_deltas(store_a: str | Path, model_a: str, store_b: str | Path,
                model_b: str, dataset: str | None = None) -> list[dict]:
    """Per shared cell (stressor, severity, clean included): B − A accuracy in points, the
    normal ci95, the discordant counts (``b_only`` right, ``a_only`` right) and McNemar's
    exact two-sided ``p``."""
    rows = paired_sums(store_a, model_a, store_b, model_b, dataset, per="discordant")
    out = []
    for stressor, sev, n, s, b_only, a_only in rows:
        mean = s / n
        # d is in {-1, 0, 1}: its variance is (b + c)/n − mean², sample-corrected.
        var = max((b_only + a_only) / n - mean * mean, 0.0) * n / max(n - 1, 1)
        out.append({"stressor": stressor, "severity": sev, "family": stressor_family(stressor),
                    "n": n, "delta": 100 * mean, "ci95": 100 * Z95 * math.sqrt(var / n),
                    "b_only": int(b_only), "a_only": int(a_only),
                    "p": mcnemar_exact(b_only, a_only)})
    return out


def clean_deltas(store_a: str | Path, model_a: str, store_b: str | Path, models_b: list[str],
                 dataset: str | None = None) -> dict[str, dict]:
    """``{model of B: its clean-cell delta row}`` for the models of B that share a clean cell
    with A's ``model_a``; a model without one is absent (never given another's numbers)."""
    out = {}
    for m in models_b:
        d = next((d for d in cell_deltas(store_a, model_a, store_b, m, dataset)
                  if d["stressor"] == "clean"), None)
        if d is not None:
            out[m] = d
    return out


def _in_registry_order(rows: list[dict], key: str = "stressor") -> list[dict]:
    from ..stressors import list_stressors
    rank = {n: i for i, n in enumerate(list_stressors())}
    return sorted(rows, key=lambda r: (rank.get(r[key], len(rank)), r[key]))


def comparison_table(store: str | Path, acc_rows: list[dict], baseline: str,
                     others: list[str], dataset: str | None = None) -> list[dict]:
    """One row per corruption: the baseline's mean accuracy (%), and per other model its
    accuracy, delta vs the baseline and the paired interval at its Holm step level
    (``Holm interval``: [low, high]; all in points)."""
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
            r[f"Holm interval {m}"] = [d["ci_holm_low"], d["ci_holm_high"]]
            r[f"p (Holm) {m}"] = d["p_holm"]
    return _in_registry_order(list(rows.values()), key="corruption")
