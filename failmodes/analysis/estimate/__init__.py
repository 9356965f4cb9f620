"""Could you have known without labels? Every stored shifted cell has labels: hide them,
estimate each model's accuracy from its outputs alone, and compare with the truth.

For every model in a run's store this analysis

1. fits the label-free estimators of ``failmodes.estimate`` (AC, DoC, ATC-MC, ATC-NE, COT,
   each raw and temperature-scaled) on labelled source data the model did not train on,
   chosen as temperature scaling chooses it: the clean validation cell when the checkpoint
   held out exactly that split, else a seeded random half of the clean test cell (every
   cell is then checked on the other half);
2. estimates every test cell's accuracy from its stored logits, with a percentile bootstrap
   interval over the cell's images, and compares it with the cell's measured accuracy;
3. reports, per estimator, the mean absolute error (MAE, fraction), the mean signed error
   (bias) and how often the interval covers the truth, over the corruption cells (all
   shifted cells when there are none), by family and by severity; the worst cells; the
   cells where every estimator is off by more than ``FAIL_POINTS``;
4. runs the black-box KS shift test (``failmodes.estimate.ks_test``) on ``shift_batch``
   randomly drawn images of each cell against the source, ``shift_resamples`` times: the
   share flagged is the detection rate (the false-alarm rate on the clean cell).

Only stored outputs are read, as every analysis but Grad-CAM: the MMD test on penultimate
features and the nearest-cell search need the model or a new batch and run in
``failmodes estimate``.

>>> r = estimate_run("runs/quick", "runs/quick/analysis")            # doctest: +SKIP
>>> r.per_model["r18"]["best_estimator"], r.per_model["r18"]["best_mae"]  # doctest: +SKIP
('ATC-MC-TS', 0.018)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...estimate import estimator_names
from ...estimate.shift import ALPHA
from ...store import CLEAN, ResultsStore, RunFolder, StoreError
from ..registry import Headline, register_analysis, write_result
from ..result import AnalysisResult
from ._figures import scatter_figure
from ._grid import cell_rows, error_rows, model_source

# A cell where every estimator misses the truth by more than this many points is listed.
FAIL_POINTS = 5.0
WORST_CELLS = 5


@dataclass
class EstimateOptions:
    n_boot: int = field(default=400, metadata={
        "help": "bootstrap resamples per cell for the intervals", "min": 10})
    level: float = field(default=0.95, metadata={
        "help": "interval level", "min": 0.5, "max": 0.999})
    shift_batch: int = field(default=500, metadata={
        "help": "images per batch in the KS shift test's detection rate", "min": 10})
    shift_resamples: int = field(default=50, metadata={
        "help": "random batches per cell for the detection rate", "min": 1})
    alpha: float = field(default=ALPHA, metadata={
        "help": "significance level of the shift test (Bonferroni over classes)",
        "min": 0.0001, "max": 0.5})
    seed: int = field(default=0, metadata={"help": "seed of the resampling"})


INTRO = ("After deployment there are no labels. Here every stored cell's labels are hidden "
         "and each model's accuracy is estimated from its outputs alone (AC, DoC, ATC, COT; "
         "raw and temperature-scaled), then compared with the measured accuracy; a KS test "
         "on the softmax outputs says how often a batch of images is flagged as shifted.")
HEADLINES = (
    Headline("best_mae", "Label-free accuracy error", "fraction", higher_is_better=False,
             note="the best estimator's mean |estimated − true| accuracy over the corruption "
                  "cells"),
    Headline("detection_rate", "Shift detected", "fraction", higher_is_better=True,
             note="share of random image batches of the shifted cells that the KS test flags"),
)


@register_analysis("estimate", title="Could you have known without labels?", order=45,
                   options=EstimateOptions, intro=INTRO, analyze=True, headlines=HEADLINES)
def estimate_run(run_dir: str | Path, out_dir: str | Path | None = None, *, n_boot: int = 400,
                 level: float = 0.95, shift_batch: int = 500, shift_resamples: int = 50,
                 alpha: float = ALPHA, seed: int = 0) -> AnalysisResult:
    """Check the label-free estimators against every stored cell of ``run_dir``; write
    ``out_dir/estimate.json`` and ``out_dir/figures/estimate_<model>.png``.

    ``out_dir`` defaults to ``run_dir/analysis``. Returns the ``AnalysisResult`` (tables:
    estimators / families / severities / cells / worst / all_fail; per model the best
    estimator and its MAE, the KS detection and false-alarm rates).
    """
    run_dir = Path(run_dir)
    out_dir = Path(out_dir) if out_dir is not None else RunFolder(run_dir).analysis
    path = RunFolder(run_dir).store
    if not path.is_file():
        raise StoreError(f"no results store at {path}; run `failmodes evaluate --out {run_dir}` "
                         "first")
    names = estimator_names()
    res = AnalysisResult("estimate", params={
        "n_boot": n_boot, "level": level, "shift_batch": shift_batch,
        "shift_resamples": shift_resamples, "alpha": alpha, "seed": seed,
        "estimators": names, "fail_points": FAIL_POINTS})
    tables: dict[str, list[dict]] = {k: [] for k in ("estimators", "families", "severities",
                                                     "cells", "worst", "all_fail")}
    all_rows: list[dict] = []
    with ResultsStore(path, readonly=True) as store:   # read only: nothing is written back
        for rec in store.models():
            model = rec["name"]
            cells = store.cells(model=model)
            source = model_source(store, model, rec.get("meta"), cells)
            if source is None:
                res.notes.append(f"{model}: no clean cell with stored logits to fit the "
                                 "estimators on; skipped.")
                continue
            res.notes += source.notes
            rows, no_logits = cell_rows(store, model, source, cells, n_boot=n_boot, level=level,
                                        seed=seed, shift_batch=shift_batch,
                                        shift_resamples=shift_resamples, alpha=alpha)
            all_rows += rows
            if no_logits:
                res.notes.append(f"{model}: {no_logits} cell(s) have no stored logits "
                                 "(evaluated with store_logits off) and are left out.")
            _model_tables(res, tables, model, rows, names, source)
            pop = _population(rows)[0]
            if pop:
                res.add_figure(scatter_figure(pop, names, model, out_dir), model=model)
    res.tables = {k: v for k, v in tables.items() if v}
    res.data["cells"] = all_rows
    best = [(m, v["best_estimator"], v["best_mae"]) for m, v in res.per_model.items()
            if v.get("best_mae") is not None]
    if best:
        m, name, mae = min(best, key=lambda t: t[2])
        res.summary["best_estimator"] = f"{name} ({m})"
        res.summary["best_mae_points"] = round(100 * mae, 2)
    write_result(out_dir, "estimate", res)
    return res


def _population(rows: list[dict]) -> tuple[list[dict], str]:
    """The cells the errors are averaged over: the corruption cells, else every shifted one."""
    shifted = [r for r in rows if r["stressor"] != CLEAN]
    corr = [r for r in shifted if r["kind"] == "corruption"]
    return (corr, "corruption cells") if corr else (shifted, "shifted cells")


def _model_tables(res: AnalysisResult, tables: dict, model: str, rows: list[dict],
                  names: list[str], source) -> None:
    pop, pop_name = _population(rows)
    shifted = [r for r in rows if r["stressor"] != CLEAN]
    clean = [r for r in rows if r["stressor"] == CLEAN]
    pm: dict = {"cells": len(pop), "population": pop_name,
                "source_accuracy": source.reference.accuracy,
                "temperature": source.reference.temperature, "best_estimator": None,
                "best_mae": None, "best_coverage": None}
    if pop:
        est = error_rows(pop, names, None)
        best = min(est, key=lambda r: r["mae"])
        pm.update(best_estimator=best["estimator"], best_mae=best["mae"],
                  best_coverage=best["coverage"])
        tables["estimators"] += [{"model": model, **r} for r in est]
        tables["families"] += [{"model": model, **r} for r in error_rows(pop, names, "family")]
        sev = [r for r in pop if float(r["severity"]).is_integer()]
        tables["severities"] += [{"model": model, **r} for r in error_rows(sev, names, "severity")]
        b = best["estimator"]
        worst = sorted(pop, key=lambda r: -abs(r[b] - r["true_accuracy"]))[:WORST_CELLS]
        tables["worst"] += [{"model": model, "stressor": r["stressor"], "severity": r["severity"],
                             "estimator": b, "true_accuracy": r["true_accuracy"],
                             "estimate": r[b], "low": r[f"{b}_low"], "high": r[f"{b}_high"],
                             "error": r[b] - r["true_accuracy"]} for r in worst]
        for r in pop:
            errs = [abs(r[n] - r["true_accuracy"]) for n in names]
            if min(errs) * 100 > FAIL_POINTS:
                tables["all_fail"].append({"model": model, "stressor": r["stressor"],
                                           "severity": r["severity"],
                                           "true_accuracy": r["true_accuracy"],
                                           "closest": names[errs.index(min(errs))],
                                           "smallest_error": min(errs)})
    det = [r["ks_detection"] for r in shifted if r["ks_detection"] is not None]
    pm["detection_rate"] = sum(det) / len(det) if det else None
    fa = [r["ks_detection"] for r in clean if r["ks_detection"] is not None]
    pm["false_alarm_rate"] = fa[0] if fa else None
    res.per_model[model] = pm
    tables["cells"] += [{k: v for k, v in r.items() if not k.endswith(("_low", "_high"))}
                        for r in rows]
