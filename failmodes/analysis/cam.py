"""Grad-CAM analysis of a run: failure explanations, failure categories, attention drift
under corruption, and whether drift predicts failure.

- **Failure explanations**: for high-confidence failures (wrong, confidence > 0.9) of the
  store's clean and corrupted cells, the CAM of the predicted (wrong) class next to the
  CAM of the true class (a figure), capped at ``failures_per_cell`` per cell (most
  confident first).
- **Failure categories** (rule in ``_cam_core.categorize_failure``): fine-grained (same
  superclass), context/background (predicted-class CAM mostly in the border band, or
  little overlap with the true-class CAM), other; counts clean and per corruption family.
- **Attention drift**: on a fixed, class-stratified sample (``sample`` images chosen by
  ``seed`` from the data set alone, so every model sees the same images) the CAM of the
  *clean-predicted class* (``target="clean"``; ``"pred"`` uses each level's prediction) on
  clean and every corruption × severity, compared with the clean CAM: Pearson and
  Spearman correlation, centre-of-mass shift (pixels), entropy, border-band share.
  Drift of an image = 1 − Spearman correlation with its clean CAM.
- **Drift vs failure**: across (corruption, severity) cells, Spearman correlation of mean
  drift with the accuracy drop (store accuracy over the full test set when the cell is
  stored, else the sample's); per image, drift of images that flip from right to wrong vs
  those that stay right (means and a two-sided Mann–Whitney U p-value; pairs pool every
  cell, so one image counts once per cell).

Default cost: Grad-CAM of 200 images × 19 corruptions × 5 severities with a width-16
ResNet-18 is ~19 000 CAMs, about 4 minutes on one busy CPU core (bench/cam_drift.py);
the whole analysis of a small CNN took 100 s. ``sample`` and ``stressors`` cut it down.

>>> result = run_cam("runs/demo", "runs/demo", sample=100, stressors=["fog", "gaussian_noise"])  # doctest: +SKIP
>>> result["summary"]["drift_acc_spearman_r"]  # doctest: +SKIP
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .._atomic import save_figure_atomic
from .._device import resolve_device
from ._cam_core import (BORDER_BAND, FAILURE_TYPES, METHODS, OVERLAP_THRESHOLD, CamError,
                        border_mask, border_share, categorize_failure, compute_cams,
                        drift_metrics, overlap, superclass_lookup)
from ..store import RunFolder, stress_like_cell, stressor_family
from .registry import register_analysis, write_result

log = logging.getLogger(__name__)

DRIFT_METRICS = ("pearson", "spearman", "com_shift_px", "entropy", "border_share")
CONF_THRESHOLD = 0.9
DEFAULT_SEVERITIES = (1.0, 2.0, 3.0, 4.0, 5.0)

__all__ = ["CamError", "DriftResult", "METHODS", "attention_drift", "cam_analysis",
           "drift_failure_link", "explain_failures", "run_cam"]


# ----------------------------------------------------------------------------- entry point
@register_analysis("cam", title="Grad-CAM: failure explanations and attention drift", order=50)
def run_cam(run_dir, out_dir, *, method: str = "gradcam", sample: int = 200,
            layer: str | None = None, stressors: Sequence[str] | None = None,
            seed: int = 0, target: str = "clean", failures_per_cell: int = 8,
            conf_threshold: float = CONF_THRESHOLD, superclasses: str = "auto",
            device: str = "auto", batch_size: int = 128,
            models: Sequence[str] | None = None) -> dict:
    """The ``cam`` analysis of the run in ``run_dir`` (its store and models), written to
    ``out_dir/cam.json`` and ``out_dir/figures/cam_*.png``; returns the same dict.

    ``stressors`` None = every corruption the store holds cells of, at its severities.
    """
    _check_options(method, target, sample)
    from ..evaluate import open_run
    run_dir = Path(run_dir)
    if not RunFolder(run_dir).store.exists():
        raise CamError(f"no results store at {RunFolder(run_dir).store}; run `failmodes evaluate` "
                       "first")
    dev = resolve_device(device)
    with open_run(run_dir) as ctx:
        return cam_analysis(ctx.store, lambda name: ctx.model(name, dev), ctx.dataset(),
                            out_dir, dataset_key=ctx.dataset_key(), method=method,
                            sample=sample, layer=layer, stressors=stressors, seed=seed,
                            target=target, failures_per_cell=failures_per_cell,
                            conf_threshold=conf_threshold, superclasses=superclasses,
                            batch_size=batch_size, models=models)



def cam_analysis(store, load_model: Callable[[str], torch.nn.Module], dataset, out_dir, *,
                 dataset_key: str | None = None, method: str = "gradcam", sample: int = 200,
                 layer: str | None = None,
                 stressors: Sequence[str] | None = None, seed: int = 0, target: str = "clean",
                 failures_per_cell: int = 8, conf_threshold: float = CONF_THRESHOLD,
                 superclasses: str = "auto", batch_size: int = 128,
                 models: Sequence[str] | None = None, montage_cols: int = 8) -> dict:
    """The analysis on an open ``ResultsStore``, a ``name -> Classifier`` loader and the
    run's ``Dataset`` (whose ``indices`` are the store's ``idx``); only cells of
    ``dataset_key`` (None = all) are read, so validation and official CIFAR-10-C cells,
    whose images the stressors cannot rebuild, stay out. See ``run_cam``."""
    _check_options(method, target, sample)
    superclass_of = superclass_lookup(superclasses, dataset.classes)
    out_dir = Path(out_dir)
    (out_dir / "figures").mkdir(parents=True, exist_ok=True)
    names = [m["name"] for m in store.models()]
    if models:
        missing = [m for m in models if m not in names]
        if missing:
            raise CamError(f"model(s) {', '.join(missing)} not in {store.path}; "
                           f"stored: {', '.join(names)}")
        names = list(models)
    if not names:
        raise CamError(f"{store.path} holds no models; run `failmodes evaluate` first")

    tables = ("cam_drift_max_severity", "cam_drift", "cam_failure_types", "cam_drift_link")
    result = {"summary": {}, "figures": [], "tables": {t: [] for t in tables},
              "notes": [], "models": {},
              "config": {"method": method, "layer": layer, "sample": sample, "seed": seed,
                         "target": target, "failures_per_cell": failures_per_cell,
                         "conf_threshold": conf_threshold, "superclasses": superclasses,
                         "border_band": BORDER_BAND,
                         "border_area": 1 - (1 - 2 * BORDER_BAND) ** 2,
                         "overlap_threshold": OVERLAP_THRESHOLD,
                         "drift": "1 - Spearman correlation with the clean CAM"}}
    for name in names:
        model = load_model(name)
        why = getattr(model, "cam_unavailable", None)  # ONNX, TorchScript: models/exported.py
        if why:
            result["notes"].append(f"{name}: no Grad-CAM: {why}.")
            result["models"][name] = {"cam_unavailable": why}
            continue
        _model_section(result, store, name, model, dataset, out_dir,
                       stressors=stressors, sample=sample, seed=seed, method=method,
                       layer=layer, target=target, failures_per_cell=failures_per_cell,
                       conf_threshold=conf_threshold, superclass_of=superclass_of,
                       batch_size=batch_size, montage_cols=montage_cols,
                       dataset_key=dataset_key)
        _summarise(result, name, result["models"][name], prefix=len(names) > 1)

    write_result(out_dir, "cam", result)
    return result


def _model_section(result: dict, store, name: str, model, dataset, out_dir: Path, *,
                   stressors, sample, seed, method, layer, target, failures_per_cell,
                   conf_threshold, superclass_of, batch_size, montage_cols,
                   dataset_key) -> None:
    """Drift, link, failures and figures of one model, added to ``result``."""
    cells = [c for c in store.cells(model=name)
             if dataset_key is None or c.dataset == dataset_key]
    grid = _stressor_grid(cells, stressors)
    log.info("cam: %s: drift over %d stressors", name, len(grid))
    drift = attention_drift(model, dataset, grid, sample=sample, seed=seed, method=method,
                            layer=layer, target=target, batch_size=batch_size)
    link = drift_failure_link(drift, _store_accuracy(store, name, dataset_key))
    fails = explain_failures(model, dataset, store, cells, stressors=[g[0] for g in grid],
                             method=method, layer=layer, per_cell=failures_per_cell,
                             conf_threshold=conf_threshold, batch_size=batch_size,
                             superclass_of=superclass_of)
    types = failure_type_counts(fails)
    largest = drift.largest_drift()
    result["models"][name] = {
        "sample_indices": drift.indices.tolist(), "drift": drift.curves(),
        "largest_drift_stressor": largest, "link": link, "failure_types": types,
        "n_failures_categorised": len(fails.records), "n_high_conf_failures": fails.n_total,
        "prediction_reproduced": fails.reproduced, "failures": fails.records}

    tables = result["tables"]
    rows = drift.table()
    tables["cam_drift"] += [{"model": name, **r} for r in rows]
    top = {}
    for r in rows:  # the highest severity of each stressor
        if r["stressor"] not in top or r["severity"] > top[r["stressor"]]["severity"]:
            top[r["stressor"]] = r
    tables["cam_drift_max_severity"] += [{"model": name, **r} for r in top.values()]
    tables["cam_failure_types"] += [{"model": name, "group": g, **c} for g, c in types.items()]
    tables["cam_drift_link"].append({"model": name, **_flat_link(link)})

    figdir, tag, figs = out_dir / "figures", _safe(name), []
    if drift.cells:
        figs.append((plot_drift_curves(drift, figdir / f"cam_drift_{tag}.png", name),
                     f"{name}: CAM drift from the clean CAM vs severity, one line per "
                     f"corruption ({len(drift.indices)} fixed images)"))
        sev = drift.severities(largest)
        figs.append((plot_montage(model, dataset, drift, largest,
                                  figdir / f"cam_montage_{tag}.png", name, method=method,
                                  layer=layer, cols=montage_cols),
                     f"{name}: CAM overlays under {largest} (largest drift); rows = severity "
                     f"0 (clean) to {sev[-1]:g}, columns = images"))
    else:
        result["notes"].append(f"{name}: the store holds no corruption cells; no drift "
                               "analysis (evaluate corruptions or pass --stressors).")
    if fails.examples:
        figs.append((plot_failures(fails.examples, figdir / f"cam_failures_{tag}.png", name),
                     f"{name}: high-confidence failures (conf > {conf_threshold:g}): image, "
                     "CAM of the predicted (wrong) class, CAM of the true class"))
    result["figures"] += [{"path": f"figures/{p.name}", "caption": c} for p, c in figs]


def _check_options(method: str, target: str, sample: int) -> None:
    if method not in METHODS:
        raise CamError(f"unknown CAM method {method!r}; choose from {', '.join(METHODS)}")
    if target not in ("clean", "pred"):
        raise CamError(f"unknown drift target {target!r}; choose clean or pred")
    if sample < 1:
        raise CamError(f"--sample must be positive, got {sample}")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _stressor_grid(cells, stressors: Sequence[str] | None
                   ) -> list[tuple[str, list[float], int]]:
    """(stressor, severities, seed) to run from the store's ``cells``: every corruption
    stored, at its integer severities (all stored ones when none is an integer), with the
    cell's stressor seed; named ``stressors`` not in the store get severities 1–5, seed 0."""
    from ..stressors import get_stressor, list_stressors
    stored: dict[str, dict[float, int]] = {}
    for c in cells:
        if c.stressor != "clean":
            stored.setdefault(c.stressor, {}).setdefault(float(c.severity), c.seed)
    if stressors is None:
        order = [s for s in list_stressors() if s in stored and get_stressor(s).is_corruption]
    else:
        order = list(stressors)
        for s in order:
            get_stressor(s)  # unknown names fail here with close matches
    grid = []
    for s in order:
        if s in stored:
            sev = sorted(stored[s])
            whole = [v for v in sev if v == int(v)]
            grid.append((s, whole or sev, stored[s][sev[0]]))
        elif get_stressor(s).is_corruption:
            grid.append((s, list(DEFAULT_SEVERITIES), 0))
        else:
            raise CamError(f"sweep {s!r} has no cells in the store; evaluate it first "
                           "(its values come from the store)")
    return grid


