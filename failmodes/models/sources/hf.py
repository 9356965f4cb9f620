"""``hf:NAME_OR_PATH``: a transformers image classifier (``AutoModelForImageClassification``)
from the Hugging Face Hub or a ``save_pretrained`` folder (the optional extra
``failmodes[hf]``), with its image processor's mean/std and input size, its
``config.id2label`` class names and its logits (``.logits`` of the model's output).

Grad-CAM on a ViT hooks the first LayerNorm of the last encoder layer
(``layernorm_before``, as timm's ``blocks[-1].norm1``) and lays its tokens ``N×(1+h·w)×C``
out as ``N×C×h×w`` after dropping the class token: the reshape pytorch-grad-cam documents
for Vision Transformers (``tutorials/vision_transformers.md``).

>>> model = load_model("hf:google/vit-base-patch16-224")             # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn

from ..cam_layers import CamLayer, TokenReshape, find_cam_layer
from ..errors import ModelError
from ..weights import sha256_file
from ..wrapper import Classifier
from ._base import (
    Source,
    check_statistics,
    fmt_stats,
    given_statistics,
    register_source,
    resolve_classes,
    statistics_by_size,
)

PREFIX = "hf:"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # save_pretrained's single file


class HFLogits(nn.Module):
    """A transformers classifier as a plain network: ``pixel_values`` in, ``.logits`` out."""

    model: Any  # a transformers PreTrainedModel (``.config``, ``.base_model_prefix``)

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x).logits


@register_source
class HuggingFaceSource(Source):
    syntax = "hf:NAME_OR_PATH"
    kind = "hf"
    order = 30
    input = "processor"
    classes = "id2label"

    def matches(self, src) -> bool:
        return src.arch is not None and src.arch.startswith(PREFIX)

    def describe(self) -> str:
        return ("a transformers image classifier from the Hub or a save_pretrained folder, "
                "with its processor's mean/std and size (pip install 'failmodes[hf]')")

    def absolute(self, arch: str) -> str:
        path = Path(arch[len(PREFIX):]).expanduser()
        return f"{PREFIX}{path.resolve()}" if path.is_dir() else arch

    def check(self, src) -> None:
        _transformers(src.arch)

    def load(self, src, *, data_classes=None, data_size=None, seed=0, say) -> Classifier:
        name = src.arch[len(PREFIX):]
        tf = _transformers(src.arch)
        if src.weights is not None:
            raise ModelError(f"{src.arch} loads its weights from the model folder or the Hub; "
                             "drop --weights")
        try:
            hf = tf.AutoModelForImageClassification.from_pretrained(name, **src.arch_args)
            processor = tf.AutoImageProcessor.from_pretrained(name)
        except (OSError, ValueError, TypeError) as e:  # not found, offline, not a classifier
            raise ModelError(f"{src.arch}: cannot load it ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:120]})") from None
        net = HFLogits(hf.eval())
        n_out = int(hf.config.num_labels)
        classes, classes_from = _classes(src, hf.config, n_out, data_classes)
        size = src.input_size or _processor_size(processor) or _config_size(hf.config) \
            or data_size or 224
        stats = given_statistics(src)
        if stats is None:
            stats = _processor_statistics(processor) or statistics_by_size(size)
            say(f"{src.arch}: {fmt_stats(*stats[:2])} from {stats[2]}; "
                "pass --mean/--std if it was trained with others")
        mean, std, norm_from = stats
        check_statistics(mean, std)
        layer, unavailable = _cam_layer(net, src.cam_layer)
        folder = Path(name).expanduser()
        weights = next((folder / f for f in WEIGHT_FILES if (folder / f).is_file()), None)
        resolved = dataclasses.replace(src, classes=list(classes), num_classes=len(classes),
                                       mean=list(mean), std=list(std))
        source = {"arch": src.arch, "arch_args": dict(src.arch_args), "kind": self.kind,
                  "weights": str(weights.resolve()) if weights else name,
                  "weights_sha256": sha256_file(weights) if weights else None,
                  "format": f"transformers {type(hf).__name__}", "loaded": None,
                  "mean": list(mean), "std": list(std), "normalization_from": norm_from,
                  "classes": list(classes), "classes_from": classes_from, "input_size": size,
                  "resize": True, "cam_layer": layer.name if layer else "",
                  "spec": resolved.to_spec()}
        model = Classifier(net, arch=src.arch, arch_kwargs=dict(src.arch_args),
                           class_names=classes, mean=mean, std=std, input_size=size, resize=True,
                           cam_layer_name=layer.name if layer else "",
                           cam_reshape=layer.reshape if layer else None,
                           cam_unavailable=unavailable, source=source)
        return model.eval()


def _transformers(arch: str | None):
    try:
        import transformers
    except ImportError:
        raise ModelError(f"{arch} needs transformers: pip install 'failmodes[hf]'") from None
    return transformers


def _classes(src, config, n_out: int, data_classes) -> tuple[list[str], str]:
    if src.num_classes is not None and src.num_classes != n_out:
        raise ModelError(f"{src.arch}: num_classes={src.num_classes} but its head has {n_out} "
                         "outputs")
    labels = [str(config.id2label.get(i, f"LABEL_{i}")) for i in range(n_out)]
    if src.classes is None and labels != [f"LABEL_{i}" for i in range(n_out)]:
        return labels, "config.id2label"
    return resolve_classes(src, n_out, data_classes)  # given, the data's, else numbered


def _processor_size(processor) -> int | None:
    size: Any = getattr(processor, "crop_size", None) or getattr(processor, "size", None)
    if hasattr(size, "get"):  # a dict (or transformers' SizeDict)
        h, w = size.get("height"), size.get("width")
        if h and w and h == w:
            return int(h)
        edge = size.get("shortest_edge")
        return int(edge) if edge else None
    return int(size) if isinstance(size, int) else None


def _config_size(config) -> int | None:
    size = getattr(config, "image_size", None)
    return int(size) if isinstance(size, int) else None


def _processor_statistics(processor) -> tuple | None:
    mean, std = getattr(processor, "image_mean", None), getattr(processor, "image_std", None)
    if mean is None or std is None or len(mean) != 3 or len(std) != 3:
        return None
    return (tuple(float(v) for v in mean), tuple(float(v) for v in std),
            f"the image processor ({type(processor).__name__})")


def _vit_blocks(net: HFLogits) -> str | None:
    """The module path of a ViT-like model's list of encoder layers (``vit.layers`` in
    transformers 5, ``vit.encoder.layer`` before), or None."""
    prefix = getattr(net.model, "base_model_prefix", "")
    for path in ("layers", "encoder.layer", "encoder.layers"):
        try:
            blocks = net.get_submodule(f"model.{prefix}.{path}")
        except AttributeError:
            continue
        if isinstance(blocks, nn.ModuleList) and len(blocks):
            return f"model.{prefix}.{path}"
    return None


def _vit_layer(net: HFLogits) -> CamLayer | None:
    """The first LayerNorm of the last encoder layer of a ViT-like model, with its reshape."""
    config = net.model.config
    side, patch = getattr(config, "image_size", None), getattr(config, "patch_size", None)
    blocks = _vit_blocks(net)
    if blocks is None or not isinstance(side, int) or not isinstance(patch, int):
        return None
    last = f"{blocks}.{len(cast(nn.ModuleList, net.get_submodule(blocks))) - 1}"
    norm = next((n for n, m in net.get_submodule(last).named_modules()
                 if isinstance(m, nn.LayerNorm)), None)  # layernorm_before comes first
    if norm is None:
        return None
    return CamLayer(f"{last}.{norm}", TokenReshape(1, (side // patch, side // patch)))  # 1: CLS


def _cam_layer(net: HFLogits, override: str | None) -> tuple[CamLayer | None, str | None]:
    """(the Grad-CAM layer, None) or (None, why there is none)."""
    vit = _vit_layer(net)
    if override:
        name = find_cam_layer(net, override).name  # checks the name, one line if wrong
        blocks = _vit_blocks(net)
        tokens = vit is not None and blocks is not None and name.startswith(blocks + ".")
        return CamLayer(name, vit.reshape if vit is not None and tokens else None), None
    if vit is not None:
        return vit, None
    return None, (f"no Grad-CAM layer is known for the transformers model type "
                  f"{net.model.config.model_type!r}; pass --cam-layer NAME")
