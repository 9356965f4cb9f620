"""Degradation curves and their regimes: accuracy, mean confidence and mean true-class
probability vs severity for every stressor and model, the regime of each accuracy curve
(``regimes.py``), the drop per corruption family, the ranking of corruptions by damage,
and the headline the report leads with.

Drops are in percentage points of accuracy, relative to the model's clean cell (severity
0 of every curve). Cells of several seeds at one severity are pooled (image-weighted); they
are the same test images, so ``n_images`` (the sampling floor of the regime fit and the
resampling unit) counts each image once, while ``n`` counts image × seed predictions.
Each regime carries ``label_shares``: the labels of the curve refitted on
``REGIME_RESAMPLES`` paired resamples of its test images (``regimes.label_shares``), and
``confidence`` reads the fitted label's share ("67 % of resamples"); the BIC reading of
the fit is kept as ``bic_confidence``.
Sweeps that run both ways from their identity (rotation −180…180) are folded onto
|value − identity| for the regime fit; their plotted curves stay unfolded.

>>> result = curves(Path("runs/x"), Path("runs/x/analysis"))  # doctest: +SKIP
>>> result["summary"]["headline"]  # doctest: +SKIP
'largest drop: 61.2 points under gaussian_noise at severity 5'
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...constants import REGIME_MIN_LOSS_POINTS, REGIME_RESAMPLE_SEED, REGIME_RESAMPLES
from ...store import (
    CLEAN,
    MAIN,
    OFFICIAL,
    ResultsStore,
    RunFolder,
    dataset_role,
    parse_dataset_key,
    stressor_info,
)
from ...stressors.registry import CIFAR10C_ORDER, CORRUPTION_FAMILIES
from ..registry import register_analysis, write_result
from ..result import AnalysisResult
from ._points import group_points
from .regimes import (
    GRACEFUL_DROP_POINTS,
    REGIMES,
    SHAPE_MIN_POINTS,
    SLOPE_RATIO,
    UNDETERMINED,
    Regime,
    classify_regime,
    label_shares,
)


def is_shifted(dataset: str, stressor: str, severity: float) -> bool:
    """The one meaning of "shifted" in every analysis and the report: a corruption cell
    (noise, blur, weather, digital; not a sweep, not adversarial, not clean) of the main
    dataset at an integer severity 1–5. Sweeps, attacks, official CIFAR-10-C cells and
    fractional or extra severities are reported apart."""
    if stressor == CLEAN or dataset_role(dataset) != MAIN:
        return False
    return (stressor_info(stressor).family in CORRUPTION_FAMILIES
            and float(severity) in (1.0, 2.0, 3.0, 4.0, 5.0))


def clean_cell_for(clean: dict, model: str, dataset: str):
    """The clean cell of a curve: its own dataset's; for the official CIFAR-10-C cells, the
    main dataset's with the same ``split@n`` (the same images, uncorrupted)."""
    if (model, dataset) in clean or dataset_role(dataset) != OFFICIAL:
        return clean.get((model, dataset))
    images = parse_dataset_key(dataset).images
    return next((p for (m, d), p in clean.items() if m == model and dataset_role(d) == MAIN
                 and parse_dataset_key(d).images == images), None)


def curve_points(store: ResultsStore, model: str | None = None) -> list[dict]:
    """One row per (model, dataset, stressor, severity) with seeds pooled: n (predictions,
    images × seeds), n_images (distinct images: seeds of a cell share them), n_seeds,
    accuracy, mean_conf, mean_p_true (fractions), family, and ``clean_accuracy``. The
    model's clean cell is added to every curve at the stressor's identity value unless the
    store holds that severity itself (official CIFAR-10-C curves borrow the main dataset's
    clean cell of the same split and subset)."""
    pooled: dict[tuple, dict] = {}
    for r in store.accuracy_table(model):
        key = (r["model"], r["dataset"], r["stressor"], float(r["severity"]))
        p = pooled.setdefault(key, {"n": 0, "n_seeds": 0, "acc": 0.0, "conf": 0.0, "pt": 0.0,
                                    "n_images": 0})
        n = int(r["n"])
        p["n"] += n
        p["n_images"] = max(p["n_images"], n)
        p["n_seeds"] += 1
        p["acc"] += r["accuracy"] * n
        p["conf"] += r["mean_conf"] * n
        p["pt"] += r["mean_p_true"] * n
    clean = {(m, d): p for (m, d, s, _), p in pooled.items() if s == CLEAN}
    rows = []
    stressors = sorted({(m, d, s) for (m, d, s, _) in pooled if s != CLEAN}, key=_order_key)
    for m, d, s in stressors:
        info = stressor_info(s)
        family, identity = info.family, info.identity
        pts = {sev: p for (m2, d2, s2, sev), p in pooled.items() if (m2, d2, s2) == (m, d, s)}
        c = clean_cell_for(clean, m, d)
        if c is not None and identity not in pts:
            pts[identity] = c
        for sev in sorted(pts):
            p = pts[sev]
            rows.append({"model": m, "dataset": d, "stressor": s, "family": family,
                         "severity": sev, "n": p["n"], "n_images": p["n_images"],
                         "n_seeds": p["n_seeds"],
                         "accuracy": p["acc"] / p["n"], "mean_conf": p["conf"] / p["n"],
                         "mean_p_true": p["pt"] / p["n"],
                         "clean_accuracy": c["acc"] / c["n"] if c else None})
    return rows


