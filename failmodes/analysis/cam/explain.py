"""Grad-CAM explanations of confident failures: for the most confident wrong predictions
of each clean and corrupted cell, the CAM of the predicted (wrong) class beside the CAM of
the true class, each failure tagged with a null-calibrated category
(``cam_categories.py``), and the counts per group with the null rate beside them.

>>> fails = explain_failures(model, ds, store, cells, per_cell=4)       # doctest: +SKIP
>>> failure_type_counts(fails)["clean"]["context"]                      # doctest: +SKIP
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ...constants import CONFIDENT_THRESHOLD
from ...store import CLEAN, stress_like_cell, stressor_family
from ._core import compute_cams
from ._measures import border_share, overlap, upsample
from .categories import FAILURE_TYPES, ContextRule, categorize_failure, null_rule, superclass_lookup
from .drift import images_at


@dataclass
class Failures:
    records: list             # one dict per categorised failure
    n_total: dict             # group -> number of high-confidence failures in the store
    examples: list            # top failure per cell, with images and CAMs, for the figure
    reproduced: float         # fraction whose recomputed prediction equals the stored one
    rule: ContextRule | None = None   # the null-calibrated context rule that was applied


def explain_failures(model, dataset, store, cells, *,
                     stressors: Sequence[str] | None = None, method: str = "gradcam",
                     layer: str | None = None, per_cell: int = 8,
                     confidence_threshold: float = CONFIDENT_THRESHOLD, batch_size: int = 128,
                     superclass_of: Callable[[str], str | None] | None = None,
                     rule: ContextRule | None = None) -> Failures:
    """CAMs of the predicted (wrong) and the true class for the ``per_cell`` most confident
    failures (wrong, conf > ``confidence_threshold``) of each clean and corrupted cell in
    ``cells`` (store ``Cell`` records of one model and data set), each tagged with a
    failure type (``categorize_failure`` with the null-calibrated ``rule``; default: the
    rule calibrated at this layer's map size). Border share and overlap are measured on the
    raw maps.

    Corrupted images are rebuilt from the data set with the cell's stressor, severity and
    seed at the images' dataset indices: the same pixels the evaluation saw.
    """
    device = next(model.parameters()).device
    classes = list(dataset.classes)
    superclass_of = superclass_of or superclass_lookup("auto", classes)
    pos = {int(i): p for p, i in enumerate(dataset.indices.tolist())}
    records, examples = [], []
    n_total: dict[str, int] = {}
    n_same = n_checked = 0
    for cell in cells:
        if cell.stressor != CLEAN and (stressors is not None and cell.stressor not in stressors):
            continue
        group = stressor_family(cell.stressor)
        p = store.predictions(cell)
        wrong = np.flatnonzero((p["pred"] != p["label"]) & (p["conf"] > confidence_threshold))
        n_total[group] = n_total.get(group, 0) + int(wrong.size)
        keep = [i for i in wrong[np.argsort(-p["conf"][wrong], kind="stable")]
                if int(p["idx"][i]) in pos][:per_cell]
        if not keep:
            continue
        idx = torch.as_tensor(p["idx"][keep], dtype=torch.int64)
        x = images_at(dataset, torch.tensor([pos[int(i)] for i in idx]), device)
        x = stress_like_cell(x, cell, idx, model=model,
                             labels=torch.as_tensor(p["label"][keep], device=device))
        pred, true = p["pred"][keep], p["label"][keep]
        cams, raw, lg = compute_cams(model, torch.cat([x, x]), np.concatenate([pred, true]),
                                     method=method, layer=layer, batch_size=batch_size,
                                     raw=True, return_logits=True)
        if rule is None:
            rule = null_rule((raw.shape[-2], raw.shape[-1]), (x.shape[-2], x.shape[-1]))
        k = len(keep)
        cam_pred, cam_true = cams[:k], cams[k:]
        mass = upsample(raw, (x.shape[-2], x.shape[-1]))
        bs, ov = border_share(mass[:k]), overlap(mass[:k], mass[k:])
        n_same += int((lg[:k].argmax(1).numpy() == pred).sum())
        n_checked += k
        for j, i in enumerate(keep):
            rec = {"stressor": cell.stressor, "family": group, "severity": float(cell.severity),
                   "idx": int(p["idx"][i]), "true": classes[int(true[j])],
                   "pred": classes[int(pred[j])], "conf": float(p["conf"][i]),
                   "pred_border_share": float(bs[j]), "pred_true_overlap": float(ov[j])}
            rec["type"] = categorize_failure(rec["true"], rec["pred"], bs[j], ov[j],
                                             superclass_of,
                                             border_threshold=rule.border_threshold,
                                             overlap_threshold=rule.overlap_threshold)
            records.append(rec)
        examples.append({**records[-k], "image": x[0].cpu(), "cam_pred": cam_pred[0],
                         "cam_true": cam_true[0]})
    return Failures(records, n_total, examples,
                    n_same / n_checked if n_checked else float("nan"), rule)


def failure_type_counts(fails: Failures) -> dict[str, dict]:
    """``{group: {"n_high_conf": ..., "n_categorised": ..., type: count, ...}}`` for "clean",
    each corruption family and "all_corrupted"."""
    from ...stressors import CORRUPTION_FAMILIES
    out: dict[str, dict] = {}
    rank = {g: i for i, g in enumerate((CLEAN,) + CORRUPTION_FAMILIES)}
    groups = sorted(fails.n_total, key=lambda g: rank.get(g, len(rank)))
    for g in groups + ["all_corrupted"]:
        recs = [r for r in fails.records
                if (r["family"] == g) or (g == "all_corrupted" and r["family"] != CLEAN)]
        n_high = (sum(v for k, v in fails.n_total.items() if k != CLEAN)
                  if g == "all_corrupted" else fails.n_total[g])
        row = {"n_high_conf": n_high, "n_categorised": len(recs)}
        row.update({t: sum(r["type"] == t for r in recs) for t in FAILURE_TYPES})
        # What structureless maps would give: the context count's null, beside it.
        row["null_context_rate"] = fails.rule.null_context_rate if fails.rule else None
        out[g] = row
    return out


def gallery(examples: list, rows: int = 8, clean_rows: int = 3) -> list:
    """Up to ``clean_rows`` clean failures, then corrupted ones, most confident first, with
    no image and no stressor twice (the same image fails at several severities)."""
    pick: list[dict] = []
    seen_img, seen_st = set(), set()
    n_clean = 0
    for e in sorted(examples, key=lambda e: (e["stressor"] != CLEAN, -e["conf"])):
        clean = e["stressor"] == CLEAN
        if len(pick) >= rows or e["idx"] in seen_img or (clean and n_clean >= clean_rows) \
                or (not clean and e["stressor"] in seen_st):
            continue
        pick.append(e)
        n_clean += clean
        seen_img.add(e["idx"])
        seen_st.add(e["stressor"])
    return pick
