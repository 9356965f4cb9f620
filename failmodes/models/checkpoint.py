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


def weights_hash(model: nn.Module) -> str:
    """SHA-1 of the state dict's names and bytes: identifies trained weights in a store."""
    h = hashlib.sha1()
    # Networks whose weights torch cannot see (ONNX) carry the file's SHA-256 instead.
    digest = getattr(getattr(model, "net", model), "weights_digest", None)
    if digest:
        h.update(digest.encode())
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
    # WriteError (exit 3) on a full disk, whether torch reports it as OSError or RuntimeError
    return save_atomic(path, lambda f: torch.save(payload, f), fsync=True)
