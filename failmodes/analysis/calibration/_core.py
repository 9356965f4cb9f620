"""Functional core of the calibration analysis: tensors in, numbers out, no I/O.

Everything works on one cell at a time. ``scores_from_logits`` turns logits N×C (and an
optional temperature) into the per-image ``Scores`` that every metric reads;
``scores_from_rows`` does the same from the store's per-image fields when no logits were
stored (then Brier and temperature scaling are unavailable).

>>> s = scores_from_logits(torch.randn(100, 10), torch.randint(0, 10, (100,)))
>>> m = cell_metrics(s, n_bins=15)
>>> sorted(m)[:3]
['acc_at_cov80', 'acc_at_cov90', 'accuracy']
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...constants import CALIBRATION_BINS, CONFIDENT_THRESHOLD
from ...errors import FailmodesError

# Temperature search interval: wide enough for any trained net, narrow enough that a
# separable toy set (NLL -> 0 as T -> 0) stops at the bound instead of underflowing.
T_BOUNDS = (0.01, 100.0)
# Coverages at which selective accuracy is reported (fraction of images kept).
COVERAGES = (0.8, 0.9)


class CalibrationInputError(ValueError, FailmodesError):
    """Logits, labels or options unusable for calibration; one line naming what and why."""


@dataclass(frozen=True)
class Scores:
    """Per-image scores of one cell (all float64/bool tensors of length N on one device).

    ``conf`` max probability, ``correct`` top-1 hit, ``p_true`` probability of the label,
    ``entropy`` in nats, ``margin`` top-1 minus top-2 probability, ``sq_norm`` Σ_c p_c²
    (None when only store rows were available), ``n_classes`` C, ``nll`` −log p_true in
    nats from ``log_softmax`` (finite even when p_true underflows: a logit gap of 1000
    gives 1000; from store rows only, −log of the stored p_true).
    """

    conf: torch.Tensor
    correct: torch.Tensor
    p_true: torch.Tensor
    entropy: torch.Tensor
    margin: torch.Tensor
    sq_norm: torch.Tensor | None
    n_classes: int
    nll: torch.Tensor

    def subset(self, mask: torch.Tensor) -> Scores:
        return Scores(self.conf[mask], self.correct[mask], self.p_true[mask],
                      self.entropy[mask], self.margin[mask],
                      None if self.sq_norm is None else self.sq_norm[mask], self.n_classes,
                      self.nll[mask])


def check_logits(logits: torch.Tensor, labels: torch.Tensor, where: str = "logits") -> None:
    """Raise ``CalibrationInputError`` unless logits are finite N×C and labels in [0, C)."""
    if not isinstance(logits, torch.Tensor) or logits.ndim != 2:
        shape = tuple(logits.shape) if hasattr(logits, "shape") else type(logits).__name__
        raise CalibrationInputError(f"{where}: logits must be an N×C tensor, got {shape}")
    n, c = logits.shape
    if c < 2:
        raise CalibrationInputError(f"{where}: need at least 2 classes, got {c}")
    if labels.shape != (n,):
        raise CalibrationInputError(f"{where}: {n} logit rows but labels of shape "
                                    f"{tuple(labels.shape)}")
    bad = (~torch.isfinite(logits)).any(dim=1)
    if bool(bad.any()):
        raise CalibrationInputError(
            f"{where}: logits contain NaN or inf in {int(bad.sum())} of {n} rows (first at "
            f"row {int(bad.nonzero()[0, 0])}); re-evaluate this cell (the evaluator marks such "
            "cells failed)")
    if n and (int(labels.min()) < 0 or int(labels.max()) >= c):
        raise CalibrationInputError(f"{where}: labels must lie in [0, {c}), got "
                                    f"[{int(labels.min())}, {int(labels.max())}]")


def scores_from_logits(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0,
                       where: str = "logits") -> Scores:
    """Scores of ``softmax(logits / temperature)``; logits N×C float, labels N int."""
    labels = torch.as_tensor(labels, device=logits.device).long()
    check_logits(logits, labels, where)
    if not (temperature > 0 and math.isfinite(temperature)):
        raise CalibrationInputError(f"{where}: temperature must be finite and > 0, got "
                                    f"{temperature!r}")
    # float64: confidences of 0.9999999 must not round to 1.0 before binning and NLL.
    logp = torch.log_softmax(logits.double() / temperature, dim=1)
    p = logp.exp()
    top2 = p.topk(2, dim=1).values
    return Scores(conf=top2[:, 0], correct=p.argmax(1).eq(labels),
                  p_true=p.gather(1, labels.view(-1, 1)).squeeze(1),
                  entropy=-(p * logp).sum(1), margin=top2[:, 0] - top2[:, 1],
                  sq_norm=(p * p).sum(1), n_classes=int(logits.shape[1]),
                  nll=-logp.gather(1, labels.view(-1, 1)).squeeze(1))


def scores_from_rows(rows: dict, n_classes: int) -> Scores:
    """Scores from the store's per-image fields (conf, pred, label, p_true, entropy, margin)."""
    t = lambda k: torch.as_tensor(np.asarray(rows[k]), dtype=torch.float64)  # noqa: E731
    correct = torch.as_tensor(np.asarray(rows["pred"]) == np.asarray(rows["label"]))
    p_true = t("p_true")
    # Without logits only the stored probability exists; clamp so an underflow stays finite.
    return Scores(conf=t("conf"), correct=correct, p_true=p_true, entropy=t("entropy"),
                  margin=t("margin"), sq_norm=None, n_classes=int(n_classes),
                  nll=-torch.log(p_true.clamp_min(1e-300)))