def _store_accuracy(store, model: str, dataset_key: str | None
                    ) -> dict[tuple[str, float], float]:
    acc = {}
    for row in store.accuracy_table(model):
        if dataset_key is None or row["dataset"] == dataset_key:
            acc.setdefault((row["stressor"], float(row["severity"])), float(row["accuracy"]))
    return acc


# ----------------------------------------------------------------------------- drift
@dataclass
class DriftResult:
    """Per-image drift of a fixed sample. ``cells[(stressor, severity)]`` holds N-arrays of
    every metric in ``DRIFT_METRICS`` plus ``pred`` (the prediction at that level)."""

    indices: np.ndarray           # dataset indices of the sample, N
    labels: np.ndarray            # N
    clean_pred: np.ndarray        # N
    clean: dict                   # entropy and border_share of the clean CAMs, N each
    cells: dict = field(default_factory=dict)
    seeds: dict = field(default_factory=dict)   # stressor -> stressor seed used
    target: str = "clean"

    def stressors(self) -> list[str]:
        return list(dict.fromkeys(s for s, _ in self.cells))

    def severities(self, stressor: str) -> list[float]:
        return sorted(v for s, v in self.cells if s == stressor)

    def mean_drift(self, stressor: str, severity: float) -> float:
        return float(1.0 - np.nanmean(self.cells[(stressor, severity)]["spearman"]))

    def largest_drift(self) -> str | None:
        """The stressor with the largest drift averaged over its severities."""
        scores = {s: np.mean([self.mean_drift(s, v) for v in self.severities(s)])
                  for s in self.stressors()}
        return max(scores, key=scores.get) if scores else None

    def clean_accuracy(self) -> float:
        return float(np.mean(self.clean_pred == self.labels))

    def accuracy(self, stressor: str, severity: float) -> float:
        return float(np.mean(self.cells[(stressor, severity)]["pred"] == self.labels))

    def table(self) -> list[dict]:
        """One row per (stressor, severity) with the sample means of every metric."""
        rows = []
        for (s, v), d in self.cells.items():
            row = {"stressor": s, "family": stressor_family(s), "severity": v,
                   "n": len(self.indices)}
            row.update({k: _nanmean(d[k]) for k in DRIFT_METRICS})
            row["drift"] = 1.0 - row["spearman"]
            row["accuracy_sample"] = self.accuracy(s, v)
            rows.append(row)
        return rows

    def curves(self) -> dict:
        """``{stressor: {"severity": [0, ...], metric: [clean, ...]}}``; severity 0 = clean."""
        out = {}
        for s in self.stressors():
            sev = self.severities(s)
            c = {"severity": [0.0] + sev,
                 "accuracy_sample": [self.clean_accuracy()] + [self.accuracy(s, v) for v in sev]}
            for k in DRIFT_METRICS:
                clean = {"pearson": 1.0, "spearman": 1.0, "com_shift_px": 0.0}.get(k)
                if clean is None:
                    clean = _nanmean(self.clean[k])
                c[k] = [clean] + [_nanmean(self.cells[(s, v)][k]) for v in sev]
            out[s] = c
        return out


