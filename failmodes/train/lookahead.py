"""Lookahead toward an exponential moving average of the weights (airbench's variant of
Zhang et al. 2019): every ``every`` optimiser steps the EMA absorbs the weights and the
weights jump to the EMA.

The EMA's decay per pull ramps as ``decay · (t / T)³`` over the T steps of the run: early on
it forgets at once (the weights move freely while the learning rate is high) and at the end
it averages over the last few hundred steps, which the low-lr tail would otherwise leave
noisy. Floating-point buffers (BatchNorm running statistics) are averaged too, so the
averaged weights meet statistics that belong to them.

>>> net = torch.nn.Linear(2, 2)
>>> la = Lookahead(net, every=1, decay=0.5, total_steps=1)
>>> with torch.no_grad(): _ = net.weight.add_(1.0)
>>> w = net.weight.detach().clone()
>>> la.step(1)                                  # decay 0.5·(1/1)³ = 0.5: halfway back
>>> bool(torch.allclose(net.weight, w - 0.5))
True
"""
from __future__ import annotations

import torch
from torch import nn


class Lookahead:
    """EMA of ``model``'s floating-point state, pulled every ``every`` steps."""

    def __init__(self, model: nn.Module, *, every: int, decay: float, total_steps: int):
        self.model, self.every, self.decay, self.total = model, every, decay, total_steps
        self.ema = {k: v.detach().clone() for k, v in self._state().items()}

    def _state(self) -> dict[str, torch.Tensor]:
        return {k: v for k, v in self.model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def step(self, step: int) -> None:
        """Call after optimiser step ``step`` (1-based); pulls on every ``every``-th step."""
        if step % self.every == 0:
            self._pull(self.decay * (step / self.total) ** 3)

    @torch.no_grad()
    def finish(self) -> None:
        """End of training: the weights become the EMA."""
        self._pull(1.0)

    def _pull(self, decay: float) -> None:
        for k, v in self._state().items():
            e = self.ema[k]
            e.lerp_(v, 1 - decay)
            v.copy_(e)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.clone() for k, v in self.ema.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            self.ema[k].copy_(v)
