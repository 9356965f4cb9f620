"""The architecture registry: name -> constructor, with each model's input size, classes,
normalisation and Grad-CAM layer. The built-in architectures (``zoo.py``, ``fastnet.py``)
register themselves when ``failmodes.models`` imports them; ``create_model`` builds one.

>>> list_models("*resnet*")
['cifar_resnet18']
"""
from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from ..constants import CIFAR10_MEAN, CIFAR10_STD
from .errors import ModelError


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
    return [n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern)]


def get_entry(name: str) -> ModelEntry:
    """The registry entry of ``name``; ModelError with close names when there is none."""
    if name not in _REGISTRY:
        import difflib
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise ModelError(f"unknown model {name!r}{hint}; `failmodes models` lists them, "
                         "tv:<name> takes any torchvision classifier, or pass a checkpoint path")
    return _REGISTRY[name]
