"""The ``errors_concentrate`` claim: "photos on blue backgrounds were usually mixed up with
birds or airplanes", written as

    {errors_concentrate: {background: blue}, model: m, classes: [ship, bird],
     confused_with: airplane}

Population: the images of ``classes`` (all when absent) in one cell. Outcome: wrong, and
predicted as one of ``confused_with`` when given. The claim says the outcome is more
frequent inside the slice than outside it.

- supported: one-sided Fisher exact p (more frequent inside) < alpha;
- contradicted: the exact conditional one-sided (1 - alpha) upper bound of the odds ratio
  inside/outside is below ``min_ratio``: whatever concentration there is, it is smaller
  than the claim's words allow (default 1.25: less than 25 % more frequent). The odds ratio
  is at least the rate ratio whenever the rate ratio is ≥ 1, so this is a level-alpha test
  of "rate ratio ≥ min_ratio" (conservative); with ``min_ratio=1``: "significantly less
  frequent";
- inconclusive otherwise.

``check_claim(run_dir, claim)`` reads what it needs from a run folder (the model's cell,
the clean images' attributes); ``claim`` may name the cell with ``stressor`` and
``severity`` (default: the clean cell) and the bins with ``bins`` (default 4).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats

from ._errors import SliceError
from ._find import fisher_greater

CLAIM_KEY = "errors_concentrate"


@dataclass
class ConcentrationVerdict:
    verdict: str                     # supported | contradicted | inconclusive
    p: float                         # one-sided Fisher (more frequent inside)
    rate_in: float
    rate_out: float
    n_in: int
    n_out: int
    ratio: float
    ratio_lo: float                  # two one-sided (1 - alpha) bounds of the rate ratio
    ratio_hi: float                  # (Katz log interval, shown)
    odds_ratio_hi: float             # exact one-sided upper bound of the odds ratio (decides)
    evidence: str


def _as_list(x) -> list[str]:
    return [x] if isinstance(x, str) else list(x or [])


def _slice_mask(spec, conditions: dict, n: int) -> tuple[np.ndarray, str]:
    if not isinstance(spec, dict) or not spec:
        raise SliceError(f"{CLAIM_KEY} must map attributes to values, e.g. "
                         "{background: blue}, got {spec!r}")
    mask = np.ones(n, bool)
    for attr, value in spec.items():
        key = (str(attr), str(value))
        if key not in conditions:
            known = sorted(v for a, v in conditions if a == attr)
            raise SliceError(f"{CLAIM_KEY}: no slice {attr}: {value}" + (
                f" (known values: {', '.join(known)})" if known else
                f" (known attributes: {', '.join(sorted({a for a, _ in conditions}))})"))
        mask &= np.asarray(conditions[key], bool)
    return mask, " & ".join(f"{a}: {v}" for a, v in spec.items())


def check_concentration(claim: dict, conditions: dict, labels, preds, class_names: list[str],
                        *, alpha: float = 0.05, min_ratio: float = 1.25) -> ConcentrationVerdict:
    """Verdict of an ``errors_concentrate`` claim on one cell's ``labels`` and ``preds`` (N),
    with ``conditions`` = {(attribute, value): bool N mask} (``Condition.key -> mask``)."""
    labels, preds = np.asarray(labels), np.asarray(preds)
    inside, what = _slice_mask(claim.get(CLAIM_KEY), conditions, len(labels))
    index = {c: i for i, c in enumerate(class_names)}
    for name in _as_list(claim.get("classes")) + _as_list(claim.get("confused_with")):
        if name not in index:
            raise SliceError(f"{CLAIM_KEY}: unknown class {name!r}; the model's classes are "
                             f"{', '.join(class_names)}")
    classes = _as_list(claim.get("classes"))
    pop = np.isin(labels, [index[c] for c in classes]) if classes else np.ones(len(labels),
                                                                              bool)
    targets = _as_list(claim.get("confused_with"))
    outcome = preds != labels
    if targets:
        outcome &= np.isin(preds, [index[c] for c in targets])
    a_in, a_out = pop & inside, pop & ~inside
    n_in, n_out = int(a_in.sum()), int(a_out.sum())
    if n_in == 0 or n_out == 0:
        raise SliceError(f"{CLAIM_KEY}: {what} leaves {n_in} images inside and {n_out} "
                         "outside among the claim's classes; both sides need images")
    k_in, k_out = int(outcome[a_in].sum()), int(outcome[a_out].sum())
    p = float(fisher_greater(k_in, n_in, k_in + k_out, n_in + n_out))
    # Katz log rate-ratio interval; 0.5 added to zero counts (Haldane) keeps it finite.
    ki, ko = (k_in or 0.5), (k_out or 0.5)
    log_rr = np.log(ki / n_in) - np.log(ko / n_out)
    se = np.sqrt(1 / ki - 1 / n_in + 1 / ko - 1 / n_out)
    z = scipy.stats.norm.ppf(1 - alpha)
    lo, hi = float(np.exp(log_rr - z * se)), float(np.exp(log_rr + z * se))
    rr = (k_in / n_in) / (k_out / n_out) if k_out else float("inf")
    table = [[k_in, n_in - k_in], [k_out, n_out - k_out]]
    or_hi = float(scipy.stats.contingency.odds_ratio(table).confidence_interval(
        1 - alpha, alternative="less").high)
    if p < alpha:
        verdict = "supported"
    elif or_hi < min_ratio:
        verdict = "contradicted"
    else:
        verdict = "inconclusive"
    who = ", ".join(classes) if classes else "all images"
    how = f"predicted {' or '.join(targets)}" if targets else "wrong"
    evidence = (f"{who} with {what}: {100 * k_in / n_in:.1f} % {how} vs "
                f"{100 * k_out / n_out:.1f} % elsewhere (n {n_in} vs {n_out}); rate ratio "
                f"{rr:.3g} (one-sided {100 * (1 - alpha):.0f} % bounds {lo:.3g}–{hi:.3g}); "
                f"one-sided Fisher p {p:.2g}; odds ratio at most {or_hi:.3g} (exact, "
                f"one-sided {100 * (1 - alpha):.0f} %), contradicted below {min_ratio:g}")
    return ConcentrationVerdict(verdict, p, k_in / n_in, k_out / n_out, n_in, n_out, rr, lo,
                                hi, or_hi, evidence)


def check_claim(run_dir, claim: dict, *, alpha: float = 0.05,
                min_ratio: float = 1.25) -> ConcentrationVerdict:
    """The verdict of one ``errors_concentrate`` claim on the run in ``run_dir``: the
    attributes of its evaluated clean images, the named model's predictions in the named
    cell (default clean)."""
    import torch

    from ...evaluate import open_run
    from ._attributes import attribute_conditions, image_attributes
    model = claim.get("model")
    stressor = str(claim.get("stressor", "clean"))
    severity = float(claim.get("severity", 0.0))
    with open_run(run_dir) as ctx:
        if model not in ctx.model_names():
            raise SliceError(f"{CLAIM_KEY}: model {model!r} is not in {ctx.store.path}; "
                             f"stored: {', '.join(ctx.model_names())}")
        ds, key = ctx.dataset(), ctx.dataset_key()
        cells = [c for c in ctx.store.cells(model=model, dataset=key, stressor=stressor)
                 if c.severity == severity]
        if not cells:
            raise SliceError(f"{CLAIM_KEY}: no cell {stressor} {severity:g} of {model!r}")
        rows = ctx.store.predictions(min(cells, key=lambda c: c.seed))
        names = ctx.store.class_names(model)
    order = np.argsort(ds.indices.numpy())
    pos = order[np.searchsorted(ds.indices.numpy()[order], rows["idx"])]
    attrs = image_attributes(ds.images[torch.as_tensor(pos)])
    conds = {c.key: c.mask for c in attribute_conditions(attrs, n_bins=int(claim.get("bins", 4)))}
    return check_concentration(claim, conds, rows["label"], rows["pred"], names, alpha=alpha,
                               min_ratio=min_ratio)
