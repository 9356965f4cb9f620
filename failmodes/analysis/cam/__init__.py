"""Grad-CAM analysis of a run: attention drift under corruption, whether drift predicts
failure, null-calibrated explanations of confident failures, and the Adebayo et al. (2018)
randomisation sanity check of every analysed model.

One idea per module: ``_cam_core`` computes CAMs (raw and display maps, the layer),
``_cam_measures`` measures raw maps, ``cam_drift`` holds the drift sample and its link to
failure (clustered by image, within severity), ``cam_categories`` the null-calibrated
failure categories, ``cam_failures`` the failure explanations, ``cam_sanity`` the
randomisation check and ``_cam_figures`` the figures. This module runs them per model and
assembles the ``AnalysisResult``.

Layer: the model's CAM layer, unless its maps are coarser than ``MIN_MAP_SIDE`` (a 4×4
layer4 of a CIFAR ResNet leaves only 2×2 cells off the border band); then the last block
with ≥ 8×8 maps (layer3) is used and a note says so. ``layer=`` overrides both.

Default cost: Grad-CAM of 200 images × 19 corruptions × 5 severities with a width-16
ResNet-18 is ~19 000 CAMs, about 4 minutes on one busy CPU core (bench/cam_drift.py);
``sample`` and ``stressors`` cut it down.

>>> result = run_cam("runs/demo", "runs/demo/analysis", sample=100)     # doctest: +SKIP
>>> result.per_model["r18"]["drift_acc_spearman_within_severity"]      # doctest: +SKIP
"""
from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..._device import resolve_device
from ...constants import CONFIDENT_THRESHOLD
from ...models.tta import without_tta
from ...models.wrapper import Classifier
from ...store import CLEAN, RunFolder
from ..registry import register_analysis, write_result
from ..result import AnalysisResult
from . import _figures as figs
from ._core import METHODS, MIN_MAP_SIDE, CamError, finer_layer
from ._measures import BAND_AREA, BORDER_BAND
from .categories import FAILURE_TYPES, NULL_ALPHA, null_rule, superclass_lookup
from .drift import DriftResult, attention_drift, drift_failure_link, flat_link, images_at, sample_rows
from .explain import explain_failures, failure_type_counts, gallery
from .localisation import MIN_CHANGE
from .maps import save_cam_maps, to_u8
from .sanity import cascading_randomisation

log = logging.getLogger(__name__)

DEFAULT_SEVERITIES = (1.0, 2.0, 3.0, 4.0, 5.0)
SANITY_SAMPLE = 32     # images of the randomisation check (per model)

__all__ = ["CamError", "DriftResult", "METHODS", "attention_drift", "cam_analysis",
           "drift_failure_link", "explain_failures", "gallery", "run_cam"]


@dataclass
class CamOptions:
    method: str = field(default="gradcam", metadata={
        "help": "gradcam | gradcam++ | scorecam (gradient-free, one forward pass per "
                "channel: slow)"})
    sample: int = field(default=200, metadata={
        "help": "fixed images for attention drift (same for every model)"})
    layer: str | None = field(default=None, metadata={
        "help": "module to hook, e.g. layer4.1 (default: the model's own, found "
                "automatically)", "flags": ("--cam-layer",)})
    stressors: list[str] | None = field(default=None, metadata={
        "help": "comma-separated stressors (default: every corruption in the store)"})
    seed: int = field(default=0, metadata={"help": "chooses the drift sample"})
    target: str = field(default="clean", metadata={
        "help": "drift CAM target: clean (the clean-predicted class) or pred (each level's "
                "prediction)"})
    failures_per_cell: int = field(default=8, metadata={
        "help": "high-confidence failures explained per cell (most confident first)"})
    confidence_threshold: float = field(default=CONFIDENT_THRESHOLD, metadata={
        "help": "confidence above which an error is high-confidence",
        "min": 0.0, "max": 0.999999})
    superclasses: str = field(default="auto", metadata={
        "help": "superclass map: YAML file, cifar10, imagenet, none or auto"})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | cuda:N"})
    batch_size: int = field(default=128, metadata={"help": "images per CAM batch", "min": 1})
    sanity_sample: int = field(default=SANITY_SAMPLE, metadata={
        "help": "images for the randomisation check (0 skips it)", "min": 0})
    models: list[str] | None = field(default=None, metadata={
        "help": "comma-separated models (default: every model in the store)"})


