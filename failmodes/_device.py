"""Turning ``--device auto|cpu|cuda|cuda:N`` into a torch.device, the same way everywhere;
the rank's GPU under torchrun, host-to-device copies, fp32 kept exact where it must be."""
from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterator
from typing import Any

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


def rank_device(device: torch.device, local_rank: int = 0, world: int = 1) -> torch.device:
    """The device this process computes on, made CUDA's current device.

    Under torchrun (``world > 1``) any CUDA device becomes ``cuda:LOCAL_RANK``: one GPU per
    rank, as torchrun lays them out (NCCL refuses two ranks on one GPU). One process keeps
    ``cuda:N`` and takes the current device for a plain ``cuda``. ``torch.cuda.set_device``
    then makes every ``device="cuda"`` tensor, generator, NCCL call and cuDNN handle land
    on that GPU, not on GPU 0 of every rank. Other devices are returned as they are.
    """
    if device.type != "cuda":
        return device
    if world > 1:
        device = torch.device("cuda", local_rank)
    elif device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    torch.cuda.set_device(device)
    return device


def to_device(x: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """``x`` on ``device``; a CPU tensor bound for CUDA goes through pinned memory with
    ``non_blocking=True``, so the copy is a DMA that overlaps the GPU's work instead of a
    staged, synchronous one (``non_blocking`` from pageable memory blocks anyway)."""
    device = torch.device(device)
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


@contextlib.contextmanager
def exact_fp32(device: torch.device) -> Iterator[None]:
    """On CUDA: fp32 convolutions and matmuls in full fp32 (no TF32) inside, the previous
    flags restored after. cuDNN convolutions use TF32 by default on Ampere and later, whose
    10-bit mantissa moves a blurred pixel off the CPU's 8-bit level; the stressors must land
    on the same grid on every device. Nothing changes on the CPU.
    """
    if torch.device(device).type != "cuda":
        yield
        return
    # torch >= 2.9: the fp32_precision API, not the legacy allow_tf32 flag (mixing the two
    # makes reading ``cudnn.allow_tf32`` raise); older torch has only the flag.
    cudnn: Any = torch.backends.cudnn
    new_api = hasattr(getattr(cudnn, "conv", None), "fp32_precision")
    saved = (cudnn.conv.fp32_precision if new_api else cudnn.allow_tf32,
             torch.get_float32_matmul_precision())
    if new_api:
        cudnn.conv.fp32_precision = "ieee"
    else:
        cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        if new_api:
            cudnn.conv.fp32_precision = saved[0]
        else:
            cudnn.allow_tf32 = saved[0]
        torch.set_float32_matmul_precision(saved[1])


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
