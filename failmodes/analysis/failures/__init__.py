"""High-confidence failures, confusions and superclasses of a run.

- A **high-confidence failure** is a wrong prediction whose top-1 probability exceeds
  ``confidence_threshold`` (default 0.9). Per cell: count, rate (of all images) and share (of all
  errors); a JSON record per case (the ``max_cases`` most confident per model) and a
  gallery of the most confident ones, clean and shifted.
- **Confusions**: count matrices, per-class accuracy and the most frequent (true →
  predicted) pairs, on clean data, pooled per corruption family (integer severities
  1–5, so a corruption that also has a fine grid does not outweigh the others) and per
  sweep (all values).
- **Superclasses** (``superclasses.py``): accuracy at class and superclass level per cell,
  and the share of errors that stay within the true class's superclass.

>>> result = failures(Path("runs/x"), Path("runs/x/analysis"), confidence_threshold=0.9)  # doctest: +SKIP
>>> result["summary"]["clean_hc_rate"]  # doctest: +SKIP
0.012
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...constants import CONFIDENT_THRESHOLD
from ...store import (
    CLEAN,
    MAIN,
    OFFICIAL,
    UNKNOWN,
    Cell,
    ResultsStore,
    RunFolder,
    cell_images,
    dataset_role,
    stressor_info,
)
from ...stressors.registry import CORRUPTION_FAMILIES
from .._figures import slug
from ..curves import is_shifted
from ..registry import register_analysis, write_result
from ..result import AnalysisResult
from ..superclasses import SuperclassMap, resolve_superclasses
from ._figures import plot_confusions, plot_gallery, plot_per_class

GALLERY_SIZE = 16        # images per gallery figure
GALLERY_PER_CELL = 2     # shifted gallery: at most this many cases from one cell, for variety
MAX_MATRIX_CLASSES = 20  # confusion-matrix and per-class figures only up to this many classes

def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _group(cell: Cell) -> str:
    """The pooling group of a cell: clean, its corruption family, or the sweep's name;
    tagged ``(val)`` / ``(official)`` outside the main dataset."""
    if cell.stressor == CLEAN:
        g = CLEAN
    else:
        fam = stressor_info(cell.stressor).family
        g = cell.stressor if fam in ("sweep", UNKNOWN) else fam
    role = dataset_role(cell.dataset)
    return g if role == MAIN else f"{g} ({role})"


def _cell_dict(cell: Cell) -> dict:
    return {"model": cell.model, "dataset": cell.dataset, "stressor": cell.stressor,
            "severity": cell.severity, "seed": cell.seed}


SINK_SHARE = 0.4  # a class taking this share of a cell's predictions is a sink (4× uniform
                  # on CIFAR-10)


def failure_rows(cell: Cell, pred: dict, confidence_threshold: float, smap: SuperclassMap | None,
                 names: list[str] | None = None) -> dict:
    """Per-cell counts: n, accuracy, errors, high-confidence failures (count, rate, share of
    errors), the most predicted class and its share of predictions (a *sink* class when
    ≥ ``SINK_SHARE``) and, with a superclass map, superclass accuracy and the
    stays-within rate."""
    wrong = pred["pred"] != pred["label"]
    hc = wrong & (pred["conf"] > confidence_threshold)
    n, ne, nh = len(wrong), int(wrong.sum()), int(hc.sum())
    row = {**_cell_dict(cell), "n": n, "accuracy": 1 - ne / n if n else None, "n_errors": ne,
           "n_hc_failures": nh, "hc_rate": nh / n if n else None,
           "hc_share_of_errors": nh / ne if ne else None}
    if n:
        counts = np.bincount(pred["pred"])
        top = int(counts.argmax())
        row["most_predicted"] = names[top] if names else top
        row["most_predicted_share"] = float(counts[top] / n)
    if smap is not None:
        g = smap.singleton_groups()
        row["superclass_accuracy"] = float(np.mean(g[pred["pred"]] == g[pred["label"]]))
        mapped = wrong & (smap.group_of[pred["label"]] >= 0)
        within = mapped & (smap.group_of[pred["pred"]] == smap.group_of[pred["label"]])
        row["n_errors_in_superclasses"] = int(mapped.sum())
        row["errors_within_superclass"] = (float(within.sum() / mapped.sum())
                                           if mapped.any() else None)
        row["errors_within_superclass_chance"] = smap.within_chance(pred["label"][wrong])
    return row


def top_pairs(counts: np.ndarray, class_names: list[str], k: int = 10) -> list[dict]:
    """The ``k`` most frequent off-diagonal (true → predicted) pairs of a count matrix, and
    each pair's share of all errors."""
    off = counts.copy()
    np.fill_diagonal(off, 0)
    total = off.sum()
    flat = np.argsort(-off, axis=None, kind="stable")[:k]
    out = []
    for f in flat:
        t, p = np.unravel_index(f, off.shape)
        if off[t, p] == 0:
            break
        out.append({"true": class_names[t], "predicted": class_names[p], "count": int(off[t, p]),
                    "share_of_errors": float(off[t, p] / total),
                    "reverse_count": int(off[p, t])})
    return out


