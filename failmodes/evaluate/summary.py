"""The table ``failmodes evaluate`` prints: per model and stressor, the mean accuracy over
its levels (clean first, then corruptions in the CIFAR-10-C order, then sweeps)."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from ..store import CLEAN, ResultsStore, is_validation, stressor_info
from ..stressors.registry import CIFAR10C_ORDER


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
