"""The grid check's functional core: one model's source data, its cells' estimates, and the
error tables. Store in, plain rows out."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...estimate import Reference, estimate_accuracy, fit_reference
from ...estimate.shift import ks_detection_rate
from ...store import CLEAN, OFFICIAL, Cell, ResultsStore, dataset_role, is_validation, stressor_info
from ..calibration.temperature import FALLBACK_SPLIT_SEED, validation_ok


@dataclass
class Source:
    """The labelled source data of one model: where it came from, and the dataset indices
    every cell is restricted to (None: all), as temperature scaling chooses them."""

    reference: Reference
    fitted_on: str
    keep_idx: np.ndarray | None
    cell: Cell                       # the cell the reference rows came from
    idx: np.ndarray                  # their dataset indices
    notes: list[str] = field(default_factory=list)


def primary_dataset(cells: list[Cell]) -> str | None:
    """The generated test dataset with a clean cell and the most cells (as calibration)."""
    counts: dict[str, int] = {}
    for c in cells:
        counts[c.dataset] = counts.get(c.dataset, 0) + 1
    has_clean = {c.dataset for c in cells if c.stressor == CLEAN}
    main = [d for d in counts if d in has_clean and dataset_role(d) != OFFICIAL]
    return max(main or counts, key=lambda d: counts[d]) if counts else None


def model_source(store: ResultsStore, model: str, meta: dict | None,
                 cells: list[Cell]) -> Source | None:
    """The validation cell when the checkpoint held it out, else a seeded random half of
    the clean test cell (the same half calibration fits T on; every cell is then read on
    the other half). None when neither has stored logits."""
    notes: list[str] = []
    ok, why = validation_ok(meta)
    val = [c for c in cells if is_validation(c.dataset) and c.stressor == CLEAN]
    if val and ok:
        rows = store.predictions(val[0], logits=True)
        if rows["logits"] is not None:
            ref = fit_reference(torch.from_numpy(rows["logits"]), torch.from_numpy(rows["label"]))
            return Source(ref, f"{val[0].dataset} clean (n={ref.n}; {why})", None, val[0],
                          rows["idx"], notes)
        notes.append(f"{model}: the validation cell has no stored logits; the estimators are "
                     "fitted on half of the clean test cell instead.")
    elif val:
        notes.append(f"WARNING {model}: the validation cell {val[0].dataset} is not used: "
                     f"{why}, so it may hold training images.")
    test = [c for c in cells if not is_validation(c.dataset)]
    dataset = primary_dataset(test)
    clean = [c for c in test if c.stressor == CLEAN and c.dataset == dataset]
    if not clean:
        return None
    rows = store.predictions(clean[0], logits=True)
    n = len(rows["idx"])
    if rows["logits"] is None or n < 4:
        return None
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(FALLBACK_SPLIT_SEED))
    fit_pos, rep_pos = perm[: n // 2], perm[n // 2:]
    ref = fit_reference(torch.from_numpy(rows["logits"])[fit_pos],
                        torch.from_numpy(rows["label"])[fit_pos])
    keep = np.sort(rows["idx"][rep_pos.numpy()])
    notes.append(f"{model}: the estimators are fitted on a random half of {clean[0].dataset} "
                 f"clean ({ref.n} images, seed {FALLBACK_SPLIT_SEED}, the half temperature "
                 f"scaling uses) and every cell is checked on the other {len(keep)} images.")
    return Source(ref, f"random half of {clean[0].dataset} clean (n={ref.n})", keep, clean[0],
                  rows["idx"][fit_pos.numpy()], notes)


def cell_rows(store: ResultsStore, model: str, source: Source, cells: list[Cell], *,
              n_boot: int, level: float, seed: int, shift_batch: int, shift_resamples: int,
              alpha: float) -> tuple[list[dict], int]:
    """One row per test cell (clean included, validation excluded) with its true accuracy,
    every estimate and interval, and the share of ``shift_batch``-image batches the KS test
    flags as shifted (``ks_detection``; ``ks_batch`` the batch size used); and how many
    cells had no stored logits (left out)."""
    out: list[dict] = []
    no_logits = 0
    for cell in cells:
        if is_validation(cell.dataset):
            continue
        rows = store.predictions(cell, logits=True)
        if rows["logits"] is None:
            no_logits += 1
            continue
        logits, labels = torch.from_numpy(rows["logits"]), torch.from_numpy(rows["label"])
        if source.keep_idx is not None:
            mask = torch.from_numpy(np.isin(rows["idx"], source.keep_idx))
            logits, labels = logits[mask], labels[mask]
        if logits.shape[0] < 2:
            continue
        info = stressor_info(cell.stressor)
        row = {"model": model, "dataset": cell.dataset, "stressor": cell.stressor,
               "family": info.family, "kind": info.kind, "severity": float(cell.severity),
               "n": int(logits.shape[0]),
               "true_accuracy": float((logits.argmax(1) == labels).double().mean())}
        for e in estimate_accuracy(source.reference, logits, n_boot=n_boot, level=level,
                                   seed=seed):
            row[e.name] = e.accuracy
            row[f"{e.name}_low"], row[f"{e.name}_high"] = e.low, e.high
        row["ks_detection"], row["ks_batch"] = ks_detection_rate(
            source.reference.probs, torch.softmax(logits.double(), dim=1), batch=shift_batch,
            resamples=shift_resamples, alpha=alpha, seed=seed + len(out))
        out.append(row)
    return out, no_logits


def error_rows(rows: list[dict], names: list[str], by: str | None) -> list[dict]:
    """Per estimator (and per value of ``by``): mean absolute error, mean signed error
    (estimate − truth), largest absolute error and interval coverage, over the given rows."""
    groups: dict = {}
    for r in rows:
        groups.setdefault(None if by is None else r[by], []).append(r)
    out = []
    for key, rs in groups.items():
        truth = np.array([r["true_accuracy"] for r in rs])
        for name in names:
            est = np.array([r[name] for r in rs])
            lo = np.array([r[f"{name}_low"] for r in rs])
            hi = np.array([r[f"{name}_high"] for r in rs])
            err = est - truth
            row = {} if by is None else {by: key}
            row.update({"estimator": name, "cells": len(rs), "mae": float(np.abs(err).mean()),
                        "bias": float(err.mean()), "max_error": float(np.abs(err).max()),
                        "coverage": float(((lo <= truth) & (truth <= hi)).mean())})
            out.append(row)
    return out
