"""Where Grad-CAM hooks a network, and how it turns a transformer's tokens into a map.

CNNs: timm models name their last feature stage in ``feature_info`` (``layer4``,
``stages.3``, ``blocks.6``); other networks (torchvision, user modules, unflattened
ExportedPrograms) use the last top-level child that holds a convolution. Vision
Transformers (timm ``VisionTransformer``, torchvision ``VisionTransformer``) hook the first
norm of the last block and reshape its tokens ``N×(P+h·w)×C`` to ``N×C×h×w`` after dropping
the ``P`` prefix (class/register) tokens: the reshape pytorch-grad-cam documents for ViTs.

>>> find_cam_layer(torchvision.models.resnet18()).name              # doctest: +SKIP
'layer4'
>>> find_cam_layer(timm.create_model("vit_tiny_patch16_224")).name   # doctest: +SKIP
'blocks.11.norm1'
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn

from .errors import ModelError


@dataclass(frozen=True)
class CamLayer:
    """``name``: the module path inside the network; ``reshape``: tokens -> N×C×h×w, or
    None when the layer's output already is a feature map."""

    name: str
    reshape: Callable[[torch.Tensor], torch.Tensor] | None = None


class TokenReshape:
    """Drops ``prefix`` leading tokens and lays the rest out on an ``h×w`` patch grid.

    A class (not a lambda) so a Classifier holding it stays picklable and printable.
    """

    def __init__(self, prefix: int, grid: tuple[int, int]):
        self.prefix, self.grid = int(prefix), (int(grid[0]), int(grid[1]))

    def __call__(self, tokens: torch.Tensor) -> torch.Tensor:
        h, w = self.grid
        x = tokens[:, self.prefix:, :]
        if x.shape[1] != h * w:
            raise ModelError(f"ViT CAM: {x.shape[1]} patch tokens do not fill a {h}×{w} grid; "
                             "pass --cam-layer for another layer")
        return x.reshape(x.shape[0], h, w, x.shape[2]).permute(0, 3, 1, 2)

    def __repr__(self) -> str:
        return f"TokenReshape(prefix={self.prefix}, grid={self.grid})"


def find_cam_layer(net: nn.Module, override: str | None = None) -> CamLayer:
    """The layer Grad-CAM hooks in ``net`` (``override``: a module name, checked)."""
    vit = _vit_layer(net)
    if override:
        try:
            net.get_submodule(override)
        except AttributeError:
            names = ", ".join(n for n, _ in net.named_children())
            raise ModelError(f"--cam-layer {override!r} is not a module of "
                             f"{type(net).__name__} (top level: {names}; nested names use "
                             "dots, e.g. layer4.1)") from None
        # A ViT block (or its norm) still emits tokens, so it still needs the reshape.
        return CamLayer(override, vit.reshape if vit and _emits_tokens(net, override) else None)
    if vit is not None:
        return vit
    info = getattr(net, "feature_info", None)  # timm
    if info is not None:
        try:
            name = info[-1]["module"] if isinstance(info, list) else info.module_name()[-1]
            net.get_submodule(name)
            return CamLayer(name)
        except (AttributeError, IndexError, KeyError, TypeError):
            pass
    return CamLayer(last_conv_block(net))


def last_conv_block(net: nn.Module) -> str:
    """The last top-level child holding a convolution: the last convolutional block."""
    last = None
    for name, child in net.named_children():
        if any(_is_conv(m) for m in child.modules()):
            last = name
    if last is None:
        raise ModelError(f"no convolutional layer found in {type(net).__name__} for Grad-CAM; "
                         "pass --cam-layer NAME")
    return last


def _is_conv(m: nn.Module) -> bool:
    if isinstance(m, nn.Conv2d):
        return True
    graph = getattr(m, "graph", None)  # an unflattened ExportedProgram's InterpreterModule
    if isinstance(graph, torch.fx.Graph):
        return any(n.op == "call_function" and ("convolution" in str(n.target)
                                                or "conv2d" in str(n.target))
                   for n in graph.nodes)
    return False


def _vit_layer(net: nn.Module) -> CamLayer | None:
    kind = type(net).__name__
    blocks = getattr(net, "blocks", None)
    patch = getattr(net, "patch_embed", None)
    if kind == "VisionTransformer" and blocks is not None and patch is not None:  # timm
        grid = getattr(patch, "grid_size", None)
        if grid is None or getattr(net, "dynamic_img_size", False):
            return None
        prefix = getattr(net, "num_prefix_tokens", 1)
        return CamLayer(f"blocks.{len(blocks) - 1}.norm1",
                        TokenReshape(prefix, (int(grid[0]), int(grid[1]))))
    encoder = getattr(net, "encoder", None)
    if kind == "VisionTransformer" and hasattr(net, "image_size") and encoder is not None:
        tv = cast(Any, net)
        side = int(tv.image_size) // int(tv.patch_size)  # torchvision: one class token
        last = list(encoder.layers.named_children())[-1][0]  # "encoder_layer_11"
        return CamLayer(f"encoder.layers.{last}.ln_1", TokenReshape(1, (side, side)))
    return None


def _emits_tokens(net: nn.Module, name: str) -> bool:
    return name.startswith(("blocks.", "encoder.layers."))


def fixed_input_size(net: nn.Module) -> int | None:
    """The one square input size a network accepts (a ViT's patch grid), else None."""
    kind = type(net).__name__
    patch = getattr(net, "patch_embed", None)
    if kind == "VisionTransformer" and patch is not None:
        size = getattr(patch, "img_size", None)
        if size is not None and not getattr(net, "dynamic_img_size", False) \
                and getattr(patch, "strict_img_size", True):
            return int(size[0] if isinstance(size, (tuple, list)) else size)
    if kind == "VisionTransformer" and hasattr(net, "image_size"):
        return int(cast(Any, net).image_size)
    return None


def cam_reshape(model: nn.Module, layer: str | nn.Module | None = None):
    """The token reshape Grad-CAM needs for ``layer`` of ``model`` (a Classifier or a bare
    network), or None for a feature-map layer. ``layer`` None: the model's own CAM layer."""
    if isinstance(layer, nn.Module):
        return None
    if layer is None:
        if hasattr(model, "cam_layer_name"):
            _ = model.cam_layer  # resolves the name and its reshape when found automatically
            return getattr(model, "cam_reshape", None)
        return find_cam_layer(model).reshape
    if layer and layer == getattr(model, "cam_layer_name", None):
        # The model's own layer, named: the reshape its source chose (one only it may know,
        # as for a transformers ViT), not one guessed again from the network.
        return getattr(model, "cam_reshape", None)
    net = getattr(model, "net", model)
    try:
        return find_cam_layer(net, layer).reshape
    except ModelError:
        return None  # resolve_layer in the analysis reports the bad name
