"""Test-time augmentation, only when asked for: :func:`with_flip_tta` turns a classifier
into one whose forward averages the logits of each image and its mirror image (airbench's
``tta_level=1``). Stress tests evaluate the plain forward unless the caller wraps the model.

>>> from failmodes.models import create_model
>>> m = create_model("small_cnn", width=8).eval()
>>> x = torch.rand(2, 3, 32, 32)
>>> bool(torch.allclose(with_flip_tta(m)(x), with_flip_tta(m)(x.flip(3)), atol=1e-6))
True
"""
from __future__ import annotations

import torch
from torch import nn

from .errors import ModelError
from .wrapper import Classifier


class FlipAveraged(nn.Module):
    """``net`` applied to x and to x mirrored left-right; the mean of the two logits."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.net(x) + self.net(x.flip(3)))

    @property
    def weights_digest(self) -> str | None:
        """The wrapped network's file digest (ONNX), so weights_hash still tells files apart."""
        return getattr(self.net, "weights_digest", None)


# The ways ``tta`` of a model source may be given; None (the default) is the plain forward.
TTA_MODES = ("flip",)
# What with_flip_tta appends to the arch, so a stored record names the forward it ran.
FLIP_SUFFIX = "+flip-tta"


def _rewrapped(model: Classifier, net: nn.Module, *, arch: str, cam_layer_name: str,
               source: dict) -> Classifier:
    """A Classifier around ``net`` with everything else of ``model`` (classes, statistics,
    input size, Grad-CAM settings): the one place the two wrappers below copy it. Its
    mean/std buffers go where ``model``'s are (a CUDA model's wrapper normalises on CUDA)."""
    return Classifier(net, arch=arch, arch_kwargs=model.arch_kwargs,
                      class_names=model.class_names, mean=model.mean.flatten().tolist(),
                      std=model.std.flatten().tolist(), input_size=model.input_size,
                      resize=model.resize, cam_layer_name=cam_layer_name,
                      cam_reshape=model.cam_reshape, cam_unavailable=model.cam_unavailable,
                      source=source).to(model.mean.device)


def with_flip_tta(model: Classifier) -> Classifier:
    """A classifier sharing ``model``'s weights (not a copy) with flip-averaged logits; its
    ``arch`` gains a ``+flip-tta`` suffix so stores and reports name what was evaluated.
    Each forward costs two passes; Grad-CAM should explain the plain model instead."""
    return _rewrapped(model, FlipAveraged(model.net), arch=f"{model.arch}{FLIP_SUFFIX}",
                      cam_layer_name=f"net.{model.cam_layer_name}" if model.cam_layer_name
                      else "", source={**model.source, "tta": "flip"})


def without_tta(model: Classifier) -> Classifier:
    """The plain classifier under a :func:`with_flip_tta` wrapper (weights shared); any other
    model unchanged. Grad-CAM explains this one: hooks on a layer the averaged forward runs
    twice would mix the image's map with its mirror's."""
    averaged = getattr(model, "net", None)
    if not isinstance(averaged, FlipAveraged):
        return model
    return _rewrapped(model, averaged.net, arch=model.arch.removesuffix(FLIP_SUFFIX),
                      cam_layer_name=model.cam_layer_name.removeprefix("net."),
                      source={k: v for k, v in model.source.items() if k != "tta"})


def apply_tta(model: Classifier, tta: str | None) -> Classifier:
    """``model`` as a model source's ``tta`` asks: None the plain forward, ``flip``
    :func:`with_flip_tta`."""
    if tta is None:
        return model
    if tta not in TTA_MODES:
        raise ModelError(f"tta {tta!r} is not one of: {', '.join(TTA_MODES)} (or leave it out "
                         "for the plain forward pass)")
    return with_flip_tta(model)


def recorded_tta(arch: str | None, provenance: dict | None) -> str | None:
    """The ``tta`` a model was evaluated with, read back from what the store recorded of it
    (its ``arch`` and ``meta["provenance"]``, the Classifier's ``source``): None for the
    plain forward pass, else one of ``TTA_MODES``.

    >>> recorded_tta("small_cnn+flip-tta", {}), recorded_tta("small_cnn", {"tta": None})
    ('flip', None)
    """
    tta = (provenance or {}).get("tta")
    if tta:
        return str(tta)
    return "flip" if (arch or "").endswith(FLIP_SUFFIX) else None