INTRO = ("Grad-CAM on a fixed sample: where each model looks on clean images and how that "
         "attention drifts as corruption grows, and explanations of confident failures.")


@register_analysis("cam", title="Grad-CAM: failure explanations and attention drift", order=50,
                   options=CamOptions, intro=INTRO)
def run_cam(run_dir, out_dir, *, method: str = "gradcam", sample: int = 200,
            layer: str | None = None, stressors: Sequence[str] | None = None,
            seed: int = 0, target: str = "clean", failures_per_cell: int = 8,
            confidence_threshold: float = CONFIDENT_THRESHOLD, superclasses: str = "auto",
            device: str = "auto", batch_size: int = 128, sanity_sample: int = SANITY_SAMPLE,
            models: Sequence[str] | None = None) -> AnalysisResult:
    """The ``cam`` analysis of the run in ``run_dir`` (its store and models), written to
    ``out_dir/cam.json`` and ``out_dir/figures/cam_*.png``; returns the result.

    ``stressors`` None = every corruption the store holds cells of, at its severities;
    ``sanity_sample`` images for the randomisation check (0 skips it, with a note).
    """
    _check_options(method, target, sample)
    from ...evaluate import open_run
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
                            confidence_threshold=confidence_threshold, superclasses=superclasses,
                            batch_size=batch_size, sanity_sample=sanity_sample, models=models)


def cam_analysis(store, load_model: Callable[[str], Classifier], dataset, out_dir, *,
                 dataset_key: str | None = None, method: str = "gradcam", sample: int = 200,
                 layer: str | None = None, stressors: Sequence[str] | None = None,
                 seed: int = 0, target: str = "clean", failures_per_cell: int = 8,
                 confidence_threshold: float = CONFIDENT_THRESHOLD, superclasses: str = "auto",
                 batch_size: int = 128, sanity_sample: int = SANITY_SAMPLE,
                 models: Sequence[str] | None = None,
                 montage_cols: int = 8) -> AnalysisResult:
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

    tables = ("cam_drift_max_severity", "cam_drift", "cam_failure_types", "cam_drift_link",
              "cam_sanity")
    result = AnalysisResult("cam", params={
        "method": method, "layer": layer, "sample": sample, "seed": seed, "target": target,
        "failures_per_cell": failures_per_cell, "confidence_threshold": confidence_threshold,
        "superclasses": superclasses, "border_band": BORDER_BAND, "border_area": BAND_AREA,
        "null_alpha": NULL_ALPHA, "min_map_side": MIN_MAP_SIDE,
        "sanity_sample": sanity_sample,
        "drift": "1 - max(Spearman with the clean raw CAM, 0); constant maps count as 1"},
        tables={t: [] for t in tables}, data={"models": {}})
    checks, maps, sample_idx = {}, {}, None
    for name in names:
        model = load_model(name)
        plain = without_tta(model)
        if plain is not model:
            model = plain
            result.notes.append(f"{name}: its cells were evaluated with flip test-time "
                                "augmentation; Grad-CAM explains the plain forward pass.")
        why = getattr(model, "cam_unavailable", None)  # ONNX, TorchScript: models/sources/
        if why:
            result.notes.append(f"{name}: no Grad-CAM: {why}.")
            result.data["models"][name] = {"cam_unavailable": why}
            result.per_model[name] = {"cam_unavailable": str(why)}
            continue
        used = _choose_layer(result, name, model, dataset, layer)
        drift = _model_section(result, store, name, model, dataset, out_dir,
                               stressors=stressors, sample=sample, seed=seed, method=method,
                               layer=used, target=target, failures_per_cell=failures_per_cell,
                               confidence_threshold=confidence_threshold, superclass_of=superclass_of,
                               batch_size=batch_size, montage_cols=montage_cols,
                               dataset_key=dataset_key)
        maps[name] = {g: to_u8(r) for g, r in drift.raw.items()}
        sample_idx = drift.indices
        if sanity_sample > 0:
            checks[name] = _sanity(result, name, model, dataset, sanity_sample, seed, method,
                                   used, batch_size)
        _summarise(result, name, result.data["models"][name])
    if checks:
        path = figs.plot_sanity(checks, out_dir / "figures" / "cam_sanity.png")
        result.add_figure({"path": f"figures/{path.name}", "caption": (
            "Adebayo et al. (2018) cascading randomisation: mean Spearman ρ of the CAMs with "
            "the trained model's as blocks are re-initialised from the output; a model passes "
            "when ρ is below the dotted line at each ringed point: after the classifier alone, "
            "after the last stage and at the end (a filled ring fails)")})
    else:
        result.notes.append("The randomisation sanity check was skipped (sanity_sample=0).")
    if sample_idx is not None:  # the explorer's thumbnails of the same raw maps
        save_cam_maps(out_dir, maps, sample_idx)
    write_result(out_dir, "cam", result)
    return result