# ---------------------------------------------------------------- calibration error
def reliability_bins(conf: torch.Tensor, correct: torch.Tensor,
                     n_bins: int = CALIBRATION_BINS) -> dict:
    """Equal-width top-label reliability bins on [0, 1], in float64: bin i holds
    [i/n, (i+1)/n) and the last bin is closed at 1, so a confidence of exactly 1.0 and one
    of 1 − 6e-8 share the last bin. The ECE of the table and the reliability diagram both
    come from these bins (``bins_ece``): one binning for both.

    Returns numpy arrays of length ``n_bins``: ``edges`` (n_bins + 1), ``count``,
    ``confidence`` (mean max-probability, NaN when empty) and ``accuracy``.

    >>> b = reliability_bins(torch.tensor([1.0, 1 - 6e-8, 0.5]), torch.tensor([1, 1, 0]), 2)
    >>> b["count"].tolist()
    [0, 3]
    """
    _check_bins(n_bins)
    # float64 throughout: float32 rounds every confidence above 1 − 6e-8 up to 1.0, and
    # torchmetrics (float32) then files those in an extra bin of its own.
    c64 = conf.double().contiguous()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64, device=conf.device)
    idx = (torch.bucketize(c64, edges, right=True) - 1).clamp_(0, n_bins - 1)
    count = torch.zeros(n_bins, dtype=torch.float64, device=conf.device)
    count.scatter_add_(0, idx, torch.ones_like(c64))
    s_conf = torch.zeros_like(count).scatter_add_(0, idx, c64)
    s_acc = torch.zeros_like(count).scatter_add_(0, idx, correct.double())
    with np.errstate(invalid="ignore", divide="ignore"):
        c, n = count.cpu().numpy(), s_conf.cpu().numpy()
        return {"edges": edges.cpu().numpy(), "count": c.astype(np.int64),
                "confidence": n / c, "accuracy": s_acc.cpu().numpy() / c}


