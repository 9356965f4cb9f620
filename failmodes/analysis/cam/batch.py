"""Grad-CAM maps for one batch of images, without a run folder (as pytorch-grad-cam users
expect): ``gradcam(model, images, targets=None)``, public as ``fm.cam.gradcam``.

``model`` is a failmodes ``Classifier`` (``fm.models.load_model``, ``fm.models.wrap``: it
knows its CAM layer and normalises pixel-space input itself) or any ``nn.Module`` with
``layer=`` naming the module to hook. ``images``: float N×3×H×W in [0, 1] (what the
Classifier takes). ``targets``: N class indices, or None for each image's predicted class.
Returns float32 N×H×W on the CPU in [0, 1] (each map min-max scaled and upsampled to the
input, for display); ``raw=True`` adds the raw maps N×h×w at the layer's own resolution
(ReLU(Σ_k w_k A_k), unscaled). The model's train/eval modes, ``requires_grad`` flags and
``.grad`` are as they were afterwards.

>>> import failmodes as fm, torch
>>> model = fm.models.create_model("small_cnn")
>>> maps = fm.cam.gradcam(model, torch.rand(4, 3, 32, 32))
>>> tuple(maps.shape), float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
((4, 32, 32), True, True)
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ._core import METHODS, CamError, compute_cams

__all__ = ["METHODS", "CamError", "gradcam"]


def gradcam(model: nn.Module, images: torch.Tensor,
            targets: torch.Tensor | np.ndarray | Sequence[int] | None = None, *,
            method: str = "gradcam", layer: str | nn.Module | None = None,
            batch_size: int = 128, raw: bool = False):
    """CAMs of ``images`` for ``targets`` (see the module docstring); ``method``:
    ``gradcam``, ``gradcam++`` or ``scorecam``; ``layer``: a module or its dotted name
    (default: the Classifier's own CAM layer)."""
    if not isinstance(model, nn.Module):
        raise CamError(f"gradcam() takes a torch.nn.Module, got {type(model).__name__}")
    if layer is None and not hasattr(model, "cam_layer"):
        raise CamError(f"{type(model).__name__} is a bare nn.Module: pass layer='NAME' (the "
                       "module to hook, e.g. layer4) or wrap it with fm.models.wrap(...)")
    if not isinstance(images, torch.Tensor) or not images.is_floating_point():
        raise CamError("images must be a float tensor N×3×H×W in [0, 1]")
    return compute_cams(model, images, targets, method=method, layer=layer,
                        batch_size=batch_size, raw=raw)
