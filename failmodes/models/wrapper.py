"""The model wrapper: pixel-space [0, 1] images in, logits out; carries its class names,
normalisation and Grad-CAM layer."""
from __future__ import annotations

import torch
from torch import nn

from ..errors import FailmodesError


class ModelError(ValueError, FailmodesError):
    """A model or checkpoint could not be built or loaded; one line naming what and why."""


class Classifier(nn.Module):
    """Wraps a network that expects normalised input.

    ``model(x)`` with x float N×3×H×W in [0, 1] returns logits N×C. ``arch`` and
    ``arch_kwargs`` rebuild the network from the registry; ``cam_layer_name`` names the
    module Grad-CAM hooks (the last convolutional block).
    """

    def __init__(self, net: nn.Module, *, arch: str, arch_kwargs: dict, class_names: list[str],
                 mean, std, input_size: int, cam_layer_name: str):
        super().__init__()
        self.net = net
        self.arch = arch
        self.arch_kwargs = dict(arch_kwargs)
        self.class_names = list(class_names)
        self.input_size = int(input_size)
        self.cam_layer_name = cam_layer_name
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def cam_layer(self) -> nn.Module:
        """The module Grad-CAM hooks; found automatically when the registry names none."""
        if not self.cam_layer_name:
            from .imagenet import last_conv_block
            self.cam_layer_name = last_conv_block(self.net)
        return self.net.get_submodule(self.cam_layer_name)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(self.normalize(x))

    def n_params(self) -> int:
        return sum(p.numel() for p in self.net.parameters())