def bins_ece(bins: dict) -> tuple[float, float]:
    """(ECE, MCE) from ``reliability_bins``: count-weighted and max |accuracy - confidence|."""
    c = bins["count"]
    if c.sum() == 0:
        return float("nan"), float("nan")
    gap = np.abs(bins["accuracy"] - bins["confidence"])[c > 0]
    return float((gap * c[c > 0]).sum() / c.sum()), float(gap.max())


def ece_mce(conf: torch.Tensor, correct: torch.Tensor,
            n_bins: int = CALIBRATION_BINS) -> tuple[float, float]:
    """Top-label ECE (L1) and MCE (max) with ``n_bins`` equal-width float64 bins: the same
    bins the reliability diagram draws. Equal to torchmetrics' ``binary_calibration_error``
    on (max-probability, hit) pairs whenever no confidence sits within float32 rounding of
    a bin edge or of 1 (tested)."""
    _check_bins(n_bins)
    if conf.numel() == 0:
        return float("nan"), float("nan")
    return bins_ece(reliability_bins(conf, correct, n_bins))


# ECE beside its uncertainty: resamples of the images for the interval, simulated
# perfectly calibrated models for the noise floor (review 2026-12-06, 2(e): ≈ 0.02 at 2000
# images and 15 bins, so 0.014 vs 0.023 is not a difference).
ECE_BOOT = 1000
ECE_FLOOR_DRAWS = 500
ECE_SEED = 0


def _bin_index(conf: torch.Tensor, n_bins: int) -> np.ndarray:
    """The bins of ``reliability_bins`` (float64, last bin closed at 1) as an index array."""
    c64 = conf.double().contiguous()
    edges = torch.linspace(0, 1, n_bins + 1, dtype=torch.float64, device=conf.device)
    return (torch.bucketize(c64, edges, right=True) - 1).clamp_(0, n_bins - 1).cpu().numpy()


def _ece_rows(idx: np.ndarray, conf: np.ndarray, correct: np.ndarray, n_bins: int) -> np.ndarray:
    """ECE of each row of R×N bin indices, confidences and correctness (one pass)."""
    r, n = idx.shape
    key = (np.arange(r)[:, None] * n_bins + idx).ravel()
    s_conf = np.bincount(key, conf.ravel(), r * n_bins).reshape(r, n_bins)
    s_acc = np.bincount(key, correct.ravel().astype(np.float64), r * n_bins).reshape(r, n_bins)
    return np.abs(s_acc - s_conf).sum(axis=1) / n