def _nanmean(a) -> float:
    a = np.asarray(a, dtype=np.float64)
    return float(np.nanmean(a)) if np.isfinite(a).any() else float("nan")


def sample_rows(dataset, sample: int, seed: int) -> torch.Tensor:
    """Positions in ``dataset`` of the fixed drift sample: class-stratified, chosen by
    ``seed`` from the data set alone (so the same images for every model)."""
    sub = dataset.subset(sample, seed=seed)
    pos = {int(i): p for p, i in enumerate(dataset.indices.tolist())}
    return torch.tensor([pos[int(i)] for i in sub.indices.tolist()], dtype=torch.int64)


def _images(dataset, rows: torch.Tensor, device) -> torch.Tensor:
    x = dataset.images[rows]
    return x.to(device).permute(0, 3, 1, 2).float().div_(255.0)


def attention_drift(model, dataset, grid: Sequence[tuple[str, Sequence[float], int]], *,
                    sample: int = 200, seed: int = 0, method: str = "gradcam",
                    layer: str | None = None, target: str = "clean",
                    batch_size: int = 128) -> DriftResult:
    """CAMs of a fixed sample on clean and every (stressor, severities, stressor seed) of
    ``grid``, compared with the clean CAMs (see ``_cam_core.drift_metrics``).

    >>> d = attention_drift(model, ds, [("fog", [1, 3, 5], 0)], sample=50)  # doctest: +SKIP
    >>> d.table()[0]["spearman"]  # doctest: +SKIP
    """
    from ..stressors import get_stressor
    device = next(model.parameters()).device
    rows = sample_rows(dataset, sample, seed)
    x0 = _images(dataset, rows, device)
    idx = dataset.indices[rows]
    labels = dataset.labels[rows].numpy()
    clean_cams, logits = compute_cams(model, x0, None, method=method, layer=layer,
                                      batch_size=batch_size, return_logits=True)
    clean_pred = logits.argmax(1)
    res = DriftResult(idx.numpy(), labels, clean_pred.numpy(),
                      {"entropy": drift_metrics(clean_cams, clean_cams)["entropy"],
                       "border_share": border_share(clean_cams)}, target=target)
    for name, severities, sseed in grid:
        st = get_stressor(name)
        res.seeds[name] = sseed
        for v in severities:
            x = st(x0, float(v), seed=sseed, indices=idx)
            cams, lg = compute_cams(model, x, clean_pred if target == "clean" else None,
                                    method=method, layer=layer, batch_size=batch_size,
                                    return_logits=True)
            d = drift_metrics(cams, clean_cams)
            d["pred"] = lg.argmax(1).numpy()
            res.cells[(name, float(v))] = d
    return res