def _choose_layer(result: AnalysisResult, name: str, model, dataset, layer: str | None):
    """The layer to hook for ``name``: ``layer`` when given, else the CAM layer, or a finer
    block when the CAM layer's maps are smaller than MIN_MAP_SIDE (said in a note)."""
    if layer is not None:
        return layer
    x = images_at(dataset, torch.tensor([0]), next(model.parameters()).device)
    finer, size = finer_layer(model, x)
    if finer is None:
        if size and 0 < min(size) < MIN_MAP_SIDE:
            result.notes.append(f"{name}: its CAM layer gives {size[0]}×{size[1]} maps and no "
                                "finer block exists: border-band shares and the context "
                                "category are coarse (calibrated at this size).")
        return None
    result.notes.append(f"{name}: the default CAM layer's maps are smaller than "
                        f"{MIN_MAP_SIDE}×{MIN_MAP_SIDE}, too coarse for border vs centre, so "
                        f"{finer} ({size[0]}×{size[1]} maps) is used instead (pass --layer to "
                        "choose).")
    return finer


def _sanity(result, name, model, dataset, n, seed, method, layer, batch_size) -> dict:
    rows = sample_rows(dataset, n, seed + 1)
    x = images_at(dataset, rows, next(model.parameters()).device)
    c = cascading_randomisation(model, x, method=method, layer=layer, batch_size=batch_size)
    result.tables["cam_sanity"] += [{"model": name, **p} for p in c["curve"]]
    result.data["models"][name]["sanity"] = c
    pts = [(w, c[k]) for w, k in (("the classifier alone", "first_step"),
                                    ("the last stage", "last_stage"),
                                    (f"all {len(c['curve']) - 1} blocks", "final")) if c[k]]
    result.notes.append(
        f"{name}: randomisation sanity check (Adebayo et al. 2018) "
        f"{'passed' if c['passed'] else 'FAILED'}: the CAMs correlate with the trained "
        "model's " + "; ".join(f"ρ = {p['spearman']:.2f} after re-initialising {w} "
                               f"({p['randomised']})" for w, p in pts)
        + f" (pass: < {c['pass_rho']:g} at each; {c['n_images']} images)"
        + ("." if c["passed"] else "; the maps reflect the input more than the model, so "
           "read the CAM findings with care."))
    return c


