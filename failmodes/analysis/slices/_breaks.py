"""Per-image breaking points: for each image and corruption, the lowest severity whose
prediction is wrong while the clean one was right (``inf``: never within the sweep; ``NaN``:
already wrong when clean), in the sweep's own unit; and which attributes make images break
early (Spearman rank correlation with a bootstrap interval).

>>> m = correctness_matrix(store, "r18", "cifar10:test", "fog")          # doctest: +SKIP
>>> breaking_points(m.severities, m.correct, m.clean_correct)[:3]         # doctest: +SKIP
array([ 2., inf, nan])
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.stats
import torch

from ._errors import SliceError

CLEAN = "clean"


def breaking_points(severities, correct, clean_correct) -> np.ndarray:
    """``severities`` (S, any order), ``correct`` bool S×N (image right at that severity),
    ``clean_correct`` bool N -> float64 N: the lowest severity where the image is wrong,
    ``inf`` when it never is, ``NaN`` when it was wrong on the clean image."""
    sev = np.asarray(severities, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    clean = np.asarray(clean_correct, dtype=bool)
    if ok.ndim != 2 or ok.shape[0] != len(sev) or ok.shape[1] != len(clean):
        raise SliceError(f"correct must be severities × images ({len(sev)} × {len(clean)}), "
                         f"got {ok.shape}")
    order = np.argsort(sev, kind="stable")
    wrong = ~ok[order]
    first = wrong.argmax(0)
    out = np.where(wrong.any(0), sev[order][first], np.inf)
    out[~clean] = np.nan
    return out


@dataclass
class Correctness:
    """A corruption's cells of one model on one dataset, aligned by image: ``severities``
    (S, ascending), ``correct`` bool S×N, ``clean_correct`` bool N, ``idx`` dataset indices."""

    severities: np.ndarray
    correct: np.ndarray
    clean_correct: np.ndarray
    idx: np.ndarray


def correctness_matrix(store, model: str, dataset: str, stressor: str,
                       seed: int | None = None) -> Correctness:
    """Read ``stressor``'s done cells (of ``seed``; default the lowest seed stored) and the
    clean cell from ``store`` (a ``ResultsStore``), keeping the images every cell has."""
    cells = store.cells(model=model, dataset=dataset, stressor=stressor)
    if not cells:
        raise SliceError(f"no done cells of {stressor!r} for {model!r} on {dataset!r}")
    seed = min(c.seed for c in cells) if seed is None else seed
    cells = sorted((c for c in cells if c.seed == seed and c.severity > 0),
                   key=lambda c: c.severity)
    clean = store.cells(model=model, dataset=dataset, stressor=CLEAN)
    if not clean or not cells:
        raise SliceError(f"breaking points of {stressor!r} need the clean cell and at least "
                         f"one severity > 0 of {model!r} on {dataset!r}")
    rows = [store.predictions(c) for c in [clean[0], *cells]]
    idx = rows[0]["idx"]
    for r in rows[1:]:
        idx = np.intersect1d(idx, r["idx"])
    right = [(r["pred"] == r["label"])[np.searchsorted(r["idx"], idx)] for r in rows]
    return Correctness(np.array([c.severity for c in cells], float), np.stack(right[1:]),
                       right[0], idx)


def _midranks(x: torch.Tensor) -> torch.Tensor:
    """Average ranks (1..n, ties share their mean rank) along the last dim; batched. One
    sort; each tie group's first and last position by a running max / reversed running min."""
    s, order = x.sort(-1)
    n = x.shape[-1]
    pos = torch.arange(n).expand_as(s)
    start = torch.ones_like(s, dtype=torch.bool)
    start[..., 1:] = s[..., 1:] != s[..., :-1]
    end = torch.ones_like(start)
    end[..., :-1] = start[..., 1:]
    first = torch.where(start, pos, torch.zeros_like(pos)).cummax(-1).values
    last = torch.where(end, pos, torch.full_like(pos, n)).flip(-1).cummin(-1).values.flip(-1)
    mid = (first + last).to(torch.float64) / 2 + 1
    return torch.empty_like(mid).scatter_(-1, order, mid)


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a.to(torch.float64) - a.to(torch.float64).mean(-1, keepdim=True)
    b = b.to(torch.float64) - b.to(torch.float64).mean(-1, keepdim=True)
    den = (a.square().sum(-1) * b.square().sum(-1)).sqrt()
    return torch.where(den > 0, (a * b).sum(-1) / den.clamp_min(1e-300),
                       torch.full_like(den, float("nan")))


def rank_correlations(breaks, attributes: dict[str, np.ndarray], *, n_boot: int = 500,
                      seed: int = 0, level: float = 0.95) -> list[dict]:
    """Spearman's ρ between breaking severity (``inf`` = never, the top rank; ``NaN``
    images left out) and each attribute, with a percentile bootstrap interval over images
    (``n_boot`` resamples, ranks recomputed in each). Rows: attribute, rho, lo, hi, n, p
    (two-sided, t approximation, as ``scipy.stats.spearmanr``); positive ρ: a high attribute
    value survives longer."""
    rows = rank_table({"": breaks}, attributes, n_boot=n_boot, seed=seed, level=level)
    return [{k: v for k, v in r.items() if k != "stressor"} for r in rows]


def rank_table(breaks: dict[str, np.ndarray], attributes: dict[str, np.ndarray], *,
               n_boot: int = 500, seed: int = 0, level: float = 0.95) -> list[dict]:
    """``rank_correlations`` for several stressors' breaking points of the same images
    (the same ``NaN``: wrong when clean), rows tagged ``stressor``. The resamples are shared,
    so each attribute is ranked once per resample, not once per stressor."""
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in breaks.items()}
    if not arrays:
        return []
    keep = ~np.isnan(next(iter(arrays.values())))
    if any(not np.array_equal(~np.isnan(v), keep) for v in arrays.values()):
        raise SliceError("breaking points of one table must leave out the same images "
                         "(those wrong when clean)")
    n = int(keep.sum())
    if n < 3:
        raise SliceError(f"rank correlations need at least 3 images right when clean, got {n}")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(n, (n_boot, n), generator=g)
    ranked = {}
    for name, values in attributes.items():
        a = torch.as_tensor(np.asarray(values, dtype=np.float64)[keep])
        ranked[name] = (_midranks(a), _midranks(a[idx]).to(torch.float32))
    alpha = (1 - level) / 2
    out = []
    for stressor, brk in arrays.items():
        b = torch.as_tensor(np.where(np.isinf(brk[keep]), np.finfo(np.float64).max, brk[keep]))
        rb, rb_boot = _midranks(b), _midranks(b[idx])
        for name, (ra, ra_boot) in ranked.items():
            rho = float(_pearson(ra, rb))
            boot = _pearson(ra_boot, rb_boot).numpy()
            boot = boot[np.isfinite(boot)]
            lo, hi = ((float(np.quantile(boot, alpha)), float(np.quantile(boot, 1 - alpha)))
                      if len(boot) else (float("nan"), float("nan")))
            out.append({"stressor": stressor, "attribute": name, "rho": rho, "lo": lo,
                        "hi": hi, "n": n, "p": _spearman_p(rho, n)})
    return out


def _spearman_p(rho: float, n: int) -> float:
    """Two-sided p of ρ = 0 by the t approximation (scipy.stats.spearmanr's)."""
    if not np.isfinite(rho) or n < 3:
        return float("nan")
    t = rho * np.sqrt((n - 2) / max(1e-300, (1 - rho) * (1 + rho)))
    return float(2 * scipy.stats.t.sf(abs(t), n - 2))
