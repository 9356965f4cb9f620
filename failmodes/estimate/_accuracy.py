"""``accuracy(model, images, reference=...)``: every label-free estimate for one unlabelled
batch, the shift tests, and (given a run folder) the stored cells it resembles."""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch
from torch import nn

from ._checks import EstimateError, check_labels
from .estimators import METHODS, Estimate, Reference, estimate_accuracy, fit_reference
from .forward import BATCH_SIZE, model_outputs
from .nearest import NearestCell, nearest_cells, stored_cell_outputs
from .shift import ALPHA, KSResult, MMDResult, ks_test, mmd_test

# The estimate a one-line answer quotes when no run-specific ranking says otherwise:
# ATC with temperature scaling, the most accurate on CIFAR-10 synthetic shifts in Garg et al.
DEFAULT_HEADLINE = "ATC-MC-TS"


@dataclass(frozen=True)
class LabelFreeResult:
    """What ``accuracy`` found for one batch (all accuracies are fractions in [0, 1]).

    ``estimates`` in report order; ``ks`` (softmax) and ``mmd`` (features; None when the
    model has no linear head or the reference has no features) shift tests; ``nearest``
    stored cells (empty without a run); ``predictions``/``confidence`` per image (raw
    softmax); ``true_accuracy`` when labels were given (the check, never an input).
    """

    n_images: int
    estimates: list[Estimate]
    ks: KSResult
    mmd: MMDResult | None
    nearest: list[NearestCell]
    reference: dict
    predictions: torch.Tensor = field(repr=False)
    confidence: torch.Tensor = field(repr=False)
    true_accuracy: float | None = None
    headline: str = DEFAULT_HEADLINE
    notes: list[str] = field(default_factory=list)

    def estimate(self, name: str) -> Estimate:
        for e in self.estimates:
            if e.name == name:
                return e
        raise EstimateError(f"no estimate {name!r}; have {[e.name for e in self.estimates]}")

    @property
    def shifted(self) -> bool:
        return self.ks.shifted or bool(self.mmd is not None and self.mmd.shifted)

    def sentence(self) -> str:
        """E.g. "looks like fog at 3 (stored accuracy 71.0 %); estimated accuracy 69.0 %
        (ATC-MC-TS, 66.0–72.0)"."""
        e = self.estimate(self.headline)
        est = (f"estimated accuracy {100 * e.accuracy:.1f} % ({e.name}, "
               f"{100 * e.low:.1f}–{100 * e.high:.1f})")
        return f"{self.nearest[0].describe()}; {est}" if self.nearest else est

    def as_dict(self) -> dict:
        return {"n_images": self.n_images, "headline": self.headline,
                "sentence": self.sentence(),
                "estimates": [e.as_dict() for e in self.estimates],
                "shift": {"ks": self.ks.as_dict(),
                          "mmd": self.mmd.as_dict() if self.mmd is not None else None,
                          "shifted": self.shifted},
                "nearest": [c.as_dict() for c in self.nearest], "reference": self.reference,
                "true_accuracy": self.true_accuracy, "notes": list(self.notes)}


def _reference(model: nn.Module, reference, temperature, batch_size, device) -> Reference:
    if isinstance(reference, Reference):
        return reference
    if isinstance(reference, tuple) and len(reference) == 2:
        outputs, labels = reference
        return fit_reference(outputs, labels, temperature=temperature)
    if hasattr(reference, "images") and hasattr(reference, "labels"):
        out = model_outputs(model, reference.images, batch_size=batch_size, device=device)
        return fit_reference(out.logits, reference.labels, temperature=temperature,
                             features=out.features)
    raise EstimateError("reference: pass a labelled data set (.images, .labels), a tuple "
                        "(logits N×C, labels N) or a fitted estimate.Reference; got "
                        f"{type(reference).__name__}")


def accuracy(model: nn.Module, images, reference, *, labels=None,
             run: str | os.PathLike | None = None, run_model: str | None = None,
             temperature: float | None = None, methods=METHODS, n_boot: int = 1000,
             level: float = 0.95, seed: int = 0, alpha: float = ALPHA, mmd: bool = True,
             nearest: int = 5, headline: str = DEFAULT_HEADLINE,
             batch_size: int = BATCH_SIZE, device=None) -> LabelFreeResult:
    """Estimate ``model``'s accuracy on unlabelled ``images`` without their labels.

    model: a Classifier (pixel-space images in, logits out). images: uint8 N×H×W×3 or
    float N×3×H×W in [0, 1]. reference: labelled source-distribution data the model did
    not train on (a data set, ``(logits, labels)``, or a fitted ``Reference``); T is
    fitted on it by NLL unless ``temperature`` is given. labels: the batch's labels, if
    known, only to report the true accuracy beside the estimates. run, run_model: a run
    folder and the model's name in its store, to rank the stored cells by distance
    (``nearest`` of them). Intervals: ``level`` percentile bootstrap over the batch's
    images, ``n_boot`` resamples from ``seed``.

    >>> r = fm.estimate.accuracy(model, unlabelled, reference=val_set)   # doctest: +SKIP
    >>> r.sentence()                                                      # doctest: +SKIP
    'estimated accuracy 69.0 % (ATC-MC-TS, 66.0–72.0)'
    """
    if not isinstance(model, nn.Module):
        raise EstimateError(f"model: expected a Classifier (torch.nn.Module), got "
                            f"{type(model).__name__}")
    ref = _reference(model, reference, temperature, batch_size, device)
    out = model_outputs(model, images, batch_size=batch_size, device=device)
    notes: list[str] = []
    ests = estimate_accuracy(ref, out.logits, methods=methods, n_boot=n_boot, level=level,
                             seed=seed)
    if headline not in [e.name for e in ests]:
        raise EstimateError(f"headline {headline!r} is not among the estimates "
                            f"{[e.name for e in ests]}")
    probs = torch.softmax(out.logits.double(), dim=1)
    ks = ks_test(ref.probs, probs, alpha=alpha)
    mmd_result = None
    if mmd and ref.features is None:
        notes.append("MMD test skipped: the reference has no features (pass a data set as "
                     "reference, not logits)")
    elif mmd and out.features is None:
        notes.append("MMD test skipped: the model has no linear head to take features from")
    elif mmd:
        mmd_result = mmd_test(ref.features, out.features, alpha=alpha, seed=seed)
    near: list[NearestCell] = []
    if run is not None:
        if run_model is None:
            raise EstimateError("run_model: name the model of the run's store to compare with")
        near = nearest_cells(probs, stored_cell_outputs(run, run_model), k=nearest)
    truth = None
    if labels is not None:
        y = check_labels(labels, probs.shape[0], probs.shape[1], "labels")
        truth = float((probs.argmax(1) == y).double().mean())
    summary = {"n": ref.n, "accuracy": ref.accuracy, "temperature": ref.temperature,
               "temperature_note": ref.temperature_note,
               "confidence": ref.conf[""], "confidence_ts": ref.conf["-TS"]}
    return LabelFreeResult(n_images=int(probs.shape[0]), estimates=ests, ks=ks, mmd=mmd_result,
                           nearest=near, reference=summary, predictions=probs.argmax(1),
                           confidence=probs.amax(1).float(), true_accuracy=truth,
                           headline=headline, notes=notes)