def drift_failure_link(drift: DriftResult,
                       store_acc: dict[tuple[str, float], float] | None = None) -> dict:
    """Does drift predict failure?

    ``cells``: Spearman r (and p, n) across (stressor, severity) cells between mean drift
    (1 − Spearman with the clean CAM) and accuracy drop, and the same for centre-of-mass
    shift. Accuracy comes from ``store_acc`` ((stressor, severity) -> accuracy, with
    ("clean", 0.0)) when it has the cell, else from the sample.
    ``images``: among sample images right on clean, drift of (image, cell) pairs that flip
    to wrong vs stay right: n, mean, median, Mann–Whitney U two-sided p.
    """
    from scipy.stats import mannwhitneyu
    store_acc = store_acc or {}
    clean_store = store_acc.get(("clean", 0.0))
    drops, drift_m, shift_m, src = [], [], [], []
    for (s, v) in drift.cells:
        if clean_store is not None and (s, v) in store_acc:
            drops.append(clean_store - store_acc[(s, v)])
            src.append("store")
        else:
            drops.append(drift.clean_accuracy() - drift.accuracy(s, v))
            src.append("sample")
        drift_m.append(drift.mean_drift(s, v))
        shift_m.append(_nanmean(drift.cells[(s, v)]["com_shift_px"]))
    link = {"cells": {"n": len(drops), "accuracy_source": sorted(set(src))}}
    for key, vals in (("drift", drift_m), ("com_shift_px", shift_m)):
        r, p = _spearman(vals, drops)
        link["cells"][key] = {"spearman_r": r, "p": p}

    right = drift.clean_pred == drift.labels
    flip, stay = [], []
    for d in drift.cells.values():
        dr = 1.0 - d["spearman"]
        ok = np.isfinite(dr) & right
        flip.append(dr[ok & (d["pred"] != drift.labels)])
        stay.append(dr[ok & (d["pred"] == drift.labels)])
    flip = np.concatenate(flip) if flip else np.zeros(0)
    stay = np.concatenate(stay) if stay else np.zeros(0)
    img = {"n_flip": int(flip.size), "n_stay": int(stay.size),
           "mean_drift_flip": _nanmean(flip), "mean_drift_stay": _nanmean(stay),
           "median_drift_flip": float(np.median(flip)) if flip.size else float("nan"),
           "median_drift_stay": float(np.median(stay)) if stay.size else float("nan"),
           "mannwhitney_u": float("nan"), "p": float("nan")}
    if flip.size and stay.size:
        u = mannwhitneyu(flip, stay, alternative="two-sided")
        img["mannwhitney_u"], img["p"] = float(u.statistic), float(u.pvalue)
    link["images"] = img
    return link


