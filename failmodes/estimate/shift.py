"""Is a batch shifted at all? Two two-sample tests between reference and target outputs.

- ``ks_test``: black-box shift detection (Lipton et al. 2018; Rabanser et al. 2019,
  "Failing Loudly"): a two-sample Kolmogorov–Smirnov test on each softmax dimension, with
  Smirnov's asymptotic p-value (scipy's ``kstwo``, as ``ks_2samp(method="asymp")``),
  combined by Bonferroni: shifted when the smallest p-value is below α / C.
- ``mmd_test``: maximum mean discrepancy on penultimate features (Gretton et al. 2012),
  RBF kernel with the median pairwise distance of the pooled sample as bandwidth, the
  unbiased MMD² statistic, and a permutation p-value ``(1 + #{perm ≥ obs}) / (1 + P)``;
  every permutation's statistic is read off one pooled kernel matrix at once.

>>> g = torch.Generator().manual_seed(0)
>>> a, b, c = (torch.rand(300, 3, generator=g) for _ in range(3))
>>> ks_test(a.softmax(1), b.softmax(1)).shifted, ks_test(a.softmax(1), (4 * c).softmax(1)).shifted
(False, True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._checks import EstimateError, check_count, check_outputs

ALPHA = 0.05
MMD_PERMUTATIONS = 500
MMD_MAX_IMAGES = 1000   # per side: the pooled kernel matrix is (2 × this)² float64


@dataclass(frozen=True)
class KSResult:
    statistics: list[float]     # per softmax dimension
    p_values: list[float]       # per dimension, unadjusted
    p_value: float              # Bonferroni: min(1, C · min p)
    alpha: float
    shifted: bool

    def as_dict(self) -> dict:
        return {"test": "ks-bonferroni", "p_value": self.p_value, "alpha": self.alpha,
                "shifted": self.shifted, "statistics": self.statistics,
                "p_values": self.p_values}


@dataclass(frozen=True)
class MMDResult:
    mmd2: float                 # unbiased MMD² estimate
    bandwidth: float            # RBF σ: k(x, y) = exp(−‖x − y‖² / (2σ²))
    p_value: float
    permutations: int
    n_reference: int
    n_target: int
    alpha: float
    shifted: bool

    def as_dict(self) -> dict:
        return {"test": "mmd-permutation", "mmd2": self.mmd2, "bandwidth": self.bandwidth,
                "p_value": self.p_value, "permutations": self.permutations,
                "n_reference": self.n_reference, "n_target": self.n_target,
                "alpha": self.alpha, "shifted": self.shifted}


def ks_statistics(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Two-sample KS statistic of every column of x (m×C) against y (n×C), (C,)."""
    xs = np.sort(x.detach().cpu().double().numpy(), axis=0)
    ys = np.sort(y.detach().cpu().double().numpy(), axis=0)
    out = np.empty(xs.shape[1])
    for k in range(xs.shape[1]):   # numpy's searchsorted is 1-D; C is small
        z = np.concatenate([xs[:, k], ys[:, k]])
        fx = np.searchsorted(xs[:, k], z, side="right") / xs.shape[0]
        fy = np.searchsorted(ys[:, k], z, side="right") / ys.shape[0]
        out[k] = np.abs(fx - fy).max()
    return torch.from_numpy(out)


def ks_test(reference_probs, target_probs, alpha: float = ALPHA) -> KSResult:
    """BBSD: KS per softmax dimension, Bonferroni over the C dimensions."""
    from scipy.stats import kstwo
    x = check_outputs(reference_probs, "reference probabilities")
    y = check_outputs(target_probs, "target probabilities", x.shape[1])
    _check_alpha(alpha)
    d = ks_statistics(x, y).numpy()
    m, n = sorted((float(x.shape[0]), float(y.shape[0])), reverse=True)
    p = np.clip(kstwo.sf(d, np.round(m * n / (m + n))), 0, 1)
    p_adj = float(min(1.0, p.min() * len(p)))
    return KSResult(statistics=[float(v) for v in d], p_values=[float(v) for v in p],
                    p_value=p_adj, alpha=float(alpha), shifted=bool(p.min() < alpha / len(p)))


