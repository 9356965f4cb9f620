"""Muon for convolution filters, Nesterov SGD for the rest, in one torch optimiser.

Muon (Jordan et al. 2024, the optimiser of airbench94_muon) keeps SGD's momentum but
replaces each filter bank's update by the nearest semi-orthogonal matrix: the update,
reshaped to c_out × (c_in·k·k), is pushed toward U Vᵀ of its SVD U S Vᵀ by a few
Newton–Schulz iterations, so every direction the gradient excites moves by about the same
amount instead of the few largest ones dominating. Before each update the filter bank is
rescaled to norm √c_out (the network is scale-invariant there because BatchNorm follows
every convolution), so the step size means the same thing all run long.

Groups with ``muon=True`` take that update (no weight decay); the others are torch's SGD
(dampening 0, the same momentum-buffer convention, optional Nesterov, L2 weight decay).
Written here rather than taken from a library because torch has no Muon for 4-D filters
on a CPU and the whole optimiser is thirty lines.

>>> w = torch.randn(4, 2, 3, 3)
>>> def one_step(grad_scale):                   # Muon's step ignores the gradient's scale
...     p = torch.nn.Parameter(w.clone())
...     p.grad = grad_scale * torch.sin(torch.arange(72.0)).view(4, 2, 3, 3)
...     MuonSGD([{"params": [p], "muon": True, "lr": 0.1}], momentum=0.6).step()
...     return p.detach()
>>> bool(torch.allclose(one_step(1.0), one_step(1000.0), atol=1e-5))
True
"""
from __future__ import annotations

import math

import torch

# Quintic Newton–Schulz coefficients from airbench94_muon: chosen for the steepest slope at
# zero, so three iterations bring every singular value into roughly [0.5, 1.5] (not all the
# way to 1, which training does not need).
NS_COEFFS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 3


def orthogonalize(g: torch.Tensor, steps: int = NS_STEPS, eps: float = 1e-7) -> torch.Tensor:
    """An approximate U Vᵀ of the 2-D ``g`` = U S Vᵀ (singular values pushed toward 1).

    >>> q = orthogonalize(torch.diag(torch.tensor([4.0, 1.0, 0.25])), steps=8)
    >>> bool(torch.all((q.diagonal() > 0.5) & (q.diagonal() < 1.5)))
    True
    """
    a, b, c = NS_COEFFS
    x = g / (g.norm() + eps)        # Frobenius ≥ spectral norm: all singular values ≤ 1
    wide = x.shape[0] <= x.shape[1]
    if not wide:
        x = x.T                      # iterate on the smaller Gram matrix
    for _ in range(steps):
        s = x @ x.T
        x = a * x + (b * s + c * (s @ s)) @ x
    return x if wide else x.T


class MuonSGD(torch.optim.Optimizer):
    """Per-group ``lr``, ``momentum``, ``weight_decay`` and ``muon`` (see the module text)."""

    def __init__(self, params, *, lr: float = 0.01, momentum: float = 0.9,
                 nesterov: bool = True, weight_decay: float = 0.0):
        if lr <= 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"MuonSGD: lr={lr}, momentum={momentum}, "
                             f"weight_decay={weight_decay} out of range")
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov,
                                      weight_decay=weight_decay, muon=False))

    @torch.no_grad()
    def step(self, closure=None):  # no closure is used: one loss per step
        for group in self.param_groups:
            m, lr = group["momentum"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                if group["weight_decay"] and not group["muon"]:
                    g = g.add(p, alpha=group["weight_decay"])
                state = self.state[p]
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = g.clone()
                else:
                    buf.mul_(m).add_(g)
                d = g.add(buf, alpha=m) if group["nesterov"] else buf
                if group["muon"]:
                    p.mul_(math.sqrt(p.shape[0]) / p.norm().clamp_min(1e-12))
                    d = orthogonalize(d.reshape(len(d), -1)).view_as(p)
                p.add_(d, alpha=-lr)
        return None