def _spearman(a, b) -> tuple[float, float]:
    from scipy.stats import spearmanr
    a, b = np.asarray(a, float), np.asarray(b, float)
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return float("nan"), float("nan")
    r = spearmanr(a[ok], b[ok])
    return float(r.statistic), float(r.pvalue)


def _flat_link(link: dict) -> dict:
    c, i = link["cells"], link["images"]
    return {"n_cells": c["n"], "drift_acc_spearman_r": c["drift"]["spearman_r"],
            "drift_acc_p": c["drift"]["p"], "shift_acc_spearman_r": c["com_shift_px"]["spearman_r"],
            "n_flip": i["n_flip"], "n_stay": i["n_stay"], "mean_drift_flip": i["mean_drift_flip"],
            "mean_drift_stay": i["mean_drift_stay"], "mannwhitney_p": i["p"]}


# ----------------------------------------------------------------------------- failures
@dataclass
class Failures:
    records: list             # one dict per categorised failure
    n_total: dict             # group -> number of high-confidence failures in the store
    examples: list            # top failure per cell, with images and CAMs, for the figure
    reproduced: float         # fraction whose recomputed prediction equals the stored one


def explain_failures(model, dataset, store, cells, *,
                     stressors: Sequence[str] | None = None, method: str = "gradcam",
                     layer: str | None = None, per_cell: int = 8,
                     conf_threshold: float = CONF_THRESHOLD, batch_size: int = 128,
                     superclass_of: Callable[[str], str | None] | None = None) -> Failures:
    """CAMs of the predicted (wrong) and the true class for the ``per_cell`` most confident
    failures (wrong, conf > ``conf_threshold``) of each clean and corrupted cell in
    ``cells`` (store ``Cell`` records of one model and data set), each tagged with a
    failure type (``categorize_failure``).

    Corrupted images are rebuilt from the data set with the cell's stressor, severity and
    seed at the images' dataset indices: the same pixels the evaluation saw.
    """
    device = next(model.parameters()).device
    classes = list(dataset.classes)
    superclass_of = superclass_of or superclass_lookup("auto", classes)
    pos = {int(i): p for p, i in enumerate(dataset.indices.tolist())}
    band_area = 1 - (1 - 2 * BORDER_BAND) ** 2
    records, examples, n_total = [], [], {}
    n_same = n_checked = 0
    for cell in cells:
        if cell.stressor != "clean" and (stressors is not None and cell.stressor not in stressors):
            continue
        group = stressor_family(cell.stressor)
        p = store.predictions(cell)
        wrong = np.flatnonzero((p["pred"] != p["label"]) & (p["conf"] > conf_threshold))
        n_total[group] = n_total.get(group, 0) + int(wrong.size)
        keep = [i for i in wrong[np.argsort(-p["conf"][wrong], kind="stable")]
                if int(p["idx"][i]) in pos][:per_cell]
        if not keep:
            continue
        idx = torch.as_tensor(p["idx"][keep], dtype=torch.int64)
        x = _images(dataset, torch.tensor([pos[int(i)] for i in idx]), device)
        x = stress_like_cell(x, cell, idx)
        pred, true = p["pred"][keep], p["label"][keep]
        cams, lg = compute_cams(model, torch.cat([x, x]), np.concatenate([pred, true]),
                                method=method, layer=layer, batch_size=batch_size,
                                return_logits=True)
        k = len(keep)
        cam_pred, cam_true = cams[:k], cams[k:]
        bs, ov = border_share(cam_pred), overlap(cam_pred, cam_true)
        n_same += int((lg[:k].argmax(1).numpy() == pred).sum())
        n_checked += k
        for j, i in enumerate(keep):
            rec = {"stressor": cell.stressor, "family": group, "severity": float(cell.severity),
                   "idx": int(p["idx"][i]), "true": classes[int(true[j])],
                   "pred": classes[int(pred[j])], "conf": float(p["conf"][i]),
                   "pred_border_share": float(bs[j]), "pred_true_overlap": float(ov[j])}
            rec["type"] = categorize_failure(rec["true"], rec["pred"], bs[j], ov[j],
                                             superclass_of, band_area=band_area)
            records.append(rec)
        examples.append({**records[-k], "image": x[0].cpu(), "cam_pred": cam_pred[0],
                         "cam_true": cam_true[0]})
    return Failures(records, n_total, examples, n_same / n_checked if n_checked else float("nan"))