def _case(cell: Cell, pred: dict, i: int, names: list[str], probs: np.ndarray | None,
          top5: np.ndarray | None) -> dict:
    idx = int(pred["idx"][i])
    if probs is not None:
        order = np.argsort(-probs[i])[:3]
        top3 = [{"id": int(c), "name": names[c], "prob": float(probs[i, c])} for c in order]
    else:
        ids = [int(c) for c in (top5[i][:3] if top5 is not None and len(top5[i]) else
                                [pred["pred"][i]])]
        top3 = [{"id": c, "name": names[c], "prob": float(pred["conf"][i]) if j == 0 else None}
                for j, c in enumerate(ids)]
    sev = f"{cell.severity:g}"
    return {"case_id": f"{cell.model}/{cell.stressor}@{sev}/seed{cell.seed}/{idx}",
            "dataset_index": idx, "cell": _cell_dict(cell), "cell_id": cell.id,
            "true": {"id": int(pred["label"][i]), "name": names[int(pred["label"][i])]},
            "predicted": {"id": int(pred["pred"][i]), "name": names[int(pred["pred"][i])]},
            "confidence": float(pred["conf"][i]), "top3": top3}


def _select_cases(cands: list[tuple], max_cases: int) -> list[tuple]:
    """Most confident first; ties keep the store's cell order."""
    return sorted(cands, key=lambda c: -c[0])[:max_cases]


# ---------------------------------------------------------------------------- the analysis
@dataclass
class FailuresOptions:
    confidence_threshold: float = field(default=CONFIDENT_THRESHOLD, metadata={
        "help": "confidence above which an error is high-confidence",
        "min": 0.0, "max": 0.999999, "flags": ("--threshold",)})
    superclasses: str | None = field(default=None, metadata={
        "help": "superclass map: YAML file, cifar10, imagenet or none "
                "[default: built in when the class names allow]"})
    max_cases: int = field(default=100, metadata={
        "help": "JSON case records kept per model (the most confident)", "min": 0})
    top_k_pairs: int = field(default=10, metadata={
        "help": "most frequent (true → predicted) pairs listed per cell", "min": 1})
    gallery: bool = field(default=True, metadata={
        "help": "draw the galleries of the most confident failures"})


INTRO = ("Wrong predictions made with high confidence, the most frequent confusions and "
         "accuracy at the superclass level (does a wrong answer stay in the right family?).")


@register_analysis("failures", title="High-confidence failures, confusions, superclasses",
                   order=30, options=FailuresOptions, intro=INTRO, analyze=True)
