"""Label-free accuracy estimators fitted on labelled source data, applied to unlabelled
target outputs: AC, DoC, ATC (max-confidence and negative-entropy scores) and COT, each
raw (T = 1) and temperature-scaled (``-TS``: T fitted by NLL on the source).

- **AC**: the mean max-softmax probability of the target; exact for a calibrated model.
- **DoC** (Guillory et al. 2021): source accuracy minus the drop in mean confidence,
  ``acc_S − (conf_S − conf_T)``; exact when the calibration gap is the same on both.
- **ATC-MC / ATC-NE** (Garg et al., ICLR 2022): a threshold t on a score (max probability;
  negative entropy) set on the source so that the share of source scores above t equals
  the source accuracy; the estimate is the share of target scores above t. t sits halfway
  between the two source scores it separates (−inf when every source image is right).
- **COT** (Lu et al. 2023): one minus the optimal-transport cost between the target's
  softmax vectors and one-hot labels drawn from the source label marginal (``transport``);
  chosen over the nuclear-norm score (Deng et al. 2023) because COT needs nothing but the
  source label marginal, while the nuclear norm is mapped to accuracy by a regression
  fitted on synthetic shifted sets, which here would be the very grid it is checked on.

Every estimate is ``offset + mean_i(value_i)`` over target images (COT through its dual at
the optimum, to first order), so its interval is a percentile bootstrap over target images
with the source held fixed (``bootstrap``): it does not include the source's own sampling
error, and it bounds the estimator's value on the population the images came from, not
its bias.

>>> ref = fit_reference(src_logits, src_labels)                  # doctest: +SKIP
>>> [(e.name, round(e.accuracy, 3)) for e in estimate_accuracy(ref, tgt_logits)]  # doctest: +SKIP
[('AC', 0.712), ('AC-TS', 0.695), ...]
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ._checks import (
    EstimateError,
    check_count,
    check_labels,
    check_level,
    check_outputs,
    to_logits,
)
from .bootstrap import bootstrap_means
from .transport import transport_gain

METHODS = ("AC", "DoC", "ATC-MC", "ATC-NE", "COT")
SCORES = ("MC", "NE")   # ATC's scores: max confidence, negative entropy
TS_SUFFIX = "-TS"


def estimator_names(methods=METHODS) -> list[str]:
    """Every estimate's name in report order: each method raw, then temperature-scaled."""
    return [m + s for m in methods for s in ("", TS_SUFFIX)]


def scores(logits: torch.Tensor, temperature: float = 1.0) -> dict[str, torch.Tensor]:
    """Softmax ``probs`` N×C and the per-image scores ``MC`` (max probability) and ``NE``
    (negative entropy, nats) of ``logits / temperature``."""
    logp = torch.log_softmax(logits.double() / temperature, dim=1)
    p = logp.exp()
    return {"probs": p, "MC": p.amax(dim=1), "NE": (p * logp).sum(dim=1)}


def atc_threshold(source_scores: torch.Tensor, n_correct: int) -> float:
    """t with exactly ``n_correct`` of the source scores above it (scores without ties):
    halfway between the (N−k)-th and (N−k+1)-th smallest; −inf for k = N, +inf for k = 0."""
    s = torch.sort(source_scores.double()).values
    n = s.numel()
    if not 0 <= n_correct <= n:
        raise EstimateError(f"ATC: {n_correct} correct of {n} source images")
    if n_correct == n:
        return -math.inf
    if n_correct == 0:
        return math.inf
    lo, hi = float(s[n - n_correct - 1]), float(s[n - n_correct])
    return (lo + hi) / 2


@dataclass(frozen=True)
class Reference:
    """What the estimators keep from the labelled source (reference) set.

    ``probs``: source softmax at T = 1 (N×C float64, for the shift tests); ``accuracy``,
    ``label_marginal`` (C,); ``temperature`` fitted by NLL; per variant (``""`` raw,
    ``"-TS"`` scaled): mean max-probability ``conf`` and the ATC thresholds ``thresholds``
    ({"MC": t, "NE": t}). ``features``: source penultimate features when known.
    """

    n: int
    n_classes: int
    accuracy: float
    label_marginal: torch.Tensor
    temperature: float
    temperature_note: str
    conf: dict[str, float]
    thresholds: dict[str, dict[str, float]]
    probs: torch.Tensor
    features: torch.Tensor | None = field(default=None, repr=False)