def failure_type_counts(fails: Failures) -> dict[str, dict]:
    """``{group: {"n_high_conf": ..., "n_categorised": ..., type: count, ...}}`` for "clean",
    each corruption family and "all_corrupted"."""
    from ..stressors import CORRUPTION_FAMILIES
    out: dict[str, dict] = {}
    rank = {g: i for i, g in enumerate(("clean",) + CORRUPTION_FAMILIES)}
    groups = sorted(fails.n_total, key=lambda g: rank.get(g, len(rank)))
    for g in groups + ["all_corrupted"]:
        recs = [r for r in fails.records
                if (r["family"] == g) or (g == "all_corrupted" and r["family"] != "clean")]
        n_high = (sum(v for k, v in fails.n_total.items() if k != "clean")
                  if g == "all_corrupted" else fails.n_total[g])
        row = {"n_high_conf": n_high, "n_categorised": len(recs)}
        row.update({t: sum(r["type"] == t for r in recs) for t in FAILURE_TYPES})
        out[g] = row
    return out


# ----------------------------------------------------------------------------- summary
def _summarise(result: dict, name: str, m: dict, prefix: bool) -> None:
    pre = f"{name}: " if prefix else ""
    s = result["summary"]
    curves, link = m["drift"], m["link"]
    largest = m["largest_drift_stressor"]
    if largest is not None:
        c = curves[largest]
        s[pre + "largest_drift_stressor"] = largest
        s[pre + "largest_drift_spearman_at_max_severity"] = c["spearman"][-1]
        s[pre + "largest_drift_border_share_clean"] = c["border_share"][0]
        s[pre + "largest_drift_border_share_at_max_severity"] = c["border_share"][-1]
    s[pre + "drift_acc_spearman_r"] = link["cells"]["drift"]["spearman_r"]
    s[pre + "drift_acc_n_cells"] = link["cells"]["n"]
    s[pre + "mean_drift_flip"] = link["images"]["mean_drift_flip"]
    s[pre + "mean_drift_stay"] = link["images"]["mean_drift_stay"]
    s[pre + "flip_vs_stay_mannwhitney_p"] = link["images"]["p"]
    types = m["failure_types"]
    for g in ("clean", "all_corrupted"):
        if g in types and types[g]["n_categorised"]:
            for t in FAILURE_TYPES:
                s[f"{pre}{g}_{t}_share"] = types[g][t] / types[g]["n_categorised"]

    notes = result["notes"]
    r = link["cells"]["drift"]["spearman_r"]
    if r == r:  # not NaN
        notes.append(f"{pre}across {link['cells']['n']} corruption × severity cells, mean CAM "
                     f"drift (1 − Spearman with the clean CAM) and accuracy drop have Spearman "
                     f"r = {r:.2f} ({_p(link['cells']['drift']['p'])}).")
    i = link["images"]
    if i["n_flip"] and i["n_stay"]:
        notes.append(f"{pre}images that flip from right to wrong drift more "
                     if i["mean_drift_flip"] > i["mean_drift_stay"] else
                     f"{pre}images that flip from right to wrong do not drift more ")
        notes[-1] += (f"(mean drift {i['mean_drift_flip']:.2f}, n = {i['n_flip']}) than those "
                      f"that stay right ({i['mean_drift_stay']:.2f}, n = {i['n_stay']}); "
                      f"Mann–Whitney {_p(i['p'])}.")
    if largest is not None:
        c = curves[largest]
        notes.append(f"{pre}largest drift under {largest}: Spearman with the clean CAM "
                     f"{c['spearman'][-1]:.2f} at severity {c['severity'][-1]:g}; border-band "
                     f"share {c['border_share'][0]:.2f} clean → {c['border_share'][-1]:.2f} "
                     f"(a uniform map gives {result['config']['border_area']:.2f}).")