def failures(run_dir: Path, out_dir: Path, *, confidence_threshold: float = CONFIDENT_THRESHOLD,
             superclasses: str | None = None, max_cases: int = 100, top_k_pairs: int = 10,
             gallery: bool = True) -> AnalysisResult:
    """High-confidence failures (conf > ``confidence_threshold``), confusions and superclass accuracy.

    superclasses: None or ``"auto"`` = built-in map when the class names allow (CIFAR-10,
        ImageNet), ``"none"``, ``"cifar10"`` / ``"cifar10-fine"`` / ``"imagenet"``, or a
        YAML file (the same resolution as the Grad-CAM analysis).
    max_cases: JSON case records kept per model: the most confident ``max_cases``, plus
        those the galleries show (the most confident clean ones; shifted ones at most
        ``GALLERY_PER_CELL`` per cell).
    gallery: draw the galleries (re-creates the images from the run's config.json).
    """
    if not 0.0 <= confidence_threshold < 1.0:
        raise ValueError(f"confidence_threshold must be in [0, 1), got {confidence_threshold}")
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    tables = defaultdict(list)
    res = AnalysisResult("failures", params={
        "confidence_threshold": confidence_threshold, "superclasses": superclasses or "auto",
        "max_cases": max_cases, "top_k_pairs": top_k_pairs, "sink_share": SINK_SHARE})
    matrices = []
    with ResultsStore(RunFolder(run_dir).store, readonly=True) as store:
        models = [m["name"] for m in store.models()]
        for model in models:
            if not store.cells(model=model):  # every cell failed: the others still get theirs
                res.notes.append(f"{model}: no stored cells (each of its cells failed or none "
                                 "ran yet), so it is left out of this analysis")
                continue
            names = store.class_names(model)
            smap = resolve_superclasses(superclasses, names)
            out = _model_failures(store, model, names, smap, confidence_threshold, max_cases, top_k_pairs)
            for k, v in out["tables"].items():
                if k == "confusion_matrices":
                    matrices += v
                else:
                    tables[k].extend(v)
            tables["models"].append({"model": model, **out["summary"]})
            res.per_model[model] = out["summary"]
            res.notes.extend(out["notes"])
            if len(names) <= MAX_MATRIX_CLASSES:
                res.add_figure(plot_confusions(out["matrices"], names, out_dir, model), model)
                res.add_figure(plot_per_class(out["per_class"], names, out_dir, model), model)
            else:
                res.notes.append(f"{model}: {len(names)} classes, so no confusion-matrix or "
                                 "per-class figure (see the tables and top pairs).")
            if gallery:
                for f in _galleries(run_dir, out_dir, model, out, confidence_threshold, res.notes):
                    res.add_figure(f, model)
    res.tables = {k: v for k, v in tables.items() if k != "cases"}
    # Cases carry nested top-3 lists and cell keys: raw data, not a table of scalars.
    res.data = {"cases": tables.get("cases", []), "confusion_matrices": matrices}
    write_result(out_dir, "failures", res)
    return res


def _galleries(run_dir, out_dir, model, res, thr, notes) -> list[dict]:
    out = []
    for which in ("clean", "shifted"):
        sel = [res["cases_by_key"][k] for k in res["gallery"][which]]
        if not sel:
            continue
        try:
            fig = plot_gallery(out_dir, sel, _case_images(run_dir, sel, res["cells"]),
                               f"{model}: most confident {which} failures (conf > {thr:g})",
                               f"gallery_{which}_{slug(model)}.png")
        except (OSError, KeyError, ValueError) as e:  # missing config or data: no gallery
            notes.append(f"{model}: no {which} failure gallery ({str(e).splitlines()[0]})")
            continue
        out.append(fig)
    return out


def _case_images(run_dir: Path, cases: list[dict], cells: dict) -> list:
    """The images of ``cases`` (H×W×3 arrays, in order), re-created from the run; raises
    OSError / KeyError / ValueError when the data or config cannot be found."""
    by_cell = defaultdict(list)
    for j, c in enumerate(cases):
        by_cell[c["cell_id"]].append(j)
    images = [None] * len(cases)
    for cid, js in by_cell.items():
        x = cell_images(run_dir, cells[cid], [cases[j]["dataset_index"] for j in js])
        for j, img in zip(js, x):
            images[j] = img.permute(1, 2, 0).cpu().numpy()
    return images


def _gallery_picks(cands: list[tuple], clean_ids: set,
                   shifted_ids: set | None = None) -> dict[str, list[tuple]]:
    """Case keys (cell id, row) of the two galleries from candidates (confidence, cell id,
    row, dataset index): the most confident clean failures, and the most confident shifted
    ones with at most ``GALLERY_PER_CELL`` per cell and each image once."""
    ranked = sorted(cands, key=lambda c: -c[0])
    clean = [c[1:3] for c in ranked if c[1] in clean_ids][:GALLERY_SIZE]
    shifted: list[tuple] = []
    per_cell: defaultdict[int, int] = defaultdict(int)
    seen: set[int] = set()
    for _conf, cid, i, idx in ranked:
        if (cid not in clean_ids and (shifted_ids is None or cid in shifted_ids)
                and per_cell[cid] < GALLERY_PER_CELL and idx not in seen
                and len(shifted) < GALLERY_SIZE):
            per_cell[cid] += 1
            seen.add(idx)
            shifted.append((cid, i))
    return {"clean": clean, "shifted": shifted}


