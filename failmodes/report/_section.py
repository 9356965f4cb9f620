"""What a report section is (:class:`Section`: facts, figures, tables and notes under a
title) and the paragraph each section opens with (``INTROS``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ._format import Figure, Table

# What each section shows and how to read it: one paragraph above its content.
INTROS = {
    "training": "Loss and accuracy per epoch for every model trained by this study "
                "(train dashed, test solid). A widening gap means over-fitting; a test "
                "curve still rising means the budget stopped training early.",
    "metrics": "Accuracy for every corruption × severity cell, per model, and the corruption "
               "error (CE) and mCE of Hendrycks & Dietterich (2019) against the baseline.",
    "curves": "How accuracy and confidence fall as severity rises. Each curve is fitted with "
              "competing shapes and labelled with its failure regime: graceful, linear, "
              "threshold-collapse (flat, then a cliff) or early-damage-plateau.",
    "comparison": "Per-corruption accuracy of each model minus the baseline, on the very same "
                  "corrupted images (paired; severities 1–5, each image counted once). ± is "
                  "the 95 % normal interval, for scale; a delta is marked * when its paired "
                  "sign-flip test (exact with few discordant images) stays below 0.05 after "
                  "Holm's correction across the corruptions. Both are conditional on the "
                  "trained networks: they count test-image noise, not training-seed "
                  "variation.",
    "failures": "Wrong predictions made with high confidence, the most frequent confusions and "
                "accuracy at the superclass level (does a wrong answer stay in the right "
                "family?).",
    "calibration": "Whether confidence can be trusted under shift: expected calibration error "
                   "on clean and corrupted data, before and after temperature scaling, and "
                   "how well confidence flags errors.",
    "cam": "Grad-CAM on a fixed sample: where each model looks on clean images and how that "
           "attention drifts as corruption grows, and explanations of confident failures.",
    "sweeps": "Accuracy along parametric sweeps (natural units), and single-image probes: one "
              "photo pushed through a stressor with the prediction at each level.",
    "adversarial": "Robust accuracy under white-box attacks (FGSM, PGD) as the budget ε grows, "
                   "per model: ε in its natural unit (L∞ in grey levels /255, L2 in pixel "
                   "units), with each attack's success rate, loss and settings.",
    "appendix": "Everything needed to reproduce this report.",
}



@dataclass
class Section:
    id: str
    title: str
    status: str = "ok"             # ok | failed | missing | skipped | empty
    message: str = ""
    intro: str = ""
    facts: list[tuple[str, str]] = field(default_factory=list)
    figures: list[Figure] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float | None = None
    # Appendix only: the resolved study as YAML and the commands that built the run.
    resolved_yaml: str | None = None
    commands: list[dict] = field(default_factory=list)
