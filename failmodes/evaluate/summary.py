"""What an evaluation returns (``EvalSummary``) and the table ``failmodes evaluate`` prints:
per model and stressor, the mean accuracy over its levels (clean first, then corruptions in
the CIFAR-10-C order, then sweeps)."""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from ..store import CLEAN, ResultsStore, is_validation, stressor_info
from ..stressors.registry import CIFAR10C_ORDER


@dataclass
class EvalSummary:
    """One evaluation's outcome (every torchrun rank gets the same).

    cells: cells in the grid; computed / skipped: computed now / already in the store;
    failed: ``[{"cell": CellKey as a dict, "error": reason}]``; images: model-images
    computed (an image counts once per model); wall_s: the whole call; compute_s: stress,
    model, rows and store writes, without loading data and models; images_per_s: images /
    compute_s (None when nothing ran); table: ``corruption_table`` of the evaluated data;
    warnings: what looks broken (chance-level clean accuracy, mean/std off the [0, 1] scale).
    """

    run_dir: str
    store: str
    cells: int
    computed: int
    skipped: int
    failed: list[dict] = field(default_factory=list)
    images: int = 0
    wall_s: float = 0.0
    compute_s: float = 0.0
    images_per_s: float | None = None
    table: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # sanity.sanity_warnings of the store


def corruption_table(store: ResultsStore, dataset: str | None = None,
                     model: str | None = None) -> list[dict]:
    """Rows {"model", "dataset", "stressor", "family", "severities", "accuracy"}: accuracy
    averaged over seeds per level, then over the levels (validation splits left out)."""
    per_level = defaultdict(list)
    for r in store.accuracy_table(model):
        if is_validation(r["dataset"]) or (dataset is not None and r["dataset"] != dataset):
            continue
        per_level[(r["model"], r["dataset"], r["stressor"], float(r["severity"]))].append(
            r["accuracy"])
    groups = defaultdict(list)
    for (m, d, s, _), accs in per_level.items():
        groups[(m, d, s)].append(float(np.mean(accs)))
    order = {m["name"]: i for i, m in enumerate(store.models())}
    rank = {n: i for i, n in enumerate(CIFAR10C_ORDER)}

    def sort_key(item):
        (m, d, s), _ = item
        return (order.get(m, 0), d, s != CLEAN, stressor_info(s).kind,
                (rank.get(s, len(rank)), s))
    return [{"model": m, "dataset": d, "stressor": s, "family": stressor_info(s).family,
             "severities": len(accs), "accuracy": float(np.mean(accs))}
            for (m, d, s), accs in sorted(groups.items(), key=sort_key)]
