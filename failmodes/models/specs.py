"""Model specs as users write them: :class:`ModelSource` (one model as a user names it, in a
study file or a ``{"arch": ..., "weights": ...}`` dict) and ``--model``/``--weights`` with
their options (CLI strings) -> its spec. Which source loads a spec: ``sources/``.

>>> ModelSource.from_spec({"arch": "small_cnn", "arch_args": {"width": 8}}).to_spec()
{'arch': 'small_cnn', 'arch_args': {'width': 8}}
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..constants import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD
from .errors import ModelError

MODEL_FILE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".pt2", ".onnx", ".ts")
NAMED_STATS = {"cifar10": (CIFAR10_MEAN, CIFAR10_STD), "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}


@dataclass
class ModelSource:
    """One model as a user names it. ``arch``: what to build (a registry name, ``tv:NAME``,
    ...: ``failmodes models`` lists the sources); ``weights``: a state dict for ``arch``, or
    without ``arch`` a model file that carries its network. ``classes``: names in output
    order, a list, a text file (one per line) or ``"a,b,c"``; ``mean``/``std``: per-channel
    statistics of the network's training data (default: the source's own, else by input
    size); ``input_size``: resize every batch to N×N first; ``cam_layer``: the Grad-CAM
    module name; ``tta``: ``flip`` evaluates the mean logits of each image and its mirror
    (test-time augmentation, only when asked: the default None is the plain forward pass);
    ``class_map``: ``{data class: [the network's classes]}`` (or a YAML file of it) for a
    head wider than the data, e.g. ImageNet's on CIFAR-10 (``models/class_map.py``)."""

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
    class_map: dict[str, list] | str | None = None

    @classmethod
    def from_spec(cls, spec: Mapping) -> ModelSource:
        """``{"arch": ..., "weights": ..., "arch_args": {...}, **fields}``; a key that is no
        field is refused, naming it (architecture arguments go under ``arch_args``)."""
        names = [f.name for f in dataclasses.fields(cls)]
        extra = sorted(str(k) for k in spec if k not in names)
        if extra:
            raise ModelError(f"unknown model spec key(s) {', '.join(extra)} (allowed: "
                             f"{', '.join(names)}); architecture arguments go under arch_args, "
                             f"e.g. {{'arch': 'small_cnn', 'arch_args': {{'width': 8}}}}")
        return cls(**dict(spec))

    @classmethod
    def parse(cls, spec: ModelSource | Mapping | str) -> ModelSource:
        """A spec string (an architecture or a model file), dict or ModelSource -> ModelSource."""
        if isinstance(spec, str):
            return cls(weights=spec) if is_model_file(spec) else cls(spec)
        if isinstance(spec, Mapping):
            return cls.from_spec(spec)
        return spec

    def to_spec(self) -> dict:
        """The JSON-able spec that rebuilds this model (stored with its results)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, {}, [])}


def is_model_file(spec: str) -> bool:
    """Whether a ``--model`` string names a file rather than an architecture."""
    return (Path(spec).expanduser().is_file() or spec.endswith(MODEL_FILE_SUFFIXES)
            or (os.sep in spec and ":" not in spec))


def spec_from_options(model: str, weights: str | None = None, *, arch_args=(),
                      num_classes: int | None = None, classes: str | None = None,
                      mean: str | None = None, std: str | None = None,
                      input_size: int | None = None, cam_layer: str | None = None,
                      tta: str | None = None):
    """The spec of ``--model ARCH --weights FILE`` and its options (CLI strings): a plain
    string when nothing but ``--model`` is given, else a dict. ``arch_args``: ``key=value``
    strings, values read as YAML scalars (``depth=2``, ``drop_rate=0.1``, ``name=foo``);
    ``mean``/``std``: ``R,G,B`` or ``imagenet`` / ``cifar10``."""
    import yaml
    spec: dict[str, Any] = {}
    if weights is not None:
        spec["arch"], spec["weights"] = model, weights
    elif Path(model).expanduser().is_file():
        spec["weights"] = model
    else:
        spec["arch"] = model
    parsed = {}
    for item in arch_args:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ModelError(f"--arch-arg {item!r} is not key=value (e.g. depth=2)")
        parsed[key.strip()] = yaml.safe_load(value) if value.strip() else ""
    if parsed:
        spec["arch_args"] = parsed
    for key, value in (("num_classes", num_classes), ("input_size", input_size),
                       ("cam_layer", cam_layer), ("classes", classes), ("tta", tta)):
        if value is not None:
            spec[key] = value
    for key, value in (("mean", mean), ("std", std)):
        if value is not None:
            spec[key] = _stats(key, value)
    if list(spec) == ["arch"]:
        return model
    if list(spec) == ["weights"]:
        return model
    return spec


def _stats(key: str, text: str) -> list[float]:
    name = text.strip().lower()
    if name in NAMED_STATS:
        return list(NAMED_STATS[name][0 if key == "mean" else 1])
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        vals = []
    if len(vals) != 3:
        raise ModelError(f"--{key} {text!r}: give R,G,B (e.g. 0.485,0.456,0.406) or "
                         f"{' / '.join(NAMED_STATS)}")
    return vals
