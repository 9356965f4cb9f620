"""Where a model comes from: ``--model ARCH --weights FILE`` (and the same in a study file or
a ``{"arch": ..., "weights": ...}`` spec) -> the pixel-space Classifier, with its provenance.

``ARCH`` is a registry name (``cifar_resnet18``), ``tv:NAME`` (torchvision), ``timm:NAME``
(timm, the optional extra ``failmodes[timm]``), ``package.module:callable`` or
``path/to/file.py:callable`` (the user's class or factory, called with ``arch_args`` and
``num_classes`` when it takes one). ``FILE`` is a state dict (see ``weights.py``). A file
given without ``ARCH`` is a failmodes checkpoint, a ``torch.export`` ExportedProgram
(``.pt2``), a TorchScript file or an ONNX file (see ``exported.py``). Architecture names are
resolved in ``architectures.py``, CLI options become specs in ``specs.py``.

>>> src = ModelSource(arch="tv:resnet18", weights="r18.pth")
>>> model = load_model(src, data_classes=ds.classes)                 # doctest: +SKIP
"""
from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..constants import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD
from .architectures import resolve_arch
from .cam_layers import find_cam_layer, fixed_input_size
from .specs import MODEL_FILE_SUFFIXES, NAMED_STATS, absolute_model_spec, is_model_file, spec_from_options
from .tta import apply_tta
from .wrapper import Classifier, ModelError, head_size

__all__ = ["CIFAR_SIZED", "MODEL_FILE_SUFFIXES", "NAMED_STATS", "ModelSource", "absolute_model_spec",
           "default_normalization", "fmt_stats", "is_model_file", "load_model", "resolve_arch",
           "resolve_classes", "spec_from_options"]

# Inputs up to this side are "CIFAR-sized": a network of unknown origin gets CIFAR-10
# statistics there, ImageNet statistics above.
CIFAR_SIZED = 32


@dataclass
class ModelSource:
    """One model as a user names it. ``classes``: names in output order, a list, a text file
    (one per line) or ``"a,b,c"``; ``mean``/``std``: per-channel statistics of the
    network's training data (default: see :func:`default_normalization`); ``input_size``:
    resize every batch to N×N first; ``cam_layer``: the Grad-CAM module name; ``tta``:
    ``flip`` evaluates the mean logits of each image and its mirror (test-time
    augmentation, only when asked: the default None is the plain forward pass)."""

    arch: str | None = None
    weights: str | None = None
    arch_args: dict[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
    classes: list[str] | str | None = None
    mean: list[float] | None = None
    std: list[float] | None = None
    input_size: int | None = None
    cam_layer: str | None = None
    tta: str | None = None

    @classmethod
    def from_spec(cls, spec: Mapping) -> ModelSource:
        """``{"arch": ..., "weights": ..., **fields}``; other keys are arch arguments (the
        older ``{"arch": "small_cnn", "width": 8}`` form)."""
        names = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in spec.items() if k in names}
        extra = {k: v for k, v in spec.items() if k not in names}
        kw["arch_args"] = {**extra, **dict(kw.get("arch_args") or {})}
        return cls(**kw)

    def to_spec(self) -> dict:
        """The JSON-able spec that rebuilds this model (stored with its results)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, {}, [])}


# ----------------------------------------------------------------------------- defaults
def default_normalization(arch: str, kind: str, net: nn.Module, size: int) -> tuple:
    """(mean, std, where from): the registry entry, timm's ``pretrained_cfg``, torchvision's
    weights meta, else CIFAR-10 statistics for CIFAR-sized input and ImageNet's above."""
    if kind == "registry":
        from .registry import get_entry
        e = get_entry(arch)
        return e.mean, e.std, f"the registry entry {arch}"
    if kind == "timm":
        cfg = getattr(net, "pretrained_cfg", None) or {}
        if cfg.get("mean") and cfg.get("std"):
            return tuple(cfg["mean"]), tuple(cfg["std"]), "timm pretrained_cfg"
    if kind == "torchvision":
        import torchvision.models as tvm
        try:
            t = tvm.get_model_weights(arch[3:]).DEFAULT.transforms()
            return tuple(t.mean), tuple(t.std), "torchvision weights meta"
        except (ValueError, KeyError, AttributeError, TypeError):
            pass
    if size <= CIFAR_SIZED:
        return CIFAR10_MEAN, CIFAR10_STD, f"CIFAR-10 statistics ({size}-px input)"
    return IMAGENET_MEAN, IMAGENET_STD, f"ImageNet statistics ({size}-px input)"