def _model_failures(store, model, names, smap, confidence_threshold, max_cases, k_pairs) -> dict:
    c = len(names)
    cells = store.cells(model=model)
    by_id = {cl.id: cl for cl in cells}
    clean_ids = {cl.id for cl in cells
                 if cl.stressor == CLEAN and dataset_role(cl.dataset) == MAIN}
    keep = max(max_cases, GALLERY_SIZE)  # the overall top-k lies within every cell's top-k
    rows = []
    cands: list[tuple[float, int, int, int]] = []  # (confidence, cell id, row, dataset index)
    mats: dict[str, np.ndarray] = {}
    for cell in cells:
        p = store.predictions(cell)
        rows.append(failure_rows(cell, p, confidence_threshold, smap, names))
        g = _group(cell)
        # Families pool the integer levels only, so a corruption that also has a fine
        # grid does not outweigh its family's others.
        if g == cell.stressor or g.startswith(CLEAN) or float(cell.severity).is_integer():
            m = mats.setdefault(g, np.zeros((c, c), dtype=np.int64))
            np.add.at(m, (p["label"], p["pred"]), 1)
        hc = np.flatnonzero((p["pred"] != p["label"]) & (p["conf"] > confidence_threshold))
        hc = hc[np.argsort(-p["conf"][hc], kind="stable")[:keep]]
        cands.extend((float(p["conf"][i]), cell.id, int(i), int(p["idx"][i])) for i in hc)
    # Clean first, then families in the canonical order, then the rest.
    order = [CLEAN, "noise", "blur", "weather", "digital"]
    mats = dict(sorted(mats.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order
                                                     else len(order), kv[0])))
    shifted_ids = {cl.id for cl in cells if is_shifted(cl.dataset, cl.stressor, cl.severity)}
    gallery = _gallery_picks(cands, clean_ids, shifted_ids)
    chosen = [x[1:3] for x in _select_cases(cands, max_cases)]
    wanted = list(dict.fromkeys(chosen + gallery["clean"] + gallery["shifted"]))
    cases_by_key = {}
    for cid in dict.fromkeys(k[0] for k in wanted):
        cell = by_id[cid]
        full = store.predictions(cell, logits=True)
        probs = (_softmax(full["logits"].astype(np.float64))
                 if full.get("logits") is not None else None)
        top5 = store.top5(cell) if probs is None else None
        for k in wanted:
            if k[0] == cid:
                cases_by_key[k] = _case(cell, full, k[1], names, probs, top5)
    cases = sorted(cases_by_key.values(), key=lambda x: -x["confidence"])
    per_class = {g: np.divide(np.diag(m), m.sum(1), out=np.full(c, np.nan),
                              where=m.sum(1) > 0) for g, m in mats.items()}
    pairs = []
    for g, m in mats.items():
        pairs += [{"model": model, "group": g, **r} for r in top_pairs(m, names, k_pairs)]
    # "all shifted": the corruption families of the main dataset (no sweeps, no official).
    shifted = [m for g, m in mats.items() if g in CORRUPTION_FAMILIES]
    if shifted:
        pairs += [{"model": model, "group": "all shifted", **r}
                  for r in top_pairs(np.sum(shifted, axis=0), names, k_pairs)]
    pcl = [{"model": model, "group": g, "class": names[i], "accuracy": float(a[i])}
           for g, a in per_class.items() for i in range(c)]
    summary, notes = _summarise(model, rows, pairs, smap, confidence_threshold)
    return {"tables": {"cells": rows, "cases": cases, "confusion_pairs": pairs,
                       "per_class_accuracy": pcl,
                       "confusion_matrices": [{"model": model, "group": g,
                                               "classes": names, "counts": m.tolist()}
                                              for g, m in mats.items()]},
            "summary": summary, "notes": notes, "matrices": mats, "per_class": per_class,
            "cases_by_key": cases_by_key, "gallery": gallery, "cells": by_id}


def _pool(rows: list[dict]) -> dict:
    n = sum(r["n"] for r in rows)
    ne = sum(r["n_errors"] for r in rows)
    nh = sum(r["n_hc_failures"] for r in rows)
    return {"n": n, "n_errors": ne, "n_hc": nh, "rate": nh / n if n else None,
            "share": nh / ne if ne else None}


def _shifted(r: dict) -> bool:
    return is_shifted(r["dataset"], r["stressor"], r["severity"])