def ece_interval(conf: torch.Tensor, correct: torch.Tensor, n_bins: int = CALIBRATION_BINS, *,
                 n_boot: int = ECE_BOOT, seed: int = ECE_SEED) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the ECE (the same bins as ``ece_mce``),
    resampling images with replacement; seeded, so the same cell gives the same interval."""
    _check_bins(n_bins)
    idx = _bin_index(conf, n_bins)
    c, k = conf.double().cpu().numpy(), correct.cpu().numpy().astype(bool)
    res = np.random.default_rng(seed).integers(0, len(c), size=(n_boot, len(c)))
    boots = _ece_rows(idx[res], c[res], k[res], n_bins)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(lo), float(hi)


def ece_noise_floor(conf: torch.Tensor, n_bins: int = CALIBRATION_BINS, *,
                    draws: int = ECE_FLOOR_DRAWS, seed: int = ECE_SEED) -> dict:
    """The ECE a perfectly calibrated model would show with these confidences at this n:
    correctness drawn ~ Bernoulli(conf) ``draws`` times (seeded); ``{"mean", "q95", "n"}``.
    An ECE below ``q95`` cannot be told from perfect calibration at this sample size.

    >>> f = ece_noise_floor(torch.full((2000,), 0.8), 15)
    >>> 0.005 < f["mean"] < 0.02
    True
    """
    _check_bins(n_bins)
    c = conf.double().cpu().numpy()
    hits = np.random.default_rng(seed).random((draws, len(c))) < c
    idx = np.broadcast_to(_bin_index(conf, n_bins), hits.shape)
    e = _ece_rows(idx, np.broadcast_to(c, hits.shape), hits, n_bins)
    return {"mean": float(e.mean()), "q95": float(np.quantile(e, 0.95)), "n": len(c)}


def mean_cells_ece_floor(confs: list[torch.Tensor], n_bins: int = CALIBRATION_BINS, *,
                         draws: int = ECE_FLOOR_DRAWS, seed: int = ECE_SEED) -> dict:
    """The noise floor of a *mean of cells* ECE (the shifted headline): a perfectly
    calibrated model with each cell's own confidences, correctness ~ Bernoulli(conf) drawn
    ``draws`` times per cell (cell by cell from one seeded generator), each draw's ECEs
    averaged over the cells. ``{"mean", "q95", "n_cells", "n"}`` (n: predictions in all)."""
    _check_bins(n_bins)
    if not confs:
        raise CalibrationInputError("mean-of-cells ECE floor: no cells to average")
    rng = np.random.default_rng(seed)
    total = np.zeros(draws)
    for conf in confs:
        c = conf.double().cpu().numpy()
        hits = rng.random((draws, len(c))) < c
        idx = np.broadcast_to(_bin_index(conf, n_bins), hits.shape)
        total += _ece_rows(idx, np.broadcast_to(c, hits.shape), hits, n_bins)
    e = total / len(confs)
    return {"mean": float(e.mean()), "q95": float(np.quantile(e, 0.95)),
            "n_cells": len(confs), "n": int(sum(c.numel() for c in confs))}


# Bootstrap replicates per block of the mean-of-cells interval (bounds the memory:
# replicates x images counts and replicates x cells·bins sums).
_BOOT_BLOCK = 100


def mean_cells_ece_interval(cells: list, n_bins: int = CALIBRATION_BINS, *,
                            n_boot: int = ECE_BOOT, seed: int = ECE_SEED) -> tuple[float, float]:
    """95 % percentile bootstrap interval of the mean of the cells' ECEs, resampling images
    *paired across the cells*: each replicate draws U image ids with replacement from the U
    distinct ids of all cells, and every cell uses the drawn images it holds (with their
    multiplicity), so cells of the same images move together.

    cells: (image ids (N_c,), confidences (N_c,), correctness (N_c,)) per cell."""
    _check_bins(n_bins)
    if not cells:
        raise CalibrationInputError("mean-of-cells ECE interval: no cells to average")
    universe = np.unique(np.concatenate([np.asarray(i) for i, _, _ in cells]))
    u, k = len(universe), len(cells)
    # gap[image, cell·bins + bin] = correct − conf of that image in that cell (0 if absent);
    # a replicate's per-bin sums are then its image counts times this matrix.
    gap = np.zeros((u, k * n_bins))
    held = np.zeros((u, k))
    for j, (ids, conf, correct) in enumerate(cells):
        pos = np.searchsorted(universe, np.asarray(ids))
        d = correct.cpu().numpy().astype(np.float64) - conf.double().cpu().numpy()
        np.add.at(gap, (pos, j * n_bins + _bin_index(conf, n_bins)), d)
        held[pos, j] = 1.0
    draws = np.random.default_rng(seed).integers(0, u, size=(n_boot, u))
    boots = np.empty(n_boot)
    for a in range(0, n_boot, _BOOT_BLOCK):
        rows = draws[a:a + _BOOT_BLOCK]
        r = rows.shape[0]
        counts = np.bincount((rows + u * np.arange(r)[:, None]).ravel(),
                             minlength=r * u).reshape(r, u).astype(np.float64)
        sums = np.abs(counts @ gap).reshape(r, k, n_bins).sum(2)
        n_held = counts @ held
        with np.errstate(invalid="ignore", divide="ignore"):
            boots[a:a + r] = np.nanmean(np.where(n_held > 0, sums / n_held, np.nan), axis=1)
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return float(lo), float(hi)


def adaptive_ece(conf: torch.Tensor, correct: torch.Tensor,
                 n_bins: int = CALIBRATION_BINS) -> float:
    """Equal-mass (adaptive) ECE: sort by confidence, ``n_bins`` bins of N/n_bins images.

    Written here because torchmetrics only has equal-width bins. Bin sizes differ by at
    most one (``torch.tensor_split``); ties straddling a boundary are split by position.
    """
    _check_bins(n_bins)
    n = conf.numel()
    if n == 0:
        return float("nan")
    order = torch.argsort(conf, stable=True)
    c, a = conf[order].double(), correct[order].double()
    total = 0.0
    for cc, aa in zip(torch.tensor_split(c, min(n_bins, n)), torch.tensor_split(a, min(n_bins, n))):
        total += cc.numel() * abs(float(aa.mean()) - float(cc.mean()))
    return total / n


# ---------------------------------------------------------------- proper scores
def nll(logits: torch.Tensor, labels: torch.Tensor, temperature: float = 1.0) -> float:
    """Mean negative log-likelihood in nats of ``softmax(logits / T)`` (float64)."""
    return float(F.cross_entropy(logits.double() / temperature, labels.long()))


def brier(scores: Scores) -> float:
    """Multiclass Brier score summed over classes, Σ_c (p_c - y_c)², averaged over images;
    range [0, 2] (not the one-class [0, 1] form: divide by 2 for that).

    torchmetrics has no multiclass Brier score. Σ_c (p_c - y_c)² = Σ p² - 2 p_y + 1.
    """
    if scores.sq_norm is None or scores.conf.numel() == 0:
        return float("nan")
    return float((scores.sq_norm - 2 * scores.p_true + 1).mean())


# ---------------------------------------------------------------- failure prediction
def failure_detection(scores: Scores) -> dict:
    """AUROC and AUPR (errors as positives) of three uncertainty scores, by torchmetrics.

    ``msp`` ranks by 1 - max probability, ``entropy`` by entropy / ln C, ``margin`` by
    1 - (top-1 - top-2): all in [0, 1], so torchmetrics never applies its sigmoid.
    NaN when the cell has no errors or no hits (the ranking is undefined).
    """
    from torchmetrics.functional.classification import binary_auroc, binary_average_precision
    errors = (~scores.correct).long()
    out = {}
    n_err = int(errors.sum())
    defined = 0 < n_err < errors.numel()
    detectors = {"msp": 1 - scores.conf,
                 "entropy": scores.entropy / math.log(scores.n_classes),
                 "margin": 1 - scores.margin}
    for name, u in detectors.items():
        u = u.float().clamp(0, 1)
        out[f"auroc_{name}"] = float(binary_auroc(u, errors)) if defined else float("nan")
        out[f"aupr_{name}"] = (float(binary_average_precision(u, errors)) if defined
                               else float("nan"))
    return out


def risk_coverage(conf: torch.Tensor, correct: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Selective risk (error rate of the kept images) when keeping the k most confident,
    k = 1..N. Returns (coverage k/N, risk), both length N, numpy float64.

    Ties in confidence are broken by position (stable sort), so a saturated model's
    curve at the top depends on image order; AURC is the mean of ``risk``.
    """
    n = conf.numel()
    order = torch.argsort(-conf.double(), stable=True)
    err = (~correct[order]).double().cumsum(0)
    k = torch.arange(1, n + 1, dtype=torch.float64, device=conf.device)
    return (k / n).cpu().numpy(), (err / k).cpu().numpy()