def fit_reference(outputs, labels, *, probabilities: bool = False,
                  temperature: float | None = None, features=None) -> Reference:
    """Fit every estimator's source quantities on labelled source ``outputs`` (N×C logits, or
    probabilities with ``probabilities=True``) and ``labels`` (N,).

    ``temperature``: use this T instead of fitting one (NLL, Guo et al. 2017, through the
    calibration analysis's ``fit_temperature``). ``features``: N×D penultimate features
    for the MMD shift test.
    """
    x = check_outputs(outputs, "reference outputs")
    n, c = x.shape
    y = check_labels(labels, n, c, "reference labels")
    logits = to_logits(x, probabilities)
    note = "given"
    if temperature is None:
        # Imported here: calibration owns the fit, and estimate sits beside analysis, not
        # under it (a module-level import would load every analysis package).
        from ..analysis.calibration import fit_temperature
        fit = fit_temperature(logits, y)
        temperature = fit.temperature
        note = f"fitted by NLL on {n} reference images" + (
            " (at the search bound: the reference cannot pin T down)" if fit.at_bound else "")
    elif not (isinstance(temperature, float | int) and math.isfinite(temperature)
              and temperature > 0):
        raise EstimateError(f"temperature must be a positive number, got {temperature!r}")
    raw = scores(logits)
    correct = raw["probs"].argmax(dim=1) == y
    k = int(correct.sum())
    conf, thresholds = {}, {}
    for suffix, t in (("", 1.0), (TS_SUFFIX, float(temperature))):
        s = scores(logits, t)
        conf[suffix] = float(s["MC"].mean())
        thresholds[suffix] = {name: atc_threshold(s[name], k) for name in SCORES}
    feats = None
    if features is not None:
        feats = check_outputs(features, "reference features").float()
        if feats.shape[0] != n:
            raise EstimateError(f"reference features: {feats.shape[0]} rows for {n} images")
    marginal = torch.bincount(y, minlength=c).double() / n
    return Reference(n=n, n_classes=c, accuracy=k / n, label_marginal=marginal,
                     temperature=float(temperature), temperature_note=note, conf=conf,
                     thresholds=thresholds, probs=raw["probs"], features=feats)


@dataclass(frozen=True)
class Estimate:
    """One estimator's accuracy on the target, with its bootstrap interval (fractions)."""

    name: str           # e.g. "ATC-MC-TS"
    method: str         # e.g. "ATC-MC"
    scaled: bool        # temperature-scaled variant
    accuracy: float
    low: float
    high: float

    def as_dict(self) -> dict:
        return {"name": self.name, "method": self.method, "scaled": self.scaled,
                "accuracy": self.accuracy, "low": self.low, "high": self.high}


def estimator_values(ref: Reference, logits: torch.Tensor,
                     methods=METHODS) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """(names, offsets K, per-image values N×K): estimate k = offsets[k] + mean(values[:, k])."""
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise EstimateError(f"unknown estimator(s) {bad}; choose from {list(METHODS)}")
    names, offs, cols = [], [], []
    for suffix, t in (("", 1.0), (TS_SUFFIX, ref.temperature)):
        s = scores(logits, t)
        for m in methods:
            if m == "AC":
                off, val = 0.0, s["MC"]
            elif m == "DoC":
                off, val = ref.accuracy - ref.conf[suffix], s["MC"]
            elif m.startswith("ATC-"):
                score = m.partition("-")[2]
                off, val = 0.0, (s[score] > ref.thresholds[suffix][score]).double()
            else:  # COT
                g = transport_gain(s["probs"], ref.label_marginal)
                used = torch.isfinite(g.dual)
                off = float((ref.label_marginal[used] * g.dual[used]).sum())
                val = g.per_image
            names.append(m + suffix)
            offs.append(off)
            cols.append(val)
    order = [names.index(n) for n in estimator_names(methods)]
    return ([names[i] for i in order], torch.tensor([offs[i] for i in order], dtype=torch.float64),
            torch.stack([cols[i] for i in order], dim=1))


def estimate_accuracy(ref: Reference, outputs, *, probabilities: bool = False,
                      methods=METHODS, n_boot: int = 1000, level: float = 0.95,
                      seed: int = 0) -> list[Estimate]:
    """Every estimator's accuracy on unlabelled target ``outputs`` (N×C logits, or
    probabilities), each with a ``level`` percentile bootstrap interval over the N images
    (``n_boot`` resamples, seeded). Estimates and bounds are clipped to [0, 1]."""
    x = check_outputs(outputs, "target outputs", ref.n_classes)
    n_boot = check_count(n_boot, "n_boot")
    check_level(level)
    logits = to_logits(x, probabilities)
    names, offs, vals = estimator_values(ref, logits, methods)
    point = offs + vals.mean(dim=0)
    lo, hi = bootstrap_means(vals, n_boot=n_boot, level=level, seed=seed)
    clip = lambda v: float(np.clip(float(v), 0.0, 1.0))  # noqa: E731
    out = []
    for k, name in enumerate(names):
        scaled = name.endswith(TS_SUFFIX)
        out.append(Estimate(name=name, method=name[: -len(TS_SUFFIX)] if scaled else name,
                            scaled=scaled, accuracy=clip(point[k]), low=clip(offs[k] + lo[k]),
                            high=clip(offs[k] + hi[k])))
    return out
