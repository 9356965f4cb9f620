"""The batch an evaluation can afford: a batch is capped by the image size and the memory
free on its device, and running out of memory anyway ends in one line naming the fix.

Results do not depend on the batch (a stressor's randomness follows dataset indices), so a
smaller batch than asked changes only the speed.
"""
from __future__ import annotations

import os

import torch

from ..errors import EXIT_ENVIRONMENT, FailmodesError

# Bytes a forward pass holds per input byte of a float32 image, for the CNNs and ViTs we
# see (a ResNet-50 at 224 px peaks near 60x its input in inference); a generous guess.
ACTIVATION_FACTOR = 64
# Share of the free memory one batch may take (the model, the clean-batch cache, the
# stressor's temporaries and the rest of the process need the remainder).
MEMORY_SHARE = 0.25


class OutOfMemory(FailmodesError):
    """The device ran out of memory; exit 3 (the machine refused), with the fix."""

    exit_code = EXIT_ENVIRONMENT


def is_out_of_memory(e: BaseException) -> bool:
    """True for torch's CUDA OOM and the CPU allocator's failure."""
    if isinstance(e, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    msg = str(e)
    return isinstance(e, RuntimeError) and ("out of memory" in msg
                                            or "can't allocate memory" in msg)


def free_bytes(device: torch.device) -> int | None:
    """Memory free on ``device`` now (CUDA: the driver's count; CPU: MemAvailable)."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
        if device.type == "cpu" and os.path.exists("/proc/meminfo"):
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
    except (RuntimeError, OSError, ValueError):
        return None
    return None


def affordable_batch(asked: int, side: tuple[int, int], free: int | None) -> int:
    """``asked`` capped so that one batch of float32 ``side`` images and the forward pass
    fit in ``MEMORY_SHARE`` of ``free`` bytes (at least 1; ``asked`` when free is unknown).

    >>> affordable_batch(256, (32, 32), 8 * 2 ** 30)
    256
    >>> affordable_batch(256, (224, 224), 8 * 2 ** 30)
    55
    """
    if free is None:
        return asked
    per_image = 3 * side[0] * side[1] * 4 * ACTIVATION_FACTOR
    return max(1, min(asked, int(free * MEMORY_SHARE // per_image)))


def out_of_memory(e: BaseException, batch: int, side: tuple[int, int],
                  device: torch.device) -> OutOfMemory:
    """The one line for an allocation that failed at ``batch`` images of ``side`` px."""
    smaller = max(1, batch // 4)
    return OutOfMemory(f"out of memory on {device} at a batch of {batch} images of "
                       f"{side[0]}×{side[1]} px ({type(e).__name__}); pass --batch-size "
                       f"{smaller} (finished cells are kept)")