def selective_accuracy(coverage: np.ndarray, risk: np.ndarray, at: float) -> float:
    """Accuracy of the ceil(at·N) most confident images (``at`` in (0, 1])."""
    n = len(risk)
    if n == 0:
        return float("nan")
    k = min(n, max(1, math.ceil(at * n - 1e-9)))
    return float(1.0 - risk[k - 1])


def cell_metrics(scores: Scores, n_bins: int = CALIBRATION_BINS,
                 confidence_threshold: float = CONFIDENT_THRESHOLD) -> dict:
    """Every per-cell number of the calibration analysis, as a flat dict of floats.

    Keys: n, accuracy, mean_conf, ece, ece_adaptive, mce, nll (nats, from log_softmax),
    brier_sum (Σ over classes, 0–2), dangerous_rate (wrong
    and conf > ``confidence_threshold``, fraction of all images), dangerous_share (fraction of
    the errors), auroc/aupr of msp/entropy/margin, acc_at_cov80/90, aurc.
    """
    n = scores.conf.numel()
    if n == 0:
        raise CalibrationInputError("cell has no images")
    ece, mce = ece_mce(scores.conf, scores.correct, n_bins)
    wrong = ~scores.correct
    danger = wrong & (scores.conf > confidence_threshold)
    cov, risk = risk_coverage(scores.conf, scores.correct)
    m = {"n": n, "accuracy": float(scores.correct.double().mean()),
         "mean_conf": float(scores.conf.mean()), "ece": ece,
         "ece_adaptive": adaptive_ece(scores.conf, scores.correct, n_bins), "mce": mce,
         "nll": float(scores.nll.mean()),
         "brier_sum": brier(scores),
         "dangerous_rate": float(danger.double().mean()),
         "dangerous_share": (float(danger.sum()) / int(wrong.sum())) if bool(wrong.any())
         else float("nan")}
    m.update(failure_detection(scores))
    for c in COVERAGES:
        m[f"acc_at_cov{round(c * 100)}"] = selective_accuracy(cov, risk, c)
    m["aurc"] = float(risk.mean())
    return m


