"""Model specs as users write them: ``--model``/``--weights`` and their options (CLI strings)
-> the spec dict of :class:`~failmodes.models.sources.ModelSource`, and the file paths in a
spec made absolute."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..constants import CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD
from .wrapper import ModelError

MODEL_FILE_SUFFIXES = (".pt", ".pth", ".ckpt", ".bin", ".safetensors", ".pt2", ".onnx", ".ts")
NAMED_STATS = {"cifar10": (CIFAR10_MEAN, CIFAR10_STD), "imagenet": (IMAGENET_MEAN, IMAGENET_STD)}


def is_model_file(spec: str) -> bool:
    """Whether a ``--model`` string names a file rather than an architecture."""
    return (Path(spec).expanduser().is_file() or spec.endswith(MODEL_FILE_SUFFIXES)
            or (os.sep in spec and ":" not in spec))


def absolute_model_spec(spec):
    """``spec`` with its file paths (weights, a ``file.py:callable``, a classes file) made
    absolute, so a saved config names the same files from any directory."""
    if isinstance(spec, str):
        p = Path(spec).expanduser()
        return str(p.resolve()) if p.is_file() or spec.endswith(MODEL_FILE_SUFFIXES) else spec
    out = dict(spec)
    if isinstance(out.get("weights"), str):
        out["weights"] = str(Path(out["weights"]).expanduser().resolve())
    arch = out.get("arch")
    if isinstance(arch, str) and ".py:" in arch:
        f, _, attr = arch.rpartition(":")
        out["arch"] = f"{Path(f).expanduser().resolve()}:{attr}"
    if isinstance(out.get("classes"), str) and Path(out["classes"]).expanduser().is_file():
        out["classes"] = str(Path(out["classes"]).expanduser().resolve())
    return out


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
