"""Percentile bootstrap of per-image means, vectorised over resamples and quantities.

Every label-free estimate here is ``offset + mean_i(value_i)`` over the target images
(the offset comes from the labelled source and is held fixed), so one set of resampled
image indices serves every estimator at once and their intervals are paired.

>>> lo, hi = bootstrap_means(torch.rand(500, 2), n_boot=200, seed=0)
>>> lo.shape, bool((lo < hi).all())
(torch.Size([2]), True)
"""
from __future__ import annotations

import torch

from ._checks import EstimateError, check_count, check_level

# Resampled values are gathered this many at a time (float64: 8 bytes each, 32 MB).
CHUNK_ENTRIES = 4_000_000


def bootstrap_means(values: torch.Tensor, *, n_boot: int = 1000, level: float = 0.95,
                    seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Percentile interval of the mean of each column of ``values`` (N×K), resampling the N
    rows with replacement ``n_boot`` times from ``torch.Generator().manual_seed(seed)``.

    Returns (low K, high K) at ``level`` (e.g. 0.95 -> the 2.5 % and 97.5 % quantiles).
    """
    n_boot = check_count(n_boot, "n_boot")
    check_level(level)
    if values.ndim == 1:
        values = values[:, None]
    n = values.shape[0]
    if n == 0:
        raise EstimateError("bootstrap: no images")
    means = bootstrap_replicates(values, n_boot=n_boot, seed=seed)
    a = (1 - float(level)) / 2
    q = torch.tensor([a, 1 - a], dtype=means.dtype)
    lo, hi = torch.quantile(means, q, dim=0)
    return lo, hi


def bootstrap_replicates(values: torch.Tensor, *, n_boot: int, seed: int = 0) -> torch.Tensor:
    """``n_boot``×K means of ``values`` (N×K) over resampled rows (CPU, float64)."""
    v = values.detach().to("cpu", torch.float64)
    n = v.shape[0]
    gen = torch.Generator().manual_seed(int(seed))
    out = torch.empty(n_boot, v.shape[1], dtype=torch.float64)
    step = max(1, CHUNK_ENTRIES // (n * v.shape[1]))
    for start in range(0, n_boot, step):
        stop = min(n_boot, start + step)
        idx = torch.randint(0, n, (stop - start, n), generator=gen)
        out[start:stop] = v[idx].mean(dim=1)
    return out
