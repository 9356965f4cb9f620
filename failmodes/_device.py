"""Turning ``--device auto|cpu|cuda|cuda:N`` into a torch.device, the same way everywhere."""
from __future__ import annotations

import os
import platform

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
    if dev.type not in ("cpu", "cuda"):  # meta computes nothing; mps/xpu are not supported
        raise DeviceError(f"device {device!r}: failmodes runs on auto, cpu, cuda or cuda:N")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"device {device}: CUDA is not available here; use cpu")
    return dev


def cpu_description() -> str:
    """The CPU a measurement ran on, for benchmark JSON: its model name, logical CPUs and
    the vector ISA torch dispatches to (AVX2 and AVX-512 machines differ ~2× in conv speed).

    >>> "cpus" in cpu_description() and torch.backends.cpu.get_cpu_capability() in cpu_description()
    True
    """
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
    except OSError:
        info = ""
    family = model = ""
    for line in info.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "model name" and value:
            name = value
        elif key == "cpu family":
            family = value
        elif key == "model":
            model = value
        if key == "processor" and value not in ("", "0"):
            break  # the first CPU's lines describe them all
    family_model = f" (family {family} model {model})" if family and model else ""
    return (f"{name}{family_model}, {os.cpu_count()} cpus, "
            f"{torch.backends.cpu.get_cpu_capability()}")
