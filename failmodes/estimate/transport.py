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

import torch

from ._checks import EstimateError

EPSILONS = tuple(10.0 ** -k for k in range(1, 8))   # smoothing schedule, probability units
NEWTON_STEPS = 30


@dataclass(frozen=True)
class TransportGain:
    gain: float                 # G above: COT's accuracy estimate
    dual: torch.Tensor          # v (C,), float64; unused classes (π_k = 0) get +inf
    per_image: torch.Tensor     # max_k (p_ik − v_k) (N,): G = mean(per_image) + π·v


def _exact(p: torch.Tensor, pi: torch.Tensor, v: torch.Tensor) -> float:
    return float((p - v).amax(dim=1).mean() + (pi * v).sum())


def transport_gain(p: torch.Tensor, pi: torch.Tensor) -> TransportGain:
    """Maximal Σ γ_ik p_ik over couplings of the N rows of ``p`` (mass 1/N each) with the
    class marginal ``pi`` (C,, sums to 1). ``p``: N×C probabilities, float64."""
    if p.ndim != 2 or pi.shape != (p.shape[1],):
        raise EstimateError(f"transport: {tuple(p.shape)} outputs with a marginal of shape "
                            f"{tuple(pi.shape)}")
    if bool((pi < 0).any()) or abs(float(pi.sum()) - 1) > 1e-6:
        raise EstimateError("transport: the label marginal must be non-negative and sum to 1")
    used = pi > 0
    q, w = p[:, used].double(), pi[used].double()   # no mass may go to an absent class
    v = torch.zeros(q.shape[1], dtype=torch.float64)
    best_v, best = v.clone(), _exact(q, w, v)
    for eps in EPSILONS:
        v = _newton(q, w, v, eps)
        val = _exact(q, w, v)
        if val < best:
            best, best_v = val, v.clone()
    full = torch.full((p.shape[1],), math.inf, dtype=torch.float64)
    full[used] = best_v
    per_image = (q - best_v).amax(dim=1)
    return TransportGain(gain=best, dual=full, per_image=per_image)


def _smooth(q: torch.Tensor, w: torch.Tensor, v: torch.Tensor, eps: float) -> float:
    return float(eps * torch.logsumexp((q - v) / eps, dim=1).mean() + (w * v).sum())


def _newton(q: torch.Tensor, w: torch.Tensor, v: torch.Tensor, eps: float) -> torch.Tensor:
    n, c = q.shape
    ones = torch.ones(c, dtype=torch.float64) / math.sqrt(c)
    f = _smooth(q, w, v, eps)
    for _ in range(NEWTON_STEPS):
        s = torch.softmax((q - v) / eps, dim=1)                  # N×C soft assignment
        grad = w - s.mean(dim=0)
        hess = (torch.diag(s.mean(dim=0)) - s.T @ s / n) / eps
        # v is defined up to a constant: pin that direction with a rank-one term.
        step = torch.linalg.solve(hess + torch.outer(ones, ones) * float(hess.diagonal().max())
                                  + 1e-12 * torch.eye(c, dtype=torch.float64), -grad)
        t = 1.0
        while True:
            new = v + t * step
            fn = _smooth(q, w, new, eps)
            if fn <= f - 1e-4 * t * float(grad @ -step) or t < 1e-10:
                break
            t /= 2
        if fn >= f:
            break
        dec = f - fn
        v, f = new, fn
        if dec < 1e-13:
            break
    return v