def _summarise(model, rows, pairs, smap, confidence_threshold):
    main = [r for r in rows if dataset_role(r["dataset"]) == MAIN]
    clean = _pool([r for r in main if r["stressor"] == CLEAN])
    shifted = _pool([r for r in rows if _shifted(r)])
    s = {"clean_hc_count": clean["n_hc"], "clean_hc_rate": clean["rate"],
         "clean_hc_share_of_errors": clean["share"],
         "shifted_hc_count": shifted["n_hc"], "shifted_hc_rate": shifted["rate"],
         "shifted_hc_share_of_errors": shifted["share"]}
    # Reported apart from "shifted": sweeps (natural units) and official CIFAR-10-C cells.
    for tag, sel in (("sweep", [r for r in main if r["stressor"] != CLEAN
                                and stressor_info(r["stressor"]).family == "sweep"]),
                     ("official", [r for r in rows if dataset_role(r["dataset"]) == OFFICIAL])):
        if sel:
            p = _pool(sel)
            s[f"{tag}_hc_count"], s[f"{tag}_hc_rate"] = p["n_hc"], p["rate"]
    notes = []
    if clean["n"]:
        notes.append(f"{model}: {clean['n_hc']} of {clean['n']} clean images "
                     f"({100 * (clean['rate'] or 0):.1f}%) are wrong with confidence > "
                     f"{confidence_threshold:g}: {100 * (clean['share'] or 0):.0f}% of clean errors.")
    if shifted["n"]:
        notes.append(f"{model}: under shift (corruption cells, severities 1–5) "
                     f"{100 * (shifted['rate'] or 0):.1f}% of images are confidently wrong "
                     f"({100 * (shifted['share'] or 0):.0f}% of errors).")
    for g in (CLEAN, "all shifted"):
        top = [p for p in pairs if p["group"] == g][:3]
        if top:
            s[f"top_confusion_{g.replace(' ', '_')}"] = (
                f"{top[0]['true']}→{top[0]['predicted']} ({top[0]['count']})")
            notes.append(f"{model}: most frequent confusions ({g}): " + ", ".join(
                f"{p['true']}→{p['predicted']} {p['count']} (reverse {p['reverse_count']})"
                for p in top) + ".")
    sinks = defaultdict(list)
    for r in rows:
        if _shifted(r) and (r.get("most_predicted_share") or 0) >= SINK_SHARE:
            sinks[r["most_predicted"]].append(r)
    for cls, rs in sorted(sinks.items(), key=lambda kv: -len(kv[1])):
        worst = max(rs, key=lambda r: r["most_predicted_share"])
        where = sorted({r["stressor"] for r in rs})
        notes.append(f"{model}: sink class {cls!r} takes ≥ {100 * SINK_SHARE:.0f}% of the "
                     f"predictions in {len(rs)} shifted cells ({', '.join(where[:6])}"
                     f"{', …' if len(where) > 6 else ''}); up to "
                     f"{100 * worst['most_predicted_share']:.0f}% under {worst['stressor']} "
                     f"{worst['severity']:g}.")
    if sinks:
        s["sink_classes"] = ", ".join(sinks)
    shifted_rows = [r for r in rows if _shifted(r) and r.get("most_predicted_share")]
    if shifted_rows:
        top = max(shifted_rows, key=lambda r: r["most_predicted_share"])
        s["largest_sink"] = (f"{top['most_predicted']} {100 * top['most_predicted_share']:.0f}% "
                             f"under {top['stressor']} {top['severity']:g}")
    if smap is not None:
        s["superclass_map"] = smap.source
        for tag, sel in (("clean", [r for r in main if r["stressor"] == CLEAN]),
                         ("shifted", [r for r in rows if _shifted(r)])):
            n_err = sum(r["n_errors_in_superclasses"] for r in sel)
            if not sel:
                continue
            within = sum((r["errors_within_superclass"] or 0) * r["n_errors_in_superclasses"]
                         for r in sel)
            n = sum(r["n"] for r in sel)
            s[f"{tag}_superclass_accuracy"] = sum(r["superclass_accuracy"] * r["n"]
                                                  for r in sel) / n
            s[f"{tag}_errors_within_superclass"] = within / n_err if n_err else None
            chance = sum((r["errors_within_superclass_chance"] or 0)
                         * r["n_errors_in_superclasses"] for r in sel)
            s[f"{tag}_errors_within_superclass_chance"] = chance / n_err if n_err else None
            if n_err:
                notes.append(f"{model}: {100 * within / n_err:.0f}% of {tag} errors stay "
                             f"within the true class's superclass (chance level "
                             f"{100 * chance / n_err:.0f}%: a wrong class drawn uniformly; "
                             f"{smap.source}: {', '.join(smap.names)}).")
    return s, notes