def resolve_classes(src: ModelSource, n_out: int | None, data_classes) -> tuple[list[str], str]:
    """Class names in output order and where they came from."""
    names = src.classes
    if isinstance(names, str):
        p = Path(names).expanduser()
        if p.is_file():
            names = [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
            how = f"file {p}"
        else:
            names, how = [c.strip() for c in names.split(",") if c.strip()], "given"
    elif names is not None:
        names, how = list(names), "given"
    if names is not None:
        if n_out is not None and len(names) != n_out:
            raise ModelError(f"{len(names)} class names for a {n_out}-way head; give one name "
                             "per output, in output order")
        return names, how
    n = n_out or (len(data_classes) if data_classes else None)
    if n is None:
        raise ModelError("cannot tell the number of classes; pass --num-classes or --classes")
    if data_classes and len(data_classes) == n:
        return list(data_classes), "the data's class names"
    if n == 1000:
        from .imagenet import imagenet_classes
        return imagenet_classes(), "ImageNet (1000-way head)"
    return [f"class_{i}" for i in range(n)], "numbered (no names given)"


# ----------------------------------------------------------------------------- loading
def load_model(src: ModelSource | Mapping | str, *, data_classes=None, data_size: int | None = None,
               seed: int = 0, say: Callable[[str], None] | None = None) -> Classifier:
    """Build the Classifier ``src`` names, weights loaded, in eval mode on the CPU.

    ``data_classes``/``data_size``: the evaluated data's class names and image side, for
    the defaults; ``seed`` initialises weights that no file provides; ``say`` receives the
    lines worth printing (how the weights were fitted, the chosen mean/std).
    """
    say = say or (lambda line: print(line, file=sys.stderr))
    if isinstance(src, str):
        src = ModelSource(weights=src) if is_model_file(src) else ModelSource(src)
    elif isinstance(src, Mapping):
        src = ModelSource.from_spec(src)
    if src.arch is None:
        if src.weights is None:
            raise ModelError("a model needs --model ARCH (with --weights FILE) or a model file")
        from .exported import load_file_model
        return apply_tta(load_file_model(src, data_classes=data_classes, data_size=data_size,
                                         say=say), src.tta)
    build, kind = resolve_arch(src.arch)
    obj, digest, path = None, None, None
    if src.weights is not None:
        from .weights import read_state_dict, sha256_file
        path = Path(src.weights).expanduser().resolve()
        obj, digest = read_state_dict(path), sha256_file(path)
    n = src.num_classes or (None if src.classes is None else
                            len(resolve_classes(src, None, data_classes)[0]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        try:
            if n is None and obj is not None:
                from .weights import head_classes
                n = head_classes(_probe_build(build, src.arch_args), obj)
            if n is None and data_classes:
                n = len(data_classes)
            net = build(n, **src.arch_args)
        except TypeError as e:
            raise ModelError(f"{src.arch}: bad model argument ({e})") from None
    note = None
    if obj is not None:
        from .weights import fit_state_dict
        note = fit_state_dict(net, obj, str(path))
        say(note)
    net.eval()
    classes, classes_from = resolve_classes(src, head_size(net), data_classes)
    fixed = fixed_input_size(net)
    size = src.input_size or fixed or data_size or _entry_size(src.arch, kind)
    if src.mean is not None or src.std is not None:
        if src.mean is None or src.std is None:
            raise ModelError("--mean and --std go together; give both (R,G,B each)")
        mean, std, norm_from = tuple(src.mean), tuple(src.std), "given"
    else:
        mean, std, norm_from = default_normalization(src.arch, kind, net, size)
        say(f"{src.arch}: {fmt_stats(mean, std)} from {norm_from}; "
            "pass --mean/--std if it was trained with others")
    _check_norm(mean, std)
    layer = None
    if src.cam_layer or kind != "registry":
        try:
            layer = find_cam_layer(net, src.cam_layer)
        except ModelError:
            if src.cam_layer:
                raise  # a wrong name; without one, the cam analysis says why there is none
    resolved = dataclasses.replace(src, weights=str(path) if path else None,
                                   classes=list(classes), num_classes=len(classes),
                                   mean=list(mean), std=list(std))
    source = {"arch": src.arch, "arch_args": dict(src.arch_args), "kind": kind,
              "weights": str(path) if path else None, "weights_sha256": digest,
              "format": _format(path) if path else f"initialised (seed {seed})",
              "loaded": note, "mean": list(mean), "std": list(std),
              "normalization_from": norm_from, "classes": list(classes),
              "classes_from": classes_from, "input_size": size,
              "resize": bool(src.input_size or fixed),
              "cam_layer": layer.name if layer else _registry_cam(src.arch, kind),
              "spec": resolved.to_spec()}
    model = Classifier(net, arch=src.arch, arch_kwargs=dict(src.arch_args), class_names=classes,
                       mean=mean, std=std, input_size=size, resize=bool(src.input_size or fixed),
                       cam_layer_name=layer.name if layer else _registry_cam(src.arch, kind),
                       cam_reshape=layer.reshape if layer else None, source=source)
    return apply_tta(model.eval(), src.tta)


def _probe_build(build, arch_args) -> nn.Module:
    try:
        with torch.device("meta"):  # the default head's name, without allocating weights
            return build(None, **arch_args)
    except (RuntimeError, NotImplementedError):  # a module that cannot live on "meta"
        return build(None, **arch_args)


def _entry_size(arch: str, kind: str) -> int:
    if kind == "registry":
        from .registry import get_entry
        return get_entry(arch).input_size
    return 224


def _registry_cam(arch: str, kind: str) -> str:
    if kind == "registry":
        from .registry import get_entry
        return get_entry(arch).cam_layer
    return ""


def _format(path: Path) -> str:
    return "safetensors" if path.suffix == ".safetensors" else "torch state dict (weights_only)"


def _check_norm(mean, std) -> None:
    if len(mean) != 3 or len(std) != 3:
        raise ModelError(f"--mean/--std need 3 values each (R,G,B), got {mean} and {std}")
    if any(s <= 0 for s in std):
        raise ModelError(f"--std values must be positive, got {std}")


def fmt_stats(mean, std) -> str:
    """``mean (0.485, 0.456, 0.406) std (0.229, 0.224, 0.225)``: the line users see."""
    return " ".join(f"{k} (" + ", ".join(f"{x:.4g}" for x in v) + ")"
                    for k, v in (("mean", mean), ("std", std)))