def _p(p: float) -> str:
    return "p < 1e-300" if p == 0 else f"p = {p:.2g}"


# ----------------------------------------------------------------------------- figures
def _overlay(ax, img: torch.Tensor, cam, title: str | None = None) -> None:
    ax.imshow(img.permute(1, 2, 0).clamp(0, 1).numpy(), interpolation="nearest")
    ax.imshow(np.asarray(cam), cmap="jet", alpha=0.45, vmin=0, vmax=1, interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def _band_outline(ax, h: int, w: int) -> None:
    b = border_mask(h, w)
    ax.contour(b.astype(float), levels=[0.5], colors="white", linewidths=0.5, linestyles=":")


def plot_drift_curves(drift: DriftResult, path: Path, model_name: str) -> Path:
    """Five panels (Pearson, Spearman, centre-of-mass shift, entropy, border share) vs
    severity, one line per corruption."""
    from matplotlib.figure import Figure
    curves = drift.curves()
    fig = Figure(figsize=(13, 7.5))
    axes = fig.subplots(2, 3).ravel()
    labels = {"pearson": "Pearson r with clean CAM", "spearman": "Spearman ρ with clean CAM",
              "com_shift_px": "centre-of-mass shift (px)", "entropy": "CAM entropy (normalised)",
              "border_share": f"border-band share (outer {BORDER_BAND:.0%} per side)"}
    from matplotlib import colormaps
    cmap = colormaps["tab20"]
    for ax, k in zip(axes, DRIFT_METRICS):
        for j, (s, c) in enumerate(curves.items()):
            ax.plot(c["severity"], c[k], marker="o", ms=3, lw=1.2, color=cmap(j % 20), label=s)
        ax.set_xlabel("severity")
        ax.set_title(labels[k], fontsize=9)
        ax.grid(alpha=0.3)
    axes[4].axhline(1 - (1 - 2 * BORDER_BAND) ** 2, color="k", ls=":", lw=1)
    handles, names = axes[0].get_legend_handles_labels()
    axes[5].axis("off")
    axes[5].legend(handles, names, loc="center", fontsize=7, ncol=2, frameon=False)
    fig.suptitle(f"{model_name}: attention drift ({len(drift.indices)} images, target = "
                 f"{'clean-predicted class' if drift.target == 'clean' else 'predicted class'})")
    fig.tight_layout()
    return save_figure_atomic(fig, path, dpi=110)


def plot_montage(model, dataset, drift: DriftResult, stressor: str, path: Path, model_name: str,
                 *, method: str = "gradcam", layer: str | None = None, cols: int = 8) -> Path:
    """Rows = severity 0 (clean) .. max, columns = the first ``cols`` sample images; the CAM
    (same target as the drift analysis) over the corrupted image."""
    from matplotlib.figure import Figure
    from ..stressors import get_stressor
    device = next(model.parameters()).device
    pos = {int(i): p for p, i in enumerate(dataset.indices.tolist())}
    idx = torch.as_tensor(drift.indices[:cols], dtype=torch.int64)
    x0 = _images(dataset, torch.tensor([pos[int(i)] for i in idx]), device)
    tgt = torch.as_tensor(drift.clean_pred[:cols])
    sevs = [0.0] + drift.severities(stressor)
    fig = Figure(figsize=(1.3 * len(idx) + 0.8, 1.35 * len(sevs) + 0.5))
    axes = np.atleast_2d(fig.subplots(len(sevs), len(idx), squeeze=False))
    st = get_stressor(stressor)
    for r, v in enumerate(sevs):
        x = x0 if v == 0 else st(x0, v, seed=drift.seeds.get(stressor, 0), indices=idx)
        cams, lg = compute_cams(model, x, tgt if drift.target == "clean" else None,
                                method=method, layer=layer, return_logits=True)
        pred = lg.argmax(1)
        for c in range(len(idx)):
            ax = axes[r, c]
            _overlay(ax, x[c].cpu(), cams[c], dataset.classes[int(pred[c])][:10])
            if int(pred[c]) != int(drift.labels[c]):
                ax.title.set_color("red")
            if c == 0:
                rho = 1.0 if v == 0 else _nanmean(drift.cells[(stressor, v)]["spearman"])
                ax.set_ylabel(f"sev {v:g}\nρ={rho:.2f}", fontsize=8)
    fig.suptitle(f"{model_name}: {stressor} (title = prediction, red = wrong)", fontsize=10)
    fig.tight_layout()
    return save_figure_atomic(fig, path, dpi=110)


def gallery(examples: list, rows: int = 8, clean_rows: int = 3) -> list:
    """Up to ``clean_rows`` clean failures, then corrupted ones, most confident first, with
    no image and no stressor twice (the same image fails at several severities)."""
    pick, seen_img, seen_st = [], set(), set()
    n_clean = 0
    for e in sorted(examples, key=lambda e: (e["stressor"] != "clean", -e["conf"])):
        clean = e["stressor"] == "clean"
        if len(pick) >= rows or e["idx"] in seen_img or (clean and n_clean >= clean_rows) \
                or (not clean and e["stressor"] in seen_st):
            continue
        pick.append(e)
        n_clean += clean
        seen_img.add(e["idx"])
        seen_st.add(e["stressor"])
    return pick


def plot_failures(examples: list, path: Path, model_name: str, rows: int = 8) -> Path:
    """Rows of (image, CAM of the predicted class, CAM of the true class) for ``gallery``."""
    from matplotlib.figure import Figure
    pick = gallery(examples, rows)
    fig = Figure(figsize=(5.4, 1.75 * len(pick) + 0.4))
    axes = np.atleast_2d(fig.subplots(len(pick), 3, squeeze=False))
    for r, e in enumerate(pick):
        h, w = e["image"].shape[-2:]
        cell = "clean" if e["stressor"] == "clean" else f"{e['stressor']} {e['severity']:g}"
        axes[r, 0].imshow(e["image"].permute(1, 2, 0).clamp(0, 1).numpy())
        axes[r, 0].set_xticks([])
        axes[r, 0].set_yticks([])
        axes[r, 0].set_title(f"{cell} #{e['idx']}", fontsize=7)
        _overlay(axes[r, 1], e["image"], e["cam_pred"],
                 f"pred {e['pred']} ({e['conf']:.2f}) [{e['type']}]")
        _overlay(axes[r, 2], e["image"], e["cam_true"], f"true {e['true']}")
        _band_outline(axes[r, 1], h, w)
    fig.suptitle(f"{model_name}: high-confidence failures", fontsize=9)
    fig.tight_layout()
    return save_figure_atomic(fig, path, dpi=110)
