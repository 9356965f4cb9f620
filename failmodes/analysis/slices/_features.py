"""Penultimate-layer features: the input of the model's last ``nn.Linear`` (its head),
captured by a forward pre-hook in one pass (no gradients, no training)."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ._errors import SliceError


def head_of(model: nn.Module) -> nn.Module:
    """The model's last registered ``nn.Linear`` (the classifier head for torchvision,
    timm and the project's architectures)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise SliceError(f"{type(model).__name__} has no nn.Linear head: penultimate "
                         "features need one (cluster on stored outputs instead)")
    return linears[-1]


@torch.no_grad()
def penultimate_features(model: nn.Module, images: torch.Tensor, *,
                         batch_size: int = 256) -> np.ndarray:
    """Float32 N×D features feeding the head, for ``images`` as the model takes them
    (float N×3×H×W in [0, 1] for a ``Classifier``), in batches on the model's device. The
    model's train/eval mode is left as the caller set it (call it on an eval-mode model)."""
    head = head_of(model)
    grabbed: list[torch.Tensor] = []
    handle = head.register_forward_pre_hook(
        lambda _m, inp: grabbed.append(inp[0].detach().flatten(1).float().cpu()))
    try:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
        for i in range(0, len(images), batch_size):
            model(images[i:i + batch_size].to(device))
    finally:
        handle.remove()
    if not grabbed:
        raise SliceError("the model's head was never called: no features")
    return torch.cat(grabbed).numpy()