def _model_section(result: AnalysisResult, store, name: str, model, dataset, out_dir: Path, *,
                   stressors, sample, seed, method, layer, target, failures_per_cell,
                   confidence_threshold, superclass_of, batch_size, montage_cols,
                   dataset_key) -> DriftResult:
    """Drift, link, failures and figures of one model, added to ``result``; returns the
    drift sample's result."""
    cells = [c for c in store.cells(model=name)
             if dataset_key is None or c.dataset == dataset_key]
    grid = _stressor_grid(cells, stressors)
    log.info("cam: %s: drift over %d stressors", name, len(grid))
    drift = attention_drift(model, dataset, grid, sample=sample, seed=seed, method=method,
                            layer=layer, target=target, batch_size=batch_size)
    link = drift_failure_link(drift, _store_accuracy(store, name, dataset_key))
    size = tuple(dataset.images.shape[1:3])
    rule = null_rule(tuple(drift.map_size), size)
    fails = explain_failures(model, dataset, store, cells, stressors=[g[0] for g in grid],
                             method=method, layer=layer, per_cell=failures_per_cell,
                             confidence_threshold=confidence_threshold, batch_size=batch_size,
                             superclass_of=superclass_of, rule=rule)
    types = failure_type_counts(fails)
    largest = drift.largest_drift()
    n_const_clean, n_const = drift.n_constant()
    result.data["models"][name] = {
        "layer": layer, "map_size": list(drift.map_size),
        "sample_indices": drift.indices.tolist(), "drift": drift.curves(),
        "per_image": drift.per_image(), "largest_drift_stressor": largest, "link": link,
        "failure_types": types, "n_failures_categorised": len(fails.records),
        "n_high_conf_failures": fails.n_total, "prediction_reproduced": fails.reproduced,
        "context_rule": {"border_threshold": rule.border_threshold,
                         "null_context_rate": rule.null_context_rate,
                         "uniform_is_context": rule.uniform_is_context},
        "n_constant_clean": n_const_clean, "n_constant_shifted": n_const,
        "failures": fails.records}

    tables = result.tables
    rows = drift.table()
    tables["cam_drift"] += [{"model": name, **r} for r in rows]
    top: dict[str, dict] = {}
    for r in rows:  # the highest severity of each stressor
        if r["stressor"] not in top or r["severity"] > top[r["stressor"]]["severity"]:
            top[r["stressor"]] = r
    tables["cam_drift_max_severity"] += [{"model": name, **r} for r in top.values()]
    tables["cam_failure_types"] += [{"model": name, "group": g, **c} for g, c in types.items()]
    tables["cam_drift_link"].append({"model": name, **flat_link(link)})

    figdir, tag, out = out_dir / "figures", _safe(name), []
    if drift.cells:
        out.append((figs.plot_drift_curves(drift, figdir / f"cam_drift_{tag}.png", name),
                    f"{name}: CAM drift from the clean CAM vs severity, one line per "
                    f"corruption ({len(drift.indices)} fixed images)"))
        assert largest is not None  # drift.cells holds at least one stressor
        sev = drift.severities(largest)
        out.append((figs.plot_montage(model, dataset, drift, largest,
                                      figdir / f"cam_montage_{tag}.png", name, method=method,
                                      layer=layer, cols=montage_cols),
                    f"{name}: CAM overlays under {largest} (largest drift); rows = severity "
                    f"0 (clean) to {sev[-1]:g}, columns = images"))
    else:
        result.notes.append(f"{name}: the store holds no corruption cells; no drift "
                            "analysis (evaluate corruptions or pass --stressors).")
    if fails.examples:
        out.append((figs.plot_failures(fails.examples, figdir / f"cam_failures_{tag}.png", name),
                    f"{name}: high-confidence failures (conf > {confidence_threshold:g}): image, "
                    "CAM of the predicted (wrong) class, CAM of the true class"))
    for p, c in out:
        result.add_figure({"path": f"figures/{p.name}", "caption": c}, model=name)
    return drift


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
    from ...stressors import get_stressor, list_stressors
    stored: dict[str, dict[float, int]] = {}
    for c in cells:
        if c.stressor != CLEAN:
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
    acc: dict[tuple[str, float], float] = {}
    for row in store.accuracy_table(model):
        if dataset_key is None or row["dataset"] == dataset_key:
            acc.setdefault((row["stressor"], float(row["severity"])), float(row["accuracy"]))
    return acc


