"""Weights files: what kind a file is, reading a state dict safely, and fitting it to a network.

Readers: ``.safetensors`` (safetensors), anything ``torch.save`` wrote (``.pt``, ``.pth``,
``.bin``, ``.ckpt``) through ``torch.load(weights_only=True)``, which refuses pickled code:
a whole pickled module (``torch.save(model)``) is refused with one line saying how to
save a state dict, and nothing in it runs. Fitting: a state dict nested under
``state_dict``/``model``/``net``/``ema`` and keys prefixed ``module.`` (DataParallel),
``model.`` or ``_orig_mod.`` (torch.compile) are unwrapped when that makes the keys fit,
and the one line returned says what was done.

>>> sd = read_state_dict("resnet18.pth")                # doctest: +SKIP
>>> note = fit_state_dict(net, sd, "resnet18.pth")       # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from .errors import ModelError

NEST_KEYS = ("state_dict", "model", "net", "ema", "model_ema", "state_dict_ema", "module")
PREFIXES = ("module.", "model.", "_orig_mod.", "net.")
# Buffers older checkpoints lack; their absence does not change a forward pass in eval mode.
OPTIONAL_SUFFIXES = ("num_batches_tracked",)
PICKLE_ADVICE = ("save the weights instead: torch.save(model.state_dict(), 'weights.pt') or "
                 "safetensors.torch.save_file(model.state_dict(), 'weights.safetensors'), "
                 "then pass --model ARCH --weights FILE")


def file_kind(path: str | os.PathLike) -> str:
    """``safetensors`` | ``onnx`` | ``exported`` (torch.export .pt2) | ``torchscript`` |
    ``torch`` (a torch.save file: state dict, checkpoint or pickled module). Read from the
    file's contents where the suffix is ambiguous (TorchScript is often saved as .pt)."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"weights file {p} not found")
    if p.suffix == ".safetensors":
        return "safetensors"
    if p.suffix == ".onnx":
        return "onnx"
    if zipfile.is_zipfile(p):
        with zipfile.ZipFile(p) as z:
            names = z.namelist()
        if any(n.endswith("/archive_format") or n == "archive_format" for n in names):
            return "exported"
        if any("/code/" in n or n.startswith("code/") for n in names):
            return "torchscript"
    return "torch"


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_state_dict(path: str | os.PathLike) -> dict:
    """The raw object of a weights file (safetensors or weights-only torch), on the CPU."""
    p = Path(path)
    kind = file_kind(p)
    if kind == "safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file
        try:
            return load_file(str(p), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise ModelError(f"{p} is not a readable safetensors file ({e})") from None
    if kind in ("exported", "torchscript", "onnx"):
        raise ModelError(f"{p} is {'an ' if kind[0] in 'aeio' else 'a '}{kind} file, which "
                         "carries its own network: pass it as --model FILE, without --weights")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # pickled code, a truncated file, not a torch file at all
        msg = str(e)
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", msg)
        if found:
            raise ModelError(f"{p} holds a pickled object ({found.group(1)}), which failmodes "
                             f"never unpickles because unpickling can run code; "
                             f"{PICKLE_ADVICE}") from None
        detail = re.search(r"WeightsUnpickler error: (.+)", msg)
        first = (detail.group(1) if detail else msg.splitlines()[0] if msg else "")[:100]
        raise ModelError(f"{p} is not a readable model file ({type(e).__name__}: {first}); "
                         "expected a failmodes checkpoint, a state dict (.pt/.pth/.bin, "
                         ".safetensors), .pt2, TorchScript or .onnx") from None


def is_state_dict(obj) -> bool:
    return (isinstance(obj, Mapping) and len(obj) > 0
            and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, torch.Tensor) for v in obj.values()))


