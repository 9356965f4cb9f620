"""Checkpoint files: what ``failmodes train`` writes; ``load_checkpoint`` (the checkpoint
model source, ``sources/checkpoint.py``) reads them back.

A checkpoint is a dict saved with ``torch.save`` and read with ``weights_only=True`` (never
an arbitrary pickle): format tag, architecture and its kwargs, class names, normalisation,
the state dict, the training config and history, and library versions.

>>> path = save_checkpoint(create_model("small_cnn"), "runs/cnn/model.pt")  # doctest: +SKIP
>>> model, payload = load_checkpoint(path)                                  # doctest: +SKIP
"""
from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import torch
from torch import nn

from .._atomic import save_atomic
from .wrapper import Classifier

CKPT_FORMAT = "failmodes-checkpoint-v1"


def library_versions() -> dict:
    import numpy
    import torchvision

    from .. import __version__
    return {"failmodes": __version__, "torch": str(torch.__version__),
            "torchvision": str(torchvision.__version__), "numpy": str(numpy.__version__),
            "python": platform.python_version()}


def _hashed(v: torch.Tensor) -> bool:
    # The weights: parameters and float buffers (BatchNorm statistics). Integer and bool
    # tensors are counters and random-generator states (num_batches_tracked, a Keras
    # SeedGenerator's state) that change between loads without changing a prediction.
    return v.is_floating_point() or v.is_complex()


def _bytes(v: torch.Tensor) -> bytes:
    return (v.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
            if v.numel() else b"")


def weights_hash(model: nn.Module) -> str:
    """SHA-1 of the names and bytes of the weights (parameters and float buffers; not
    integer counters or RNG states): identifies trained weights in a store."""
    h = hashlib.sha1()
    # Networks whose weights torch cannot see (ONNX) carry the file's SHA-256 instead.
    digest = getattr(getattr(model, "net", model), "weights_digest", None)
    if digest:
        h.update(digest.encode())
    for k, v in sorted(model.state_dict().items()):
        if _hashed(v):
            h.update(k.encode())
            h.update(_bytes(v))
    return h.hexdigest()


def legacy_weights_hash(model: nn.Module) -> str:
    """The hash stores written before issue 35 hold (every state-dict tensor, integer
    buffers included), so their models are still recognised."""
    h = hashlib.sha1()
    digest = getattr(getattr(model, "net", model), "weights_digest", None)
    if digest:
        h.update(digest.encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(_bytes(v))
    return h.hexdigest()


def tensor_hashes(model: nn.Module) -> dict[str, str]:
    """``{state-dict key: short SHA-1}`` of the hashed tensors: kept with a stored model so a
    later hash mismatch can name the tensors that differ."""
    return {k: hashlib.sha1(_bytes(v)).hexdigest()[:16]
            for k, v in sorted(model.state_dict().items()) if _hashed(v)}


def differing_keys(stored: dict[str, str], now: dict[str, str], n: int = 3) -> str:
    """``'fc.weight, fc.bias (+2 more)'``: the keys whose tensors differ between two
    ``tensor_hashes`` (added or missing keys included)."""
    if not stored:
        return "not recorded: the store predates per-tensor hashes"
    keys = sorted(k for k in set(stored) | set(now) if stored.get(k) != now.get(k))
    if not keys:
        return "no tensor differs (the file digest does)"
    return ", ".join(keys[:n]) + (f" (+{len(keys) - n} more)" if len(keys) > n else "")


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
    # WriteError (exit 3) on a full disk, whether torch reports it as OSError or RuntimeError
    return save_atomic(path, lambda f: torch.save(payload, f), fsync=True)