def _order_key(key):
    m, d, s = key
    rank = {n: i for i, n in enumerate(CIFAR10C_ORDER)}
    return (m, d, rank.get(s, len(rank)), s)


def fit_regime(points: list[dict]) -> tuple[Regime | None, bool]:
    """The regime of one curve's points (rows of ``curve_points``) and whether the axis
    was folded (a sweep with values on both sides of its identity); None with a single
    severity (no curve at all). The regime's axis is the distance from the identity value
    (the severity for corruptions; e.g. 101 − quality for ``jpeg_quality``). The sampling
    floor uses the distinct images behind each point (``n_images``), not image × seed."""
    x, acc, n, _groups, folded = _regime_axis(points)
    if len(np.unique(x)) < 2:
        return None, folded
    return classify_regime(x, acc, n), folded


def _regime_axis(points: list[dict]):
    """(x, accuracy, n_images, source-point indices per x, folded) of one curve."""
    identity = stressor_info(points[0]["stressor"]).identity
    sev = np.array([p["severity"] for p in points])
    folded = bool(np.any(sev < identity) and np.any(sev > identity))
    x = np.abs(sev - identity)
    acc = np.array([p["accuracy"] for p in points])
    n = np.array([p.get("n_images", p["n"]) for p in points], dtype=np.float64)
    groups = [[i] for i in range(len(points))]
    if folded:  # pool the two sides of each |value| (image-weighted)
        ux = np.unique(x)
        groups = [list(np.flatnonzero(x == u)) for u in ux]
        acc = np.array([np.sum(acc[g] * n[g]) / np.sum(n[g]) for g in groups])
        n = np.array([np.max(n[g]) for g in groups])
        x = ux
    return x, acc, n, groups, folded


