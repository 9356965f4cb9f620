"""One way to get a Classifier from a spec: :func:`load_model` asks the source registry
(``sources/``) which source takes the spec and lets it load; :func:`create_model` builds an
architecture of the registry (or loads a model file) the same way. A live ``nn.Module``
enters through ``wrap`` (``wrapper.py``).

>>> model = load_model({"arch": "tv:resnet18", "weights": "r18.pth"})   # doctest: +SKIP
>>> create_model("small_cnn", width=8).num_classes
10
"""
from __future__ import annotations

import dataclasses
import inspect
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import torch

from .class_map import apply_class_map
from .registry import get_entry, list_models
from .sources import find_source, list_sources
from .sources._arch import create
from .specs import MODEL_FILE_SUFFIXES, ModelSource
from .tta import apply_tta
from .wrapper import Classifier


def load_model(src: ModelSource | Mapping | str, *, weights: str | os.PathLike | None = None,
               data_classes=None, data_size: int | None = None, seed: int = 0,
               say: Callable[[str], None] | None = None) -> Classifier:
    """Build the Classifier ``src`` names, weights loaded, in eval mode on the CPU.

    ``src``: a spec string (an architecture or a model file), a ``{"arch": ..., "weights":
    ...}`` dict or a :class:`ModelSource`; ``weights``: the state dict file of an
    architecture (``load_model("tv:resnet18", weights="r18.pth")``, the same as ``{"arch":
    "tv:resnet18", "weights": "r18.pth"}``); ``data_classes``/``data_size``: the evaluated
    data's class names and image side, for the defaults; ``seed`` initialises weights that
    no file provides; ``say`` receives the lines worth printing (how the weights were
    fitted, the chosen mean/std).
    """
    say = say or (lambda line: print(line, file=sys.stderr))
    if weights is not None:
        src = ModelSource(arch=src) if isinstance(src, str) else ModelSource.parse(src)
        src = dataclasses.replace(src, weights=str(weights))
    src = ModelSource.parse(src)
    model = find_source(src).load(src, data_classes=data_classes, data_size=data_size, seed=seed,
                                  say=say)
    if src.class_map is not None:  # only when asked: a wider head is refused otherwise
        apply_class_map(model, src.class_map, data_classes, say)
    return apply_tta(model, src.tta)


def create_model(name_or_path: str | os.PathLike, *, class_names: list[str] | None = None,
                 num_classes: int | None = None, mean=None, std=None, **kwargs) -> Classifier:
    """Build an architecture (a registry name or ``tv:NAME``), or load a model file.

    ``None`` keyword arguments are dropped, so CLI defaults never override a model's own.
    ``class_names`` (or ``num_classes``) sets the head; ``mean``/``std`` the normaliser. The
    weights are drawn from torch's global RNG and the network keeps its training mode.
    """
    s = str(name_or_path)
    if s.endswith((".pt", ".pth", ".ckpt")) or os.path.isfile(s):
        return load_model(ModelSource(weights=s))
    return create(s, class_names=class_names, num_classes=num_classes, mean=mean, std=std,
                  **kwargs)


def check_model(spec: ModelSource | Mapping | str) -> None:
    """What can be checked of a spec without building it: a source takes it and knows its
    name (an unknown registry name or ``tv:`` classifier fails here, in a second)."""
    src = ModelSource.parse(spec)
    find_source(src).check(src)


def absolute_model_spec(spec):
    """``spec`` with its file paths (weights, a ``file.py:callable``, an ``hf:`` folder, a
    classes file) made absolute, so a saved config names the same files from any directory."""
    if isinstance(spec, str):
        p = Path(spec).expanduser()
        if p.is_file() or spec.endswith(MODEL_FILE_SUFFIXES):
            return str(p.resolve())
        return find_source(ModelSource(arch=spec)).absolute(spec)
    out = dict(spec)
    if isinstance(out.get("weights"), str):
        out["weights"] = str(Path(out["weights"]).expanduser().resolve())
    arch = out.get("arch")
    if isinstance(arch, str):
        out["arch"] = find_source(ModelSource(arch=arch)).absolute(arch)
    for key in ("classes", "class_map"):  # a text / YAML file
        if isinstance(out.get(key), str) and Path(out[key]).expanduser().is_file():
            out[key] = str(Path(out[key]).expanduser().resolve())
    return out


def model_help() -> str:
    """The ``--model`` help, from the source registry."""
    return ("a model source: " + ", ".join(s.syntax for s in list_sources())
            + " (`failmodes models` describes each)")


def describe_models(pattern: str = "*") -> list[dict]:
    """Rows for ``failmodes models``: each registry architecture (name, parameter count,
    input size, classes), then each model source."""
    rows = []
    for name in list_models(pattern):
        e = get_entry(name)
        kw = {"pretrained": False} if "pretrained" in inspect.signature(e.build).parameters else {}
        with torch.device("meta"):  # count parameters without allocating or loading weights
            net = e.build(num_classes=e.num_classes, **kw)
        n = sum(p.numel() for p in net.parameters())
        rows.append({"name": name, "params": f"{n / 1e6:.2f} M", "n_params": n,
                     "input": f"{e.input_size}×{e.input_size}", "classes": e.num_classes,
                     "description": e.description})
    for s in list_sources():
        rows.append({"name": s.syntax, "params": "-", "n_params": None, "input": s.input,
                     "classes": s.classes, "description": s.describe()})
    return rows