def ks_detection_rate(reference_probs, target_probs, *, batch: int, resamples: int,
                      alpha: float = ALPHA, seed: int = 0) -> tuple[float, int]:
    """Share of ``resamples`` random ``batch``-image draws (without replacement, seeded) from
    ``target_probs`` that ``ks_test`` flags against ``reference_probs``, and the batch size
    used (a target smaller than ``batch`` is tested once, whole). The same decision as
    ``ks_test``, read off the Bonferroni critical value of D instead of p-values."""
    from scipy.stats import kstwo
    x = check_outputs(reference_probs, "reference probabilities").numpy()
    y = check_outputs(target_probs, "target probabilities", x.shape[1]).numpy()
    _check_alpha(alpha)
    batch = min(check_count(batch, "batch", 2), y.shape[0])
    resamples = check_count(resamples, "resamples") if batch < y.shape[0] else 1
    m, n = sorted((float(x.shape[0]), float(batch)), reverse=True)
    d_crit = float(kstwo.isf(alpha / x.shape[1], np.round(m * n / (m + n))))
    xs = np.sort(x, axis=0)
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(resamples):
        ys = np.sort(y[rng.permutation(y.shape[0])[:batch]], axis=0)
        for k in range(xs.shape[1]):
            z = np.concatenate([xs[:, k], ys[:, k]])
            d = np.abs(np.searchsorted(xs[:, k], z, side="right") / xs.shape[0]
                       - np.searchsorted(ys[:, k], z, side="right") / batch).max()
            if d > d_crit:
                hits += 1
                break
    return hits / resamples, batch


def _check_alpha(alpha) -> None:
    if not (isinstance(alpha, float | int) and 0 < float(alpha) < 1):
        raise EstimateError(f"alpha must lie in (0, 1), got {alpha!r}")


def _subsample(x: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    if x.shape[0] <= n:
        return x
    return x[torch.randperm(x.shape[0], generator=gen)[:n]]


def median_bandwidth(z: torch.Tensor) -> float:
    """Median of the pairwise Euclidean distances between distinct rows of z (> 0)."""
    d = torch.cdist(z, z)
    iu = torch.triu_indices(z.shape[0], z.shape[0], offset=1)
    med = float(torch.quantile(d[iu[0], iu[1]], 0.5))   # the mean of the middle two
    return med if med > 0 else 1.0


def mmd2_unbiased(k: torch.Tensor, in_x: torch.Tensor) -> torch.Tensor:
    """Unbiased MMD² for each row of the 0/1 group matrix ``in_x`` (P×(m+n), 1 = first
    sample) from the pooled kernel matrix ``k`` ((m+n)×(m+n))."""
    a = in_x.double()
    b = 1 - a
    m, n = a[0].sum(), b[0].sum()
    diag = k.diagonal()
    ka = a @ k
    sxx = (ka * a).sum(1) - a @ diag
    syy = ((b @ k) * b).sum(1) - b @ diag
    sxy = (ka * b).sum(1)
    return sxx / (m * (m - 1)) + syy / (n * (n - 1)) - 2 * sxy / (m * n)


def mmd_test(reference_features, target_features, *, permutations: int = MMD_PERMUTATIONS,
             max_images: int = MMD_MAX_IMAGES, alpha: float = ALPHA, seed: int = 0) -> MMDResult:
    """MMD permutation test between feature sets (rows = images); each side is first
    subsampled to ``max_images`` (seeded) to keep the kernel matrix small."""
    x = check_outputs(reference_features, "reference features")
    y = check_outputs(target_features, "target features", x.shape[1])
    permutations = check_count(permutations, "permutations")
    max_images = check_count(max_images, "max_images", 2)
    _check_alpha(alpha)
    if x.shape[0] < 2 or y.shape[0] < 2:
        raise EstimateError("MMD test: need at least 2 images on each side")
    gen = torch.Generator().manual_seed(int(seed))
    x, y = _subsample(x, max_images, gen), _subsample(y, max_images, gen)
    z = torch.cat([x, y]).double()
    m, n = x.shape[0], y.shape[0]
    sigma = median_bandwidth(z)
    k = torch.exp(-torch.cdist(z, z).square() / (2 * sigma ** 2))
    groups = torch.zeros(permutations + 1, m + n, dtype=torch.bool)
    groups[0, :m] = True
    for i in range(1, permutations + 1):
        groups[i, torch.randperm(m + n, generator=gen)[:m]] = True
    stats = torch.cat([mmd2_unbiased(k, groups[j:j + 100])
                       for j in range(0, permutations + 1, 100)])
    obs = float(stats[0])
    p = (1 + int((stats[1:] >= obs).sum())) / (1 + permutations)
    return MMDResult(mmd2=obs, bandwidth=sigma, p_value=p, permutations=permutations,
                     n_reference=m, n_target=n, alpha=float(alpha), shifted=p < alpha)