class PerImage:
    """Per-image correctness of every done cell of a store, seeds averaged per image:
    ``(model, dataset, stressor, severity) -> (idx, mean correctness)``."""

    def __init__(self, store: ResultsStore):
        keys = {c.id: (c.model, c.dataset, c.stressor, float(c.severity))
                for c in store.cells(status="done")}
        arr = store.correctness()
        starts = [int(i) for i in np.flatnonzero(np.r_[True, arr[1:, 0] != arr[:-1, 0]])] \
            if arr.size else []
        bounds = list(zip(starts, [*starts[1:], len(arr)], strict=True))
        per_key: dict[tuple, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
        for a, b in bounds:
            per_key[keys[int(arr[a, 0])]].append((arr[a:b, 1], arr[a:b, 2].astype(np.float64)))
        self.cells = {}
        for key, seeds in per_key.items():   # seeds of one cell: mean correctness per image
            idx = seeds[0][0]
            for other, _ in seeds[1:]:
                idx = np.intersect1d(idx, other)
            self.cells[key] = (idx, np.mean([v[np.searchsorted(i, idx)] for i, v in seeds],
                                            axis=0))

    def point(self, model: str, dataset: str, stressor: str, severity: float):
        """The cell behind one curve point; the clean cell at the stressor's identity when
        the curve borrowed it (as ``curve_points`` does)."""
        got = self.cells.get((model, dataset, stressor, float(severity)))
        if got is not None or float(severity) != stressor_info(stressor).identity:
            return got
        clean = {(m, d): (m, d, st, sv) for (m, d, st, sv) in self.cells if st == CLEAN}
        key = clean_cell_for(clean, model, dataset)
        return None if key is None else self.cells.get(key)

    def matrix(self, points: list[dict], groups: list[list[int]]) -> np.ndarray | None:
        """(N, K) correctness of the images every point shares (K = len(groups), each group
        averaged per image); None when a point has no per-image rows."""
        got = [[self.point(points[i]["model"], points[i]["dataset"], points[i]["stressor"],
                           points[i]["severity"]) for i in g] for g in groups]
        if any(v is None for g in got for v in g):
            return None
        common = got[0][0][0]
        for g in got:
            for idx, _ in g:
                common = np.intersect1d(common, idx)
        if common.size == 0:
            return None
        cols = [np.mean([v[np.searchsorted(idx, common)] for idx, v in g], axis=0)
                for g in got]
        return np.stack(cols, 1)


CHANCE_MARGIN_POINTS = 5.0  # a plateau this close to chance accuracy is the chance floor


def regimes_table(rows: list[dict], n_classes: dict[str, int] | None = None,
                  per_image: PerImage | None = None) -> tuple[list[dict], dict]:
    """Rows (one per curve) with the regime and its evidence; and the fitted Regime
    objects keyed by (model, dataset, stressor) for plotting.

    With ``per_image`` (the store's per-image correctness) each row gets the labels'
    shares over paired resamples of its images (``label_shares``, ``n_resamples``,
    ``n_images``) and ``confidence`` = the fitted label's share; without it ``confidence``
    is the BIC reading (``bic_confidence``).

    ``n_classes`` (per model) adds ``plateau_at_chance``: an early-damage plateau whose
    fitted end level is within ``CHANCE_MARGIN_POINTS`` of chance (100/C %) is a model that
    has nothing left to lose, not one that stabilised."""
    table, fitted = [], {}
    for key, pts in group_points(rows).items():
        regime, folded = fit_regime(pts)
        fitted[key] = (regime, folded)
        base = pts[0]["clean_accuracy"]
        if base is None:
            base = pts[0]["accuracy"]
        worst = min(pts, key=lambda p: p["accuracy"])
        row = {"model": key[0], "dataset": key[1], "stressor": key[2],
               "family": pts[0]["family"], "n_severities": len(pts),
               "clean_accuracy": base, "max_drop": 100 * (base - worst["accuracy"]),
               "worst_severity": worst["severity"], "folded": folded}
        if regime is None:
            row.update({"regime": None, "reason": "a single severity: no curve"})
        else:
            d = regime.to_dict()
            row.update({"regime": d.pop("label"), **{k: d[k] for k in (
                "shape", "breakpoint", "slope_before", "slope_after", "total_drop",
                "fitted_drop", "observed_drop", "bic_margin", "runner_up", "label_margin",
                "confidence", "reason")}})
            row["bic_confidence"] = row["confidence"]
            row.update(_shares(pts, regime, per_image))
            end = float(regime.predict(max(abs(p["severity"] - stressor_info(key[2]).identity)
                                           for p in pts)))
            row["end_accuracy_fitted"] = end / 100
            c = (n_classes or {}).get(key[0])
            row["plateau_at_chance"] = (c is not None and row["regime"] == "early-damage-plateau"
                                        and end - 100 / c < CHANCE_MARGIN_POINTS)
        table.append(row)
    return table, fitted


def share_key(label: str) -> str:
    """The regimes table's column of one label's share: ``share_early_damage_plateau``."""
    return "share_" + label.replace("-", "_")


def _shares(pts: list[dict], regime: Regime, per_image: PerImage | None) -> dict:
    """Scalar columns: each label's share of the paired resamples, the fitted label's
    share, and ``label_shares`` as text ("linear 67 % / early-damage-plateau 33 %")."""
    empty = {"label_shares": None, "n_resamples": None, "n_images": None, "label_share": None,
             **{share_key(lab): None for lab in REGIMES + (UNDETERMINED,)}}
    if per_image is None or len(regime.fits) < 2:   # one candidate shape: nothing to resample
        return empty
    x, _acc, _n, groups, _folded = _regime_axis(pts)
    c = per_image.matrix(pts, groups)
    if c is None:
        return empty
    shares = label_shares(x, c, REGIME_RESAMPLES, REGIME_RESAMPLE_SEED)
    share = shares.get(regime.label, 0.0)
    return {"label_shares": " / ".join(f"{k} {_pct(v)}" for k, v in shares.items()),
            "n_resamples": REGIME_RESAMPLES, "n_images": int(c.shape[0]), "label_share": share,
            **{share_key(lab): shares.get(lab, 0.0) for lab in REGIMES + (UNDETERMINED,)},
            "confidence": f"{100 * share:.0f} % of resamples"}


def _pct(v: float) -> str:
    return "< 1 %" if 0 < v < 0.01 else f"{100 * v:.0f} %"


def _integer_levels(pts: list[dict]) -> list[dict]:
    """Severities > 0 on the integer CIFAR-10-C levels when the curve has any, else all."""
    pos = [p for p in pts if p["severity"] > 0]
    ints = [p for p in pos if float(p["severity"]).is_integer()]
    return ints or pos


def damage_ranking(rows: list[dict]) -> list[dict]:
    """Corruptions of each model ranked by mean drop over severities 1–5 (points)."""
    out = []
    by_model = defaultdict(list)
    for (m, d, s), pts in group_points(rows).items():
        if pts[0]["family"] not in CORRUPTION_FAMILIES:
            continue
        base = pts[0]["clean_accuracy"]
        if base is None:
            continue
        levels = _integer_levels(pts)
        if not levels:
            continue
        drops = [100 * (base - p["accuracy"]) for p in levels]
        worst = int(np.argmax(drops))
        by_model[(m, d)].append({"model": m, "dataset": d, "stressor": s,
                                 "family": pts[0]["family"], "mean_drop": float(np.mean(drops)),
                                 "max_drop": drops[worst], "at_severity": levels[worst]["severity"]})
    for key in by_model:
        ranked = sorted(by_model[key], key=lambda r: -r["mean_drop"])
        for i, r in enumerate(ranked, 1):
            out.append({"rank": i, **r})
    return out


def family_drops(ranking: list[dict]) -> list[dict]:
    """Mean drop (points, over corruptions and severities 1–5) per family and model."""
    out = []
    groups = defaultdict(list)
    for r in ranking:
        groups[(r["model"], r["dataset"], r["family"])].append(r)
    models = sorted({(r["model"], r["dataset"]) for r in ranking}, key=lambda k: k)
    for m, d in models:
        for fam in CORRUPTION_FAMILIES:
            rs = groups.get((m, d, fam))
            if not rs:
                continue
            worst = max(rs, key=lambda r: r["mean_drop"])
            out.append({"model": m, "dataset": d, "family": fam, "n_corruptions": len(rs),
                        "mean_drop": float(np.mean([r["mean_drop"] for r in rs])),
                        "worst_corruption": worst["stressor"], "worst_mean_drop": worst["mean_drop"]})
    return out


def headline(rows: list[dict]) -> dict | None:
    """The largest drop of any corruption cell (sweeps and attacks only when there is no
    corruption):
    {model, stressor, severity, drop (points), sentence}."""
    cands = [r for r in rows if r["clean_accuracy"] is not None and r["severity"] != 0]
    corr = [r for r in cands if r["family"] in CORRUPTION_FAMILIES]
    cands = corr or cands
    if not cands:
        return None
    r = max(cands, key=lambda r: r["clean_accuracy"] - r["accuracy"])
    drop = 100 * (r["clean_accuracy"] - r["accuracy"])
    models = {x["model"] for x in rows}
    where = "severity" if r["family"] in CORRUPTION_FAMILIES else "value"
    text = f"largest drop: {drop:.1f} points under {r['stressor']} at {where} {r['severity']:g}"
    if len(models) > 1:
        text += f" ({r['model']})"
    return {"model": r["model"], "stressor": r["stressor"], "severity": r["severity"],
            "drop": drop, "sentence": text}


# ---------------------------------------------------------------------------- the analysis
@dataclass
class CurvesOptions:
    """The curves analysis takes no options: its rules are the constants of ``regimes``."""


INTRO = ("How accuracy and confidence fall as severity rises. Each curve is fitted with "
         "competing shapes and labelled with its failure regime: graceful, linear, "
         "threshold-collapse (flat, then a cliff late in the range), delayed-onset "
         "(unaffected at the mildest severities, then a steady fall) or "
         "early-damage-plateau.")


@register_analysis("curves", title="Degradation curves and regimes", order=20,
                   options=CurvesOptions, intro=INTRO, analyze=True)
def curves(run_dir: Path, out_dir: Path) -> AnalysisResult:
    """Curves, regimes, family drops, damage ranking and the headline of a run's store."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    with ResultsStore(RunFolder(run_dir).store, readonly=True) as store:
        rows = curve_points(store)
        n_classes = {m["name"]: len(m["class_names"]) for m in store.models()}
        per_image = PerImage(store)
    regimes, fitted = regimes_table(rows, n_classes, per_image)
    ranking = damage_ranking(rows)
    fam = family_drops(ranking)
    head = headline(rows)
    res = AnalysisResult("curves", params={
        "graceful_drop_points": GRACEFUL_DROP_POINTS, "slope_ratio": SLOPE_RATIO,
        "min_loss_points": REGIME_MIN_LOSS_POINTS, "n_resamples": REGIME_RESAMPLES,
        "resample_seed": REGIME_RESAMPLE_SEED,
        "min_points": dict_items(SHAPE_MIN_POINTS), "chance_margin_points": CHANCE_MARGIN_POINTS})
    from ._figures import plot_curves, plot_family_drops
    for m, d in dict.fromkeys((r["model"], r["dataset"]) for r in rows):
        res.add_figure(plot_curves(rows, fitted, out_dir, m, d), model=m)
    if fam:
        res.add_figure(plot_family_drops(fam, out_dir))
    res.summary = {"headline": head["sentence"] if head else "no stressed cells in the store",
                   "largest_drop_points": head["drop"] if head else None,
                   "largest_drop_model": head["model"] if head else None,
                   "largest_drop_stressor": head["stressor"] if head else None,
                   "largest_drop_severity": head["severity"] if head else None}
    for m in dict.fromkeys(r["model"] for r in regimes):
        mine = [r for r in regimes if r["model"] == m]
        pm = {"n_curves": len(mine)}
        pm.update({f"n_{lab.replace('-', '_')}": sum(r["regime"] == lab for r in mine)
                   for lab in REGIMES + (UNDETERMINED,)})
        h = headline([r for r in rows if r["model"] == m])
        if h:
            pm.update({"largest_drop_points": h["drop"], "largest_drop_stressor": h["stressor"],
                       "largest_drop_severity": h["severity"]})
        res.per_model[m] = pm
    res.notes = _notes(regimes, fam, rows)
    res.tables = {"regimes": regimes, "curves": rows, "family_drops": fam,
                  "damage_ranking": ranking}
    write_result(out_dir, "curves", res)
    return res


def dict_items(d: dict) -> list[str]:
    return [f"{k}={v}" for k, v in d.items()]


def _notes(regimes: list[dict], fam: list[dict], rows: list[dict]) -> list[str]:
    notes = []
    for m in dict.fromkeys(r["model"] for r in regimes):
        by = defaultdict(list)
        for r in regimes:
            if r["model"] == m and r["regime"] is not None:
                by[r["regime"]].append(r["stressor"])
        if by:
            parts = [f"{lab}: {', '.join(by[lab])}" for lab in REGIMES + (UNDETERMINED,)
                     if by.get(lab)]
            notes.append(f"{m} regimes — " + "; ".join(parts) + ".")
        chance = [r["stressor"] for r in regimes if r["model"] == m and r.get("plateau_at_chance")]
        if chance:
            notes.append(f"{m}: the plateau of {', '.join(chance)} lies at chance accuracy: "
                         "damage stops because nothing is left to lose, not because the "
                         "model stabilises.")
        f = [r for r in fam if r["model"] == m]
        if f:
            worst = max(f, key=lambda r: r["mean_drop"])
            best = min(f, key=lambda r: r["mean_drop"])
            notes.append(f"{m}: {worst['family']} corruptions hurt most "
                         f"({worst['mean_drop']:.1f} points on average), "
                         f"{best['family']} least ({best['mean_drop']:.1f}).")
    for m in dict.fromkeys(r["model"] for r in regimes):
        rising = []
        for (m2, _d, st), pts in group_points(rows).items():
            if m2 != m or len(pts) < 2:
                continue
            clean = min(pts, key=lambda p: abs(p["severity"] - stressor_info(st).identity))
            far = max(pts, key=lambda p: abs(p["severity"] - stressor_info(st).identity))
            if (far["mean_conf"] > clean["mean_conf"]
                    and clean["accuracy"] - far["accuracy"] >= GRACEFUL_DROP_POINTS / 100):
                rising.append(st)
        if rising:
            notes.append(f"{m}: mean confidence rises while accuracy falls under "
                         f"{', '.join(rising)}: the model grows surer as it grows wrong.")
    if any(r["clean_accuracy"] is None for r in rows):
        notes.append("some models have no clean cell; their drops are relative to the "
                     "lowest stored severity.")
    return notes
