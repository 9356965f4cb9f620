"""The model registry (name -> constructor) and checkpoints.

>>> m = create_model("cifar_resnet18", width=16)
>>> m(torch.rand(2, 3, 32, 32)).shape
torch.Size([2, 10])
"""
from __future__ import annotations

import fnmatch
import inspect
import hashlib
import os
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from .._atomic import save_atomic
from .wrapper import Classifier, ModelError

CKPT_FORMAT = "failmodes-checkpoint-v1"
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class ModelEntry:
    name: str
    build: Callable[..., nn.Module]  # build(num_classes=..., **kwargs) -> network
    description: str
    input_size: int
    num_classes: int
    cam_layer: str
    mean: tuple = CIFAR_MEAN
    std: tuple = CIFAR_STD
    class_names: Callable[[], list[str]] | None = None  # fixed label sets (ImageNet)


_REGISTRY: dict[str, ModelEntry] = {}


def register_model(name: str, *, description: str, input_size: int = 32, num_classes: int = 10,
                   cam_layer: str, mean=CIFAR_MEAN, std=CIFAR_STD, class_names=None):
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
    return rows


def library_versions() -> dict:
    import numpy
    import torchvision
    from .. import __version__
    return {"failmodes": __version__, "torch": str(torch.__version__),
            "torchvision": str(torchvision.__version__), "numpy": str(numpy.__version__),
            "python": platform.python_version()}


def weights_hash(model: nn.Module) -> str:
    """SHA-1 of the state dict's names and bytes: identifies trained weights in a store."""
    h = hashlib.sha1()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                 if v.numel() else b"")
    return h.hexdigest()


def save_checkpoint(model: Classifier, path: str | os.PathLike, *, config: dict | None = None,
                    history: list | None = None, extra: dict | None = None) -> Path:
    """Write everything ``evaluate`` needs (architecture, classes, normalisation, weights,
    config, history, versions) atomically: a temp file, fsync, then rename."""
    payload = {
        "format": CKPT_FORMAT,
        "arch": model.arch,
        "arch_kwargs": model.arch_kwargs,
        "class_names": model.class_names,
        "mean": model.mean.flatten().tolist(),
        "std": model.std.flatten().tolist(),
        "state_dict": {k: v.detach().to("cpu") for k, v in model.net.state_dict().items()},
        "config": config or {},
        "history": history or [],
        "versions": library_versions(),
        "extra": extra or {},
    }
    return save_atomic(path, lambda f: torch.save(payload, f), fsync=True)


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> tuple[Classifier, dict]:
    """Load a failmodes checkpoint safely (``weights_only=True``); returns (model, payload)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"checkpoint {path} not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated file, pickle with code, not a torch file at all
        raise ModelError(f"{path} is not a readable failmodes checkpoint "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not isinstance(payload, dict) or payload.get("format") != CKPT_FORMAT:
        raise ModelError(f"{path} is not a failmodes checkpoint (no '{CKPT_FORMAT}' header); "
                         "train one with `failmodes train`")
    missing = [k for k in ("arch", "arch_kwargs", "class_names", "mean", "std", "state_dict")
               if k not in payload]
    if missing:
        raise ModelError(f"{path} is an incomplete failmodes checkpoint (no {', '.join(missing)}); "
                         "re-save it with `failmodes train`")
    model = create_model(payload["arch"], class_names=payload["class_names"],
                         mean=tuple(payload["mean"]), std=tuple(payload["std"]),
                         **payload["arch_kwargs"])
    try:
        model.net.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        raise ModelError(f"{path}: weights do not fit {payload['arch']} "
                         f"({str(e).splitlines()[0][:120]})") from None
    model.eval()
    return model, payload


def _load_all() -> None:
    from . import zoo  # noqa: F401  (registers the built-in models)
