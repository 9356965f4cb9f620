"""The model registry: name -> constructor, with each model's input size, classes,
normalisation and Grad-CAM layer. Checkpoint files live in ``checkpoint.py``.

>>> m = create_model("cifar_resnet18", width=16)
>>> m(torch.rand(2, 3, 32, 32)).shape
torch.Size([2, 10])
"""
from __future__ import annotations

import fnmatch
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from ..constants import CIFAR10_MEAN, CIFAR10_STD
from .wrapper import Classifier, ModelError


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Callable[..., nn.Module]  # build(num_classes=..., **kwargs) -> network
    description: str
    input_size: int
    num_classes: int
    cam_layer: str
    mean: tuple = CIFAR10_MEAN
    std: tuple = CIFAR10_STD
    class_names: Callable[[], list[str]] | None = None  # fixed label sets (ImageNet)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, description: str, input_size: int = 32, num_classes: int = 10,
                   cam_layer: str, mean=CIFAR10_MEAN, std=CIFAR10_STD, class_names=None):
    """Decorator filing a network constructor under ``name``."""
    def wrap(build):
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(name, build, description, input_size, num_classes,
                                     cam_layer, tuple(mean), tuple(std), class_names)
        return build
    return wrap


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, e.g. ``list_models("*resnet*")``."""
    _load_all()
    return [n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern)]


def get_entry(name: str) -> ModelEntry:
    _load_all()
    if name.startswith("tv:"):
        from .imagenet import torchvision_entry
        return torchvision_entry(name[3:])
    if name not in _REGISTRY:
        import difflib
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ModelError(f"unknown model {name!r}{hint}; `failmodes models` lists them, "
                         "tv:<name> takes any torchvision classifier, or pass a checkpoint path")
    return _REGISTRY[name]


def create_model(name_or_path: str | os.PathLike, *, class_names: list[str] | None = None,
                 num_classes: int | None = None, mean=None, std=None, **kwargs) -> Classifier:
    """Build a registry model, or load a checkpoint when given a path to one.

    ``None`` keyword arguments are dropped, so CLI defaults never override a model's own.
    ``class_names`` (or ``num_classes``) sets the head; ``mean``/``std`` the normaliser.
    """
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    s = str(name_or_path)
    if s.endswith((".pt", ".pth", ".ckpt")) or os.path.isfile(s):
        from .checkpoint import load_checkpoint
        model, _ = load_checkpoint(s)
        return model
    entry = get_entry(s)
    if class_names is None and entry.class_names is not None:
        class_names = entry.class_names()
    if class_names is None:
        n = num_classes or entry.num_classes
        class_names = [f"class_{i}" for i in range(n)]
    if num_classes is not None and num_classes != len(class_names):
        raise ModelError(f"{s}: num_classes={num_classes} but {len(class_names)} class names")
    try:
        net = entry.build(num_classes=len(class_names), **kwargs)
    except TypeError as e:
        raise ModelError(f"{s}: bad model argument ({e})") from None
    return Classifier(net, arch=s, arch_kwargs=kwargs, class_names=class_names,
                      mean=mean or entry.mean, std=std or entry.std,
                      input_size=entry.input_size, cam_layer_name=entry.cam_layer)


def describe_models(pattern: str = "*") -> list[dict]:
    """Rows for ``failmodes models``: name, parameter count, input size, classes."""
    rows = []
    for name in list_models(pattern):
        e = _REGISTRY[name]
        kw = {"pretrained": False} if "pretrained" in inspect.signature(e.build).parameters else {}
        with torch.device("meta"):  # count parameters without allocating or loading weights
            net = e.build(num_classes=e.num_classes, **kw)
        n = sum(p.numel() for p in net.parameters())
        rows.append({"name": name, "params": f"{n / 1e6:.2f} M", "n_params": n,
                     "input": f"{e.input_size}×{e.input_size}", "classes": e.num_classes,
                     "description": e.description})
    rows.append({"name": "tv:<name>", "params": "-", "n_params": None, "input": "224×224",
                 "classes": 1000, "description": "any torchvision classifier, e.g. tv:resnet50 "
                 "(pretrained weights download online only)"})
    rows.append({"name": "timm:<name>", "params": "-", "n_params": None, "input": "cfg",
                 "classes": "weights", "description": "any timm model with --weights FILE "
                 "(pip install 'failmodes[timm]')"})
    rows.append({"name": "pkg.module:fn | file.py:fn", "params": "-", "n_params": None,
                 "input": "any", "classes": "weights", "description": "your own class or "
                 "factory with --weights FILE and --arch-arg KEY=VALUE"})
    rows.append({"name": "FILE.pt2 | TorchScript | FILE.onnx", "params": "-", "n_params": None,
                 "input": "file", "classes": "file", "description": "a model file that carries "
                 "its network (ONNX: pip install 'failmodes[onnx]')"})
    return rows


def _load_all() -> None:
    from . import fastnet, zoo  # noqa: F401  (registers the built-in models)
