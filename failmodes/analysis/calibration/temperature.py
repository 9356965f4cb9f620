"""Temperature scaling's bookkeeping: which images a model's temperature may be fitted on,
the fit itself on those images, and saving it with the store.

A temperature must be fitted on images the model never trained on. The evaluator's
validation cell (``<data>:train-val``) is the train split's ``VAL_FRACTION`` drawn with
``SPLIT_SEED``; it is used only when the model's checkpoint says it held out exactly that
split (``train_data`` in the store's model record, copied from the checkpoint). Otherwise
(an external checkpoint, a registry model, a checkpoint trained on all of train or with
another fraction or seed) T is fitted on a seeded random half of the clean test cell and
every cell is reported on the other half, with a visible note — or, with ``strict``, the
analysis refuses in one line.

>>> validation_ok({"train_data": {"val_split": "train-val", "val_fraction": 0.1,
...                               "split_seed": 42}})
(True, 'the checkpoint held out train-val (10 %, seed 42)')
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...constants import SPLIT_SEED, VAL_FRACTION
from ...store import Cell, ResultsStore
from ._core import CalibrationInputError, TemperatureFit, fit_temperature

# The seeded split of the clean test cell used when no trustworthy validation cell exists.
FALLBACK_SPLIT_SEED = 0

def validation_ok(meta: dict | None) -> tuple[bool, str]:
    """Whether the evaluator's ``train-val`` images are unseen by a model, from its store
    metadata; (ok, why in words)."""
    data = (meta or {}).get("train_data")
    if not isinstance(data, dict):
        src = (meta or {}).get("source", "unknown")
        return False, (f"its training split is unknown (model source: {src}; only failmodes "
                       "checkpoints record it)")
    want = ("train-val", VAL_FRACTION, SPLIT_SEED)
    got = (data.get("val_split"), data.get("val_fraction"), data.get("split_seed"))
    if got[0] != want[0] or got[1] is None or abs(float(got[1]) - want[1]) > 1e-12 \
            or got[2] != want[2]:
        return False, (f"its checkpoint held out {got[0] or 'nothing'} (fraction {got[1]}, "
                       f"seed {got[2]}), not the evaluator's train-val ({VAL_FRACTION:.0%}, "
                       f"seed {SPLIT_SEED})")
    return True, (f"the checkpoint held out train-val ({100 * VAL_FRACTION:.0f} %, "
                  f"seed {SPLIT_SEED})")


def fit_for_model(store: ResultsStore, model: str, meta: dict | None, val: list[Cell],
                  clean: list[Cell], strict: bool = False):
    """(fit or None, fitted_on, dataset indices to report on or None, notes)."""
    notes: list[str] = []
    ok, why = validation_ok(meta)
    if val and ok:
        rows = store.predictions(val[0], logits=True)
        if rows["logits"] is not None:
            fit = fit_temperature(torch.from_numpy(rows["logits"]), torch.from_numpy(rows["label"]))
            return (fit, f"{val[0].dataset} clean (n={fit.n}; {why})", None,
                    notes + _bound_note(model, fit))
        notes.append(f"{model}: the validation cell has no stored logits, so T is fitted on "
                     "half of the clean test cell instead.")
    elif val:
        if strict:
            raise CalibrationInputError(f"{model}: refusing to fit T on {val[0].dataset}: {why}")
        notes.append(f"WARNING {model}: the validation cell {val[0].dataset} is not used for T: "
                     f"{why}, so it may hold training images.")
    if not clean:
        notes.append(f"NO TEMPERATURE for {model}: no usable validation cell and no clean test "
                     "cell (evaluate with the clean cell); after-T columns are blank.")
        return None, "", None, notes
    rows = store.predictions(clean[0], logits=True)
    if rows["logits"] is None:
        notes.append(f"NO TEMPERATURE for {model}: the clean cell has no stored logits; "
                     "after-T columns are blank.")
        return None, "", None, notes
    n = len(rows["idx"])
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(FALLBACK_SPLIT_SEED))
    fit_pos, rep_pos = perm[: n // 2], perm[n // 2:]
    if len(fit_pos) == 0:
        notes.append(f"NO TEMPERATURE for {model}: the clean cell has {n} image(s), too few "
                     "to split.")
        return None, "", None, notes
    logits = torch.from_numpy(rows["logits"])[fit_pos]
    fit = fit_temperature(logits, torch.from_numpy(rows["label"])[fit_pos])
    keep = np.sort(rows["idx"][rep_pos.numpy()])
    fitted_on = (f"random half of {clean[0].dataset} clean (n={fit.n}, seed "
                 f"{FALLBACK_SPLIT_SEED}); all cells reported on the other {len(keep)} images")
    notes.append(f"WARNING {model}: no trustworthy clean validation cell, so T was fitted on a "
                 f"random half of the clean test cell ({fit.n} images) and EVERY cell is "
                 f"reported on the other half only ({len(keep)} images).")
    return fit, fitted_on, keep, notes + _bound_note(model, fit)


def _bound_note(model: str, fit: TemperatureFit) -> list[str]:
    if not fit.at_bound:
        return []
    return [f"{model}: the fitted temperature {fit.temperature:.3g} sits at the search bound; "
            "the fit data cannot pin T down (e.g. no errors at all)."]


def save_temperature(store: ResultsStore, model: str, fit: TemperatureFit | None,
                     fitted_on: str = "") -> None:
    """Record (or with ``fit=None`` remove) the temperature of ``model`` in the store."""
    if fit is None:
        store.save_temperature(model, None)
    else:
        store.save_temperature(model, fit.temperature, fitted_on, fit.nll_before, fit.nll_after)


def read_temperatures(store: ResultsStore | str | Path) -> dict[str, dict]:
    """``{model name: {temperature, fitted_on, nll_before, nll_after}}``; {} when never fitted.

    >>> read_temperatures("runs/quick/results.sqlite")["r18"]["temperature"]  # doctest: +SKIP
    1.71
    """
    if isinstance(store, ResultsStore):
        return store.temperatures()
    with ResultsStore(store, readonly=True) as st:
        return st.temperatures()