# ---------------------------------------------------------------- temperature scaling
@dataclass(frozen=True)
class TemperatureFit:
    temperature: float
    nll_before: float   # nats, at T = 1
    nll_after: float    # nats, at the fitted T
    n: int              # images it was fitted on
    at_bound: bool      # the optimum hit T_BOUNDS: the data cannot pin T down


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor,
                    bounds: tuple[float, float] = T_BOUNDS) -> TemperatureFit:
    """Temperature minimising the NLL of ``softmax(logits / T)`` (Guo et al. 2017).

    A bounded Brent search on log T (scipy): NLL is convex in 1/T, hence unimodal in
    log T, so the 1-D search cannot stall the way LBFGS on a flat tail can.

    >>> fit_temperature(3 * torch.randn(5000, 10), torch.randint(0, 10, (5000,))).temperature > 1
    True
    """
    from scipy.optimize import minimize_scalar
    labels = torch.as_tensor(labels, device=logits.device).long()
    check_logits(logits, labels, "temperature fit")
    if logits.shape[0] == 0:
        raise CalibrationInputError("temperature fit: no images to fit on")
    z = logits.double()
    lo, hi = math.log(bounds[0]), math.log(bounds[1])
    f = lambda u: float(F.cross_entropy(z * math.exp(-u), labels))  # noqa: E731
    res = minimize_scalar(f, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    u = float(res.x)
    t = math.exp(u)
    # Brent never evaluates the end points: a monotone NLL ends near one, and a NLL that
    # underflows to a flat 0 (no errors at all) stops anywhere on the plateau.
    fu = f(u)
    at_bound = min(u - lo, hi - u) < 1e-3 or f(lo) <= fu or f(hi) <= fu
    return TemperatureFit(temperature=t, nll_before=nll(z, labels), nll_after=nll(z, labels, t),
                          n=int(z.shape[0]), at_bound=at_bound)


def _check_bins(n_bins) -> None:
    if not isinstance(n_bins, int) or isinstance(n_bins, bool) or n_bins < 1:
        raise CalibrationInputError(f"number of bins must be an integer >= 1, got {n_bins!r}")
