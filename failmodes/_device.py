"""Turning ``--device auto|cpu|cuda|cuda:N`` into a torch.device, the same way everywhere."""
from __future__ import annotations

import torch

from .errors import FailmodesError


class DeviceError(ValueError, FailmodesError):
    """An unknown device name, or CUDA asked for where there is none."""


def resolve_device(device: str | torch.device) -> torch.device:
    """``auto`` -> cuda when available, else cpu; anything else as torch names it (checked)."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise DeviceError(f"device {device!r} is not a torch device "
                          "(auto, cpu, cuda, cuda:1)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device}: CUDA is not available here; use cpu")
    return dev
