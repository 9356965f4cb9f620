"""``FILE.pt``: a failmodes checkpoint (``failmodes train`` writes it; see
``models/checkpoint.py``), which carries its architecture, classes and normalisation. A
torch or safetensors file that is not one holds weights only and needs ``--model ARCH``."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..checkpoint import CKPT_FORMAT
from ..errors import ModelError
from ..weights import file_kind, read_state_dict, sha256_file
from ..wrapper import Classifier
from ._arch import create
from ._base import Source, register_source


@register_source
class CheckpointSource(Source):
    syntax = "FILE.pt"
    kind = "checkpoint"
    order = 200
    input = "file"
    classes = "file"

    def matches(self, src) -> bool:
        return (src.arch is None and src.weights is not None and
                file_kind(Path(src.weights).expanduser().resolve()) in ("torch", "safetensors"))

    def describe(self) -> str:
        return ("a failmodes checkpoint (`failmodes train`): architecture, classes and "
                "normalisation inside")

    def load(self, src, *, data_classes=None, data_size=None, seed=0, say) -> Classifier:
        path = Path(src.weights).expanduser().resolve()
        obj = read_state_dict(path)
        if not (isinstance(obj, dict) and obj.get("format") == CKPT_FORMAT):
            raise ModelError(f"{path} holds weights only; say which network they fit: "
                             "--model ARCH --weights FILE (ARCH: a registry name, tv:NAME, "
                             "timm:NAME or module:callable)")
        model, payload = load_checkpoint(path)
        model.source.update(weights=str(path), weights_sha256=sha256_file(path),
                            format="failmodes checkpoint", classes=model.class_names,
                            train_data=(payload.get("extra") or {}).get("data"),
                            mean=model.mean.flatten().tolist(), std=model.std.flatten().tolist(),
                            normalization_from="the checkpoint")
        return model


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> tuple[Classifier, dict]:
    """Load a failmodes checkpoint safely (``weights_only=True``); returns (model, payload).

    >>> model, payload = load_checkpoint("runs/cnn/model.pt")   # doctest: +SKIP
    """
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
    model = create(payload["arch"], class_names=payload["class_names"],
                   mean=tuple(payload["mean"]), std=tuple(payload["std"]),
                   **payload["arch_kwargs"])
    try:
        model.net.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        raise ModelError(f"{path}: weights do not fit {payload['arch']} "
                         f"({str(e).splitlines()[0][:120]})") from None
    model.eval()
    return model, payload
