"""Running a Classifier for the estimators: logits and penultimate features of a batch.

The penultimate features are the input of the network's last ``nn.Linear`` (the head, as
``models.wrapper.head_size`` finds it), caught by a forward hook; a network without one
(ONNX, TorchScript) gives logits only and the MMD test is skipped.

>>> from failmodes.models import create_model
>>> out = model_outputs(create_model("small_cnn", num_classes=3), torch.rand(4, 3, 32, 32))
>>> out.logits.shape, out.features is not None
(torch.Size([4, 3]), True)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._device import to_device
from ._checks import EstimateError, check_count

BATCH_SIZE = 256


@dataclass(frozen=True)
class Outputs:
    logits: torch.Tensor                # N×C float32, CPU
    features: torch.Tensor | None       # N×D float32, CPU; None when no head was found


def as_float_images(images) -> torch.Tensor:
    """uint8 N×H×W×3 (tensor or array; a data set's ``.images``) or float N×3×H×W in [0, 1]
    -> float32 N×3×H×W in [0, 1] (a view where possible; the input is never changed)."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    if not isinstance(images, torch.Tensor):
        raise EstimateError(f"images: expected a tensor or array, got {type(images).__name__}")
    if images.ndim != 4:
        raise EstimateError(f"images: expected 4 dimensions, got shape {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        if images.shape[-1] != 3:
            raise EstimateError("images: uint8 images must be N×H×W×3, got shape "
                                f"{tuple(images.shape)}")
        return images.permute(0, 3, 1, 2)       # scaled per batch in model_outputs
    if not images.is_floating_point() or images.shape[1] != 3:
        raise EstimateError("images: expected uint8 N×H×W×3 or float N×3×H×W in [0, 1], got "
                            f"{images.dtype} {tuple(images.shape)}")
    if images.numel() and (float(images.min()) < 0 or float(images.max()) > 1):
        raise EstimateError("images: float images must lie in [0, 1] (pixel space; the model "
                            "normalises them itself)")
    return images


def _head(model: nn.Module) -> nn.Linear | None:
    net = getattr(model, "net", model)
    last = None
    for m in net.modules():
        if isinstance(m, nn.Linear):
            last = m
    return last


def model_outputs(model: nn.Module, images, *, batch_size: int = BATCH_SIZE,
                  device: str | torch.device | None = None) -> Outputs:
    """Logits and penultimate features of ``images`` (see ``as_float_images``) in eval mode,
    without gradients; the model's own mode is restored afterwards. ``device``: where to
    run (default: where the model's parameters are)."""
    x = as_float_images(images)
    batch_size = check_count(batch_size, "batch_size")
    params = list(model.parameters())
    dev = torch.device(device) if device is not None else (
        params[0].device if params else torch.device("cpu"))
    head = _head(model)
    caught: list[torch.Tensor] = []
    hook = None
    if head is not None:
        hook = head.register_forward_hook(
            lambda _m, inp, _out: caught.append(inp[0].detach().flatten(1).float()))
    was_training = model.training
    logits = []
    try:
        model.eval()
        with torch.no_grad():
            for start in range(0, x.shape[0], batch_size):
                b = to_device(x[start:start + batch_size], dev)
                b = b.float() / 255 if b.dtype == torch.uint8 else b.float()
                logits.append(model(b).detach().float())  # to the host once, below
    finally:
        model.train(was_training)
        if hook is not None:
            hook.remove()
    if not logits:
        raise EstimateError("images: no images")
    feats = torch.cat(caught).cpu() if head is not None and len(caught) == len(logits) else None
    return Outputs(logits=torch.cat(logits).cpu(), features=feats)
