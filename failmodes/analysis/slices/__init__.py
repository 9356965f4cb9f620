"""Failure slices: groups of images whose error rate is far above the rest of their cell,
described in words a person can check, and each image's breaking point.

- **Attributes** (``_attributes``), computed once from the *clean* images of the evaluated
  data set (they describe the image, the cell says what was done to it): background
  (border band) and centre colour names, HSV of both regions, RMS contrast, colourfulness,
  edge energy; each cut at its quartiles.
- **Representation** (``_features``): the penultimate-layer features of the clean images,
  one forward pass per model with no gradients (like Grad-CAM's sample: DESIGN's one
  exception to "analyses never run a model", because stored logits are C numbers tied to
  the prediction, and clusters of them mostly re-find the predicted class), clustered with
  k-means; ``features: logits`` clusters the stored clean logits instead, without running
  anything.
- **Search** (``_find``): every bin, pair of bins and cluster in every cell of a model, one
  Benjamini-Hochberg family per model (FDR ≤ q over every slice of every cell), one-sided
  Fisher exact tests, Wilson intervals; the top slices of each cell, non-redundant, with
  confusions, a sentence and typical thumbnails.
- **Breaking points** (``_breaks``): per image and corruption, the lowest severity whose
  prediction is wrong while the clean one was right; Spearman ρ (bootstrap interval) of it
  with each attribute, and the slice search on "breaks at ≤ ``breaks_at``".

>>> result = run_slices("runs/x", "runs/x/analysis")                  # doctest: +SKIP
>>> result.notes[0]                                                   # doctest: +SKIP
'clean: blue background (border hue 195–255°): ship → airplane (41), 31 % errors vs ...'
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..._device import resolve_device
from ...store import CLEAN, stressor_family
from ..registry import Headline, register_analysis, write_result
from ..result import AnalysisResult
from ._attributes import (
    BINNED,
    COLOURS,
    Attributes,
    Condition,
    attribute_conditions,
    attribute_values,
    image_attributes,
)
from ._breaks import breaking_points, correctness_matrix, rank_correlations, rank_table
from ._claims import ConcentrationVerdict, check_claim, check_concentration
from ._describe import format_p, slice_sentence, typical_images
from ._errors import SliceError
from ._features import penultimate_features
from ._figures import plot_strips
from ._find import Slice, SliceSearch, bh_adjust, cluster_conditions, find_slices

__all__ = ["COLOURS", "Attributes", "ConcentrationVerdict", "SliceError", "SliceSearch",
           "attribute_conditions", "attribute_values", "breaking_points", "check_claim",
           "check_concentration",
           "cluster_conditions", "correctness_matrix", "find_slices", "image_attributes",
           "penultimate_features", "rank_correlations", "run_slices", "slice_sentence"]

FEATURES = ("penultimate", "logits", "none")
HIGHLIGHTS = 3          # slices per model shown as sentences and thumbnail strips, per kind


@dataclass
class SlicesOptions:
    features: str = field(default="penultimate", metadata={
        "help": "what the clusters group: penultimate (one forward pass of the clean images "
                "per model), logits (the stored clean logits) or none"})
    clusters: int = field(default=8, metadata={"help": "k-means clusters per model", "min": 2})
    bins: int = field(default=4, metadata={
        "help": "quantile bins per numeric attribute (2-4)", "min": 2, "max": 4})
    max_order: int = field(default=2, metadata={
        "help": "conditions per slice: 1 (single bins) or 2 (pairs too)", "min": 1, "max": 2})
    q: float = field(default=0.05, metadata={
        "help": "Benjamini-Hochberg false-discovery rate over every slice of a model",
        "min": 1e-6, "max": 0.5})
    top: int = field(default=5, metadata={"help": "slices listed per cell", "min": 1})
    thumbnails: int = field(default=6, metadata={
        "help": "typical images shown per highlighted slice", "min": 1})
    breaks_at: float = field(default=2.0, metadata={
        "help": "severity of the 'breaks early' slice view (breaks at ≤ this)"})
    n_boot: int = field(default=200, metadata={
        "help": "bootstrap resamples of each rank correlation", "min": 20})
    seed: int = field(default=0, metadata={"help": "k-means and bootstrap seed"})
    device: str = field(default="auto", metadata={"help": "device of the feature pass"})


INTRO = ("Groups of images that fail far more often than the rest, found from attributes "
         "computed from the pixels (background and centre colour, brightness, contrast, "
         "colourfulness, edge energy) and from clusters of the model's own features; each is "
         "tested with a one-sided Fisher exact test, Benjamini-Hochberg over every slice of a "
         "model, and said in one sentence. Below them, the severity at which each image first "
         "breaks under each corruption, and which attributes make images break early.")

HEADLINES = (
    Headline("clean_slices", "failure slices on clean images", "ratio", higher_is_better=False,
             note="significant slices listed for the clean cell (BH over all slices)"),
    Headline("clean_top_slice_error", "error rate in the worst clean slice", "fraction",
             higher_is_better=False, note="the clean cell's first slice, smallest p"),
)


def _check(features: str, breaks_at: float) -> None:
    if features not in FEATURES:
        raise SliceError(f"features must be one of {', '.join(FEATURES)}, got {features!r}")
    if not breaks_at > 0:
        raise SliceError(f"breaks_at must be a severity above 0, got {breaks_at!r}")


def _cell_name(cell) -> str:
    return "clean" if cell.stressor == CLEAN else f"{cell.stressor} {cell.severity:g}"


@register_analysis("slices", title="Failure slices and breaking points", order=35,
                   options=SlicesOptions, intro=INTRO, headlines=HEADLINES)
def run_slices(run_dir, out_dir, *, features: str = "penultimate", clusters: int = 8,
               bins: int = 4, max_order: int = 2, q: float = 0.05, top: int = 5,
               thumbnails: int = 6, breaks_at: float = 2.0, n_boot: int = 200, seed: int = 0,
               device: str = "auto") -> AnalysisResult:
    """Slices and breaking points of every model of the run in ``run_dir`` on its main data
    set; writes ``out_dir/slices.json`` and ``out_dir/figures/slices_<model>.png``."""
    _check(features, breaks_at)
    from ...evaluate import open_run
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    res = AnalysisResult("slices", params={
        "features": features, "clusters": clusters, "bins": bins, "max_order": max_order,
        "q": q, "correction": "Benjamini-Hochberg over every slice of every cell of a model",
        "test": "one-sided Fisher exact (slice error rate above the rest of its cell)",
        "interval": "Wilson 95 %", "top": top, "breaks_at": breaks_at, "n_boot": n_boot,
        "seed": seed, "attributes_from": "clean images"},
        tables={"slices": [], "breaking_points": [], "break_correlations": [],
                "early_breaks": []})
    with open_run(run_dir) as ctx:
        ds, key = ctx.dataset(), ctx.dataset_key()
        for name in ctx.model_names():
            cells = ctx.store.cells(model=name, dataset=key)
            clean = [c for c in cells if c.stressor == CLEAN]
            if not clean:
                res.notes.append(f"{name}: no clean cell of {key}; no slices.")
                continue
            shifted = sorted((c for c in cells if c.stressor != CLEAN),
                             key=lambda c: (stressor_family(c.stressor), c.stressor,
                                            c.severity, c.seed))
            _model(res, ctx, run_dir, out_dir, name, [clean[0], *shifted], ds, features,
                   clusters, bins, max_order, q, top, thumbnails, breaks_at, n_boot, seed,
                   device)
    write_result(out_dir, "slices", res)
    return res


def _aligned(store, cells, ds):
    """Per-cell rows in one image order (the clean cell's), the positions of those images
    in ``ds``, and the cells whose images differ (left out)."""
    rows = [store.predictions(c) for c in cells]
    idx = rows[0]["idx"]
    order = np.argsort(ds.indices.numpy())
    pos = order[np.searchsorted(ds.indices.numpy()[order], idx).clip(max=len(order) - 1)]
    if not np.array_equal(ds.indices.numpy()[pos], idx):
        raise SliceError("the clean cell's images are not those of the run's data set")
    keep = [j for j, r in enumerate(rows) if np.array_equal(r["idx"], idx)]
    return [cells[j] for j in keep], [rows[j] for j in keep], pos, len(cells) - len(keep)


def _features(ctx, name, x_u8, features, device, notes, clean_cell):
    """(N×D features, what they are) or (None, "none")."""
    if features == "none":
        return None, "none"
    if features == "penultimate":
        from ...models.tta import without_tta
        try:
            model = without_tta(ctx.model(name, resolve_device(device)))
            feats = []
            for i in range(0, len(x_u8), 512):
                x = x_u8[i:i + 512].permute(0, 3, 1, 2).float().div(255.0)
                feats.append(penultimate_features(model, x))
            return np.concatenate(feats), "penultimate features"
        except Exception as e:  # a model that cannot be rebuilt or has no Linear head
            notes.append(f"{name}: penultimate features unavailable ({type(e).__name__}: "
                         f"{str(e)[:120]}); clusters use the stored clean logits.")
    logits = ctx.store.predictions(clean_cell, logits=True)["logits"]
    if logits is None:
        notes.append(f"{name}: no stored logits; slices use the attributes only.")
        return None, "none"
    return logits, "stored clean logits"


def _model(res, ctx, run_dir, out_dir, name, cells, ds, features, clusters, bins, max_order,
           q, top, thumbnails, breaks_at, n_boot, seed, device) -> None:
    cells, rows, pos, dropped = _aligned(ctx.store, cells, ds)
    if dropped:
        res.notes.append(f"{name}: {dropped} cell(s) hold other images than the clean cell "
                         "and are left out of the slice search.")
    classes = ctx.store.class_names(name)
    labels = rows[0]["label"]
    wrong = np.stack([r["pred"] != r["label"] for r in rows])
    preds = np.stack([r["pred"] for r in rows])
    x_u8 = ds.images[torch.as_tensor(pos)]
    attrs = image_attributes(x_u8)
    conds = attribute_conditions(attrs, n_bins=bins)
    feats, feats_from = _features(ctx, name, x_u8, features, device, res.notes, cells[0])
    coords = attrs.matrix()
    fcoords = None
    if feats is not None and len(feats) >= clusters:
        conds = conds + cluster_conditions(feats, k=clusters, seed=seed)
        sd = feats.std(0)
        fcoords = (feats - feats.mean(0)) / np.where(sd > 0, sd, 1.0)
    search = find_slices(conds, wrong, labels=labels, preds=preds, class_names=classes, q=q,
                         max_order=max_order)
    tops = [search.top(c, n=top) for c in range(len(cells))]
    for c, cell in enumerate(cells):
        for rank, s in enumerate(tops[c], start=1):
            res.tables["slices"].append(_row(name, cell, rank, s))
    highlights = [(cells[0], s) for s in tops[0][:HIGHLIGHTS]]
    shifted = sorted(((s.p_adj, c, s) for c in range(1, len(cells)) for s in tops[c][:1]),
                     key=lambda t: t[0])
    # Shifted cells: the best slice of each corruption, unless the clean cell (or another
    # corruption) already said it: one new sentence per corruption, at most HIGHLIGHTS.
    seen = {s.description for _, s in highlights}
    stressors: set[str] = set()
    for _, c, s in shifted:
        if (cells[c].stressor not in stressors and s.description not in seen
                and len(highlights) < 2 * HIGHLIGHTS):
            stressors.add(cells[c].stressor)
            seen.add(s.description)
            highlights.append((cells[c], s))
    for cell, s in highlights:
        res.notes.append(f"{name}, {_cell_name(cell)}: {slice_sentence(s)}.")
    if not tops[0]:
        res.notes.append(f"{name}: no significant slice on the clean images "
                         f"(q {q:g}, {search.n_tested_per_cell} slices tested per cell).")
    strips = _strips(run_dir, ds, rows[0]["idx"], highlights, coords, fcoords, classes,
                     thumbnails, res.notes)
    if strips:
        res.add_figure(plot_strips(out_dir, name, strips), model=name)
    res.per_model[name] = {
        "clean_slices": len(tops[0]),
        "clean_top_slice_error": tops[0][0].rate if tops[0] else None,
        "slices_tested_per_cell": search.n_tested_per_cell, "cells": len(cells),
        "significant_slices": int((search.p_adj <= q).sum()),
        "clusters_from": feats_from if fcoords is not None else "none"}
    _breaks(res, name, cells, wrong, preds, labels, attrs, conds, classes, q, max_order,
            top, breaks_at, n_boot, seed)


def _row(model: str, cell, rank: int, s: Slice) -> dict:
    t, p, k = s.confusions[0] if s.confusions else ("", "", 0)
    return {"model": model, "stressor": cell.stressor, "severity": float(cell.severity),
            "seed": cell.seed, "rank": rank, "slice": s.description, "n": s.n,
            "errors": s.n_wrong, "error_rate": s.rate, "ci_low": s.ci[0], "ci_high": s.ci[1],
            "rest_error_rate": s.rate_rest, "p": s.p, "p_bh": s.p_adj,
            "top_confusion": f"{t} → {p}" if k else "", "top_confusion_count": k,
            "sentence": slice_sentence(s)}


def _strips(run_dir, ds, idx, highlights, coords, fcoords, classes, k, notes) -> list[dict]:
    from ...store import cell_images
    out = []
    for cell, s in highlights:
        space = fcoords if s.conditions[0][0] == "cluster" and fcoords is not None else coords
        at = typical_images(s, space, k)
        if not at:
            continue
        try:
            x = cell_images(run_dir, cell, idx[at])
            shown = _cell_name(cell)
        except Exception as e:  # an attack's images need the model; the report runs none
            notes.append(f"thumbnails of {_cell_name(cell)} show the clean images "
                         f"({type(e).__name__})")
            x = ds.images[torch.as_tensor(np.searchsorted(ds.indices.numpy(), idx[at]))] \
                .permute(0, 3, 1, 2).float() / 255
            shown = "clean"
        u8 = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        caps = [f"{classes[int(s._labels[i])][:10]} → {classes[int(s._preds[i])][:10]}"
                for i in at]
        out.append({"title": f"{shown}: {slice_sentence(s)}", "images": u8, "captions": caps})
    return out


def _breaks(res, name, cells, wrong, preds, labels, attrs, conds, classes, q, max_order, top,
            breaks_at, n_boot, seed) -> None:
    clean_ok = ~wrong[0]
    by: dict[str, list[int]] = {}
    for c, cell in enumerate(cells[1:], start=1):
        first_seed = min(x.seed for x in cells[1:] if x.stressor == cell.stressor)
        if cell.seed == first_seed and cell.severity > 0:
            by.setdefault(cell.stressor, []).append(c)
    if not by or clean_ok.sum() < 3:
        return
    numeric = {k: attrs.numeric[k] for k in BINNED if k in attrs.numeric}
    keep = np.flatnonzero(clean_ok)
    outcome, pred_at, names = [], [], []
    brks: dict[str, np.ndarray] = {}
    for stressor, cs in by.items():
        sev = np.array([cells[c].severity for c in cs])
        brk = brks[stressor] = breaking_points(sev, ~wrong[cs], clean_ok)
        b = brk[keep]
        finite = np.isfinite(b)
        res.tables["breaking_points"].append({
            "model": name, "stressor": stressor, "n_right_clean": len(b),
            "broken_by_lowest": float(np.mean(b <= sev.min())),
            f"broken_by_{breaks_at:g}": float(np.mean(b <= breaks_at)),
            "never_broken": float(np.mean(~finite)),
            "median_breaking_severity": (float(np.median(b)) if np.median(b) < np.inf
                                         else None)})
        order = np.argsort(sev)
        first = wrong[np.asarray(cs)[order]].argmax(0)      # the cell where it broke
        pa = np.where(np.isfinite(brk) & clean_ok,
                      preds[np.asarray(cs)[order][first], np.arange(len(labels))], labels)
        outcome.append((brk <= breaks_at)[keep])
        pred_at.append(pa[keep])
        names.append(stressor)
    bins = {(cd.key[0], cd.key[1]): cd.mask for cd in conds}
    best = []
    for r in rank_table(brks, numeric, n_boot=n_boot, seed=seed):
        brk = brks[r["stressor"]]
        low, high = bins.get((r["attribute"], "low")), bins.get((r["attribute"], "high"))
        row = {"model": name, **r,
               "broken_low": _share(brk, low, clean_ok),
               "broken_high": _share(brk, high, clean_ok),
               "median_break_low": _median(brk, low, clean_ok),
               "median_break_high": _median(brk, high, clean_ok)}
        res.tables["break_correlations"].append(row)
        best.append(row)
    # BH over every (corruption, attribute) correlation of the model: only those it keeps
    # are said in words.
    p_bh = bh_adjust(np.array([r["p"] for r in best], float))
    for r, pb in zip(best, p_bh, strict=True):
        r["p_bh"] = float(pb)
    kept = [r for r in best if r["p_bh"] <= q]
    for row in sorted(kept, key=lambda r: -abs(r["rho"]))[:HIGHLIGHTS]:
        res.notes.append(f"{name}: {_break_sentence(row)}")
    sub = [Condition(cd.key, cd.mask[keep], cd.text) for cd in conds]
    sub = [cd for cd in sub if cd.mask.any()]
    search = find_slices(sub, np.stack(outcome), labels=labels[keep], preds=np.stack(pred_at),
                         class_names=classes, q=q, max_order=max_order)
    what = f"break by severity {breaks_at:g}"
    for c, stressor in enumerate(names):
        for rank, s in enumerate(search.top(c, n=top), start=1):
            res.tables["early_breaks"].append({
                "model": name, "stressor": stressor, "rank": rank, "slice": s.description,
                "n": s.n, "broken": s.n_wrong, "broken_rate": s.rate,
                "rest_broken_rate": s.rate_rest, "p_bh": s.p_adj,
                "sentence": slice_sentence(s, what=what)})


def _share(brk, mask, clean_ok):
    if mask is None or not (mask & clean_ok).any():
        return None
    return float(np.isfinite(brk[mask & clean_ok]).mean())


def _median(brk, mask, clean_ok):
    if mask is None or not (mask & clean_ok).any():
        return None
    m = float(np.median(brk[mask & clean_ok]))
    return m if np.isfinite(m) else None


def _break_sentence(r: dict) -> str:
    lab = r["attribute"].replace("_", " ")

    def med(v):
        return f"{v:g}" if v is not None else "never"
    lo, hi = r["median_break_low"], r["median_break_high"]
    medians = (f"median breaking severity {med(lo)} vs {med(hi)}; "
               if lo is not None or hi is not None else "")
    return (f"under {r['stressor']}, {100 * r['broken_low']:.0f} % of the images with low "
            f"{lab} break within the sweep vs {100 * r['broken_high']:.0f} % with high {lab} "
            f"({medians}Spearman ρ {r['rho']:+.2f}, 95 % bootstrap CI {r['lo']:+.2f} to "
            f"{r['hi']:+.2f}, p {format_p(r['p_bh'])} BH-adjusted, n {r['n']}).")
