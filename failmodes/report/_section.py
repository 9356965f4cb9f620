"""What a report section is (:class:`Section`: facts, figures, tables and notes under a
title) and the paragraph each of the report's own sections opens with (``INTROS``; an
analysis's section opens with the intro its registration declares)."""
from __future__ import annotations

from dataclasses import dataclass, field

from ._format import Figure, Table

# What each section that is not an analysis shows and how to read it: one paragraph above
# its content.
INTROS = {
    "training": "Loss and accuracy per epoch for every model trained by this study "
                "(train dashed, test solid). A widening gap means over-fitting; a test "
                "curve still rising means the budget stopped training early.",
    "comparison": "Per-corruption accuracy of each model minus the baseline, on the very same "
                  "corrupted images (paired; severities 1–5, each image counted once). A "
                  "delta is marked * when its paired sign-flip test (exact with few "
                  "discordant images) stays below 0.05 after Holm's correction across the "
                  "corruptions; the Holm interval and the figure's whiskers invert that same "
                  "test at the row's Holm step level (the shifts of the delta it keeps), so "
                  "they exclude 0 exactly where the row is marked. "
                  "Both are conditional on the "
                  "trained networks: they count test-image noise, not training-seed "
                  "variation.",
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
