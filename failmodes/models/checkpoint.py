"""Checkpoint files: what ``failmodes train`` writes and ``evaluate`` reads back.

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
from .registry import create_model
from .wrapper import Classifier, ModelError

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