def _candidates(obj, where: str = "") -> list[tuple[str, dict]]:
    """Every state dict reachable through the nesting keys: (path, state dict)."""
    if is_state_dict(obj):
        return [(where, dict(obj))]
    out = []
    if isinstance(obj, Mapping):
        for k in NEST_KEYS:
            if k in obj:
                out += _candidates(obj[k], f"{where}.{k}" if where else k)
    return out


def _strip(sd: dict, prefixes: tuple[str, ...]) -> dict:
    out = {}
    for k, v in sd.items():
        for p in prefixes:
            if k.startswith(p):
                k = k[len(p):]
        out[k] = v
    return out


def _prefix_sets() -> list[tuple[str, ...]]:
    sets: list[tuple[str, ...]] = [()]
    sets += [(p,) for p in PREFIXES]
    sets += [(a, b) for a in PREFIXES for b in PREFIXES if a != b]
    return sets


def fit_state_dict(net: nn.Module, obj, path: str | os.PathLike) -> str:
    """Load ``obj`` (what :func:`read_state_dict` returned) into ``net`` strictly, after
    unwrapping nesting and prefixes when that makes the keys fit. Returns one line saying
    what was done; raises ModelError naming a few missing/unexpected keys otherwise."""
    cands = _candidates(obj)
    if not cands:
        keys = list(obj)[:6] if isinstance(obj, Mapping) else []
        raise ModelError(f"{path} holds no state dict (a mapping of names to tensors); top-level "
                         f"keys: {', '.join(map(str, keys)) or type(obj).__name__}")
    want = set(net.state_dict())
    best = None  # (score, nest, prefixes, state dict)
    for nest, sd in cands:
        for prefixes in _prefix_sets():
            fitted = _strip(sd, prefixes)
            score = len(want & set(fitted)) - len(set(fitted) - want)
            if best is None or score > best[0]:
                best = (score, nest, prefixes, fitted)
    assert best is not None  # cands is not empty
    _, nest, prefixes, sd = best
    missing = sorted(k for k in want - set(sd) if not k.endswith(OPTIONAL_SUFFIXES))
    unexpected = sorted(set(sd) - want)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing ({_few(missing)})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected ({_few(unexpected)})")
        raise ModelError(f"{path}: weights do not fit {type(net).__name__}: "
                         f"{'; '.join(parts)} keys; check --model ARCH and --arch-arg")
    shapes = [k for k, v in sd.items() if tuple(v.shape) != tuple(net.state_dict()[k].shape)]
    if shapes:
        k = shapes[0]
        raise ModelError(f"{path}: {len(shapes)} tensors have other shapes than "
                         f"{type(net).__name__}'s, e.g. {k} {tuple(sd[k].shape)} vs "
                         f"{tuple(net.state_dict()[k].shape)}; check --num-classes and --arch-arg")
    net.load_state_dict(sd, strict=False)
    done = [f"took the state dict under '{nest}'"] if nest else []
    if prefixes:
        done.append("stripped the key prefix " + " then ".join(f"'{p}'" for p in prefixes))
    n = len(sd)
    return f"{Path(path).name}: loaded {n} tensors" + (f" ({'; '.join(done)})" if done else "")


def head_classes(net: nn.Module, obj) -> int | None:
    """The number of classes the weights' head was trained for: the first dimension of
    the head's weight (the module ``head_size`` finds), looked up in ``obj``."""
    get = getattr(net, "get_classifier", None)
    name = None
    if callable(get):
        head = get()
        name = next((n for n, m in net.named_modules() if m is head), None)
    if name is None:
        for n, m in net.named_modules():
            if isinstance(m, nn.Linear):
                name = n
    if not name:
        return None
    for _, sd in _candidates(obj):
        for prefixes in _prefix_sets():
            w = _strip(sd, prefixes).get(f"{name}.weight")
            if w is not None and w.ndim >= 2:
                return int(w.shape[0])
    return None


def _few(keys: list[str], n: int = 3) -> str:
    return ", ".join(keys[:n]) + (", ..." if len(keys) > n else "")
