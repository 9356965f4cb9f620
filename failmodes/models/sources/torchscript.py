"""A TorchScript file (``torch.jit.save``, often named ``.pt``): it runs with gradients,
but no Python hooks on its submodules, so Grad-CAM cannot reach a layer."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ._base import register_source
from ._files import NetworkFileSource, Shape, load_error

TORCHSCRIPT_NO_CAM = ("TorchScript modules run no Python hooks on their submodules, so "
                      "Grad-CAM cannot reach a layer; save the model with torch.export.save "
                      "(.pt2) for Grad-CAM")


@register_source
class TorchScriptSource(NetworkFileSource):
    syntax = "TorchScript FILE"
    kind = file_kind = "torchscript"
    fmt = "TorchScript"
    order = 220

    def describe(self) -> str:
        return "a TorchScript file (torch.jit.save); no Grad-CAM (no hooks run inside it)"

    def open(self, path: Path) -> tuple[nn.Module, Shape | None, str | None]:
        try:
            net = torch.jit.load(str(path), map_location="cpu")
        except Exception as e:  # torch.jit raises RuntimeError and its own types
            raise load_error(path, "TorchScript file", e) from None
        return net, None, TORCHSCRIPT_NO_CAM