def _summarise(result: AnalysisResult, name: str, m: dict) -> None:
    s = result.per_model.setdefault(name, {})
    curves, link = m["drift"], m["link"]
    largest = m["largest_drift_stressor"]
    s["layer"] = m["layer"] or "default"
    s["map_size"] = "×".join(str(v) for v in m["map_size"])
    if largest is not None:
        c = curves[largest]
        s["largest_drift_stressor"] = largest
        s["largest_drift_at_max_severity"] = c["drift"][-1]
        s["largest_drift_mass_ratio_at_max_severity"] = c["mass_ratio"][-1]
        s["largest_drift_border_share_clean"] = c["border_share"][0]
        s["largest_drift_border_share_at_max_severity"] = c["border_share"][-1]
        s["largest_drift_border_share_diffusion_null_at_max_severity"] = \
            c["border_share_null"][-1]
    s["n_constant_maps_clean"] = m["n_constant_clean"]
    s["n_constant_maps_shifted"] = m["n_constant_shifted"]
    s["drift_acc_spearman_within_severity"] = link["cells"]["spearman_r"]
    s["drift_acc_p"] = link["cells"]["p"]
    s["mean_drift_flip"] = link["images"]["mean_drift_flip"]
    s["mean_drift_stay"] = link["images"]["mean_drift_stay"]
    s["flip_minus_stay_within_severity"] = link["images"]["mean_paired_difference"]
    s["n_images_flip_and_stay"] = link["images"]["n_images_both"]
    s["flip_vs_stay_p"] = link["images"]["p"]
    s["null_context_rate"] = m["context_rule"]["null_context_rate"]
    types = m["failure_types"]
    for g in (CLEAN, "all_corrupted"):
        if g in types and types[g]["n_categorised"]:
            for t in FAILURE_TYPES:
                s[f"{g}_{t}_share"] = types[g][t] / types[g]["n_categorised"]
    if "sanity" in m:
        s["sanity_passed"] = m["sanity"]["passed"]
        for k in ("first_step", "last_stage"):
            if m["sanity"].get(k):
                s[f"sanity_{k}_spearman"] = m["sanity"][k]["spearman"]
        s["sanity_final_spearman"] = m["sanity"]["final_spearman"]

    notes = result.notes
    r = link["cells"]["spearman_r"]
    if r == r:  # not NaN
        notes.append(f"{name}: within each severity, corruptions with more CAM drift lose "
                     f"{'more' if r > 0 else 'less'} accuracy: mean Spearman r = {r:.2f} over "
                     f"{link['cells']['n_severities_used']} severities (permutation within "
                     f"severity, {_p(link['cells']['p'])}).")
    i = link["images"]
    if i["n_images_both"]:
        d = i["mean_paired_difference"]
        notes.append(f"{name}: within the same severity, an image's CAM drifts "
                     f"{abs(d):.3f} {'more' if d > 0 else 'less'} in the cells where it flips "
                     f"from right to wrong than where it stays right (each cell centred on its "
                     f"mean; paired over {i['n_images_both']} images, each counted once, "
                     f"{_p(i['p'])}). Unstratified means, {i['mean_drift_flip']:.2f} vs "
                     f"{i['mean_drift_stay']:.2f}, mix in severity: flips happen at severe "
                     "levels, where every image drifts more.")
    if m["n_constant_shifted"] or m["n_constant_clean"]:
        notes.append(f"{name}: {m['n_constant_clean']} clean and {m['n_constant_shifted']} "
                     "stressed CAMs were constant (no positive evidence anywhere); they count "
                     "as maximal drift.")
    rule = m["context_rule"]
    notes.append(f"{name}: failure categories on {m['map_size'][0]}×{m['map_size'][1]} maps; "
                 f"'context' means the wrong class's CAM puts more than "
                 f"{rule['border_threshold']:.2f} of its mass on the border band, a threshold "
                 f"calibrated so that random maps are context {100 * rule['null_context_rate']:.0f}"
                 " % of the time (the null rate shown beside the counts). Its overlap with the "
                 "true-class map is listed, not used: two compact maps on the object overlap "
                 "little too.")
    if largest is not None:
        c = curves[largest]
        notes.append(f"{name}: largest drift under {largest}: {c['drift'][-1]:.2f} at severity "
                     f"{c['severity'][-1]:g}; raw CAM mass ×{c['mass_ratio'][-1]:.2f} of clean; "
                     f"border-band share {c['border_share'][0]:.2f} clean → "
                     f"{c['border_share'][-1]:.2f} (a uniform map gives {BAND_AREA:.2f}; the "
                     f"clean maps diffused to the same entropy give "
                     f"{c['border_share_null'][-1]:.2f}, so "
                     + ("the rise is more than diffusion: attention moves outward)."
                        if c["border_share"][-1] - c["border_share_null"][-1] >= MIN_CHANGE
                        else "the rise is diffusion, not a move toward the background)."))


def _p(p: float) -> str:
    return "p < 1e-300" if p == 0 else f"p = {p:.2g}"
