"""Optimal transport from softmax vectors to one-hot labels, for COT (Lu et al. 2023,
"Characterizing Out-of-Distribution Error via Optimal Transport").

COT moves the target's softmax vectors p_i (mass 1/N each) onto the one-hot vectors e_k
of the source label marginal π (mass π_k each) at cost TV(p, e_k) = ½‖p − e_k‖₁ = 1 − p_k;
the minimal cost is its error estimate, so its accuracy estimate is the transport *gain*

    G = max_γ Σ_ik γ_ik p_ik   (rows of γ sum to 1/N, columns to π)
      = min_v  (1/N) Σ_i max_k (p_ik − v_k) + Σ_k π_k v_k      (LP duality).

The dual has only C unknowns, so it is solved here by Newton's method on its log-sum-exp
smoothing at a decreasing temperature ε (the smoothed value exceeds the exact one by at
most ε·log C); the exact dual objective at the final v is returned, an upper bound on G
that is within ``1e-6`` of it for ε = 1e-7. ``linear_sum_assignment`` on integer class
counts is the slow reference in the tests. Without label shift and with predicted-class
shares equal to π, G equals the mean max-probability (AC); otherwise G < AC.

>>> p = torch.tensor([[0.9, 0.1], [0.8, 0.2]], dtype=torch.float64)
>>> round(transport_gain(p, torch.tensor([0.5, 0.5], dtype=torch.float64)).gain, 6)
0.55
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ._checks import EstimateError

EPSILONS = tuple(10.0 ** -k for k in range(1, 8))   # smoothing schedule, probability units
NEWTON_STEPS = 30


@dataclass(frozen=True)
class TransportGain:
    gain: float                 # G above: COT's accuracy estimate
    dual: torch.Tensor          # v (C,), float64; unused classes (π_k = 0) get +inf
    per_image: torch.Tensor     # max_k (p_ik − v_k) (N,): G = mean(per_image) + π·v


def transport_gain(p: torch.Tensor, pi: torch.Tensor) -> TransportGain:
    """Maximal Σ γ_ik p_ik over couplings of the N rows of ``p`` (mass 1/N each) with the
    class marginal ``pi`` (C,, sums to 1). ``p``: N×C probabilities, float64."""
    if p.ndim != 2 or pi.shape != (p.shape[1],):
        raise EstimateError(f"transport: {tuple(p.shape)} outputs with a marginal of shape "
                            f"{tuple(pi.shape)}")
    if bool((pi < 0).any()) or abs(float(pi.sum()) - 1) > 1e-6:
        raise EstimateError("transport: the label marginal must be non-negative and sum to 1")
    used = (pi > 0).numpy()
    # numpy, not torch: C is small and a solve is thousands of tiny ops, where torch's
    # per-call overhead (and its thread pool on a busy machine) dominates.
    q = p.detach().cpu().double().numpy()[:, used]
    w = pi.detach().cpu().double().numpy()[used]
    v = np.zeros(q.shape[1])
    best_v, best = v.copy(), _exact(q, w, v)
    for eps in EPSILONS:
        v = _newton(q, w, v, eps)
        val = _exact(q, w, v)
        if val < best:
            best, best_v = val, v.copy()
    full = np.full(p.shape[1], math.inf)
    full[used] = best_v
    return TransportGain(gain=best, dual=torch.from_numpy(full),
                         per_image=torch.from_numpy((q - best_v).max(axis=1)))


def _exact(q: np.ndarray, w: np.ndarray, v: np.ndarray) -> float:
    return float((q - v).max(axis=1).mean() + w @ v)


def _smooth(q: np.ndarray, w: np.ndarray, v: np.ndarray, eps: float) -> tuple[float, np.ndarray]:
    """The smoothed dual and its soft assignment N×C (softmax of (q − v)/ε)."""
    z = (q - v) / eps
    top = z.max(axis=1, keepdims=True)
    e = np.exp(z - top)
    tot = e.sum(axis=1, keepdims=True)
    return float(eps * (top + np.log(tot)).mean() + w @ v), e / tot


def _newton(q: np.ndarray, w: np.ndarray, v: np.ndarray, eps: float) -> np.ndarray:
    n, c = q.shape
    ones = np.full((c, c), 1.0 / c)
    f, s = _smooth(q, w, v, eps)
    for _ in range(NEWTON_STEPS):
        mean_s = s.mean(axis=0)
        grad = w - mean_s
        hess = (np.diag(mean_s) - s.T @ s / n) / eps
        # v is defined up to a constant: pin that direction with a rank-one term; a class
        # no image is near (a zero row at small ε) gets a small ridge (a gradient step).
        scale = max(float(hess.diagonal().max()), 1e-12)
        step = np.linalg.solve(hess + scale * (ones + 1e-8 * np.eye(c)), -grad)
        t, slope = 1.0, float(grad @ step)
        while True:
            new = v + t * step
            fn, sn = _smooth(q, w, new, eps)
            if fn <= f + 1e-4 * t * slope or t < 1e-10:
                break
            t /= 2
        if fn >= f:
            break
        dec = f - fn
        v, f, s = new, fn, sn
        if dec < 1e-13:
            break
    return v
