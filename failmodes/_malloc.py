"""Keeping large CPU temporaries' pages mapped between uses (glibc only).

Why: PyTorch's CPU allocator hands every tensor straight back to ``free``. glibc serves
blocks over its mmap threshold (128 KiB at start, raised on the fly up to 32 MiB) with a
fresh ``mmap`` and trims freed memory above 128 KiB back to the kernel, so each of a
corruption's several-MB temporaries (a 256-image CIFAR chunk, one 224-px image in float32)
is a new mapping whose first touch costs a page fault per 4 KiB page. Measured on this
project's 2-core EPYC (one thread, A/B runs of the same script with and without, on a
machine with a training job beside them): 224-px pixelate 1.2-1.7x, JPEG 1.2-1.5x and
brightness 1.1-2x as fast with the setting; at 32 px (256-image chunks, 3 MB temporaries)
the 19 x 5 suite showed no difference (``bench/stressors.py``: 26.7 k img/s without,
21.8-26.1 k with, within run-to-run spread; ``--no-tune-malloc`` times without).

:func:`tune_cpu_allocator` sets the same three ``mallopt`` parameters as the environment
variables ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_TOP_PAD_``:
blocks up to 32 MiB come from the heap, up to 1 GiB of freed heap stays mapped for reuse,
and the heap grows 256 MiB at a time (the values of the environment-variable run measured).
The price is resident memory that a long process does not hand back below 1 GiB.
The ``failmodes`` command calls it once at start; a program importing failmodes
decides for itself (it is process-wide). It does nothing where libc is not glibc.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest allowed value on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 1 << 30
TOP_PAD = 256 << 20
_ENV = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

_applied: dict | None = None


def tune_cpu_allocator() -> dict:
    """Apply the setting once per process; what was set, or why not (``{"applied": False,
    "why": ...}``). A user's own ``MALLOC_*_`` environment variables win."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = _apply()
    return _applied


def _apply() -> dict:
    if not sys.platform.startswith("linux"):
        return {"applied": False, "why": f"not Linux ({sys.platform})"}
    if any(v in os.environ for v in _ENV):
        return {"applied": False, "why": "MALLOC_*_ environment variables set by the user"}
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
        gnu_get_libc_version = libc.gnu_get_libc_version  # absent from musl
    except (OSError, AttributeError):
        return {"applied": False, "why": "libc is not glibc"}
    gnu_get_libc_version.restype = ctypes.c_char_p
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    values = {"M_MMAP_THRESHOLD": (_M_MMAP_THRESHOLD, MMAP_THRESHOLD),
              "M_TRIM_THRESHOLD": (_M_TRIM_THRESHOLD, TRIM_THRESHOLD),
              "M_TOP_PAD": (_M_TOP_PAD, TOP_PAD)}
    ok = {name: bool(mallopt(param, value)) for name, (param, value) in values.items()}
    return {"applied": all(ok.values()), "glibc": gnu_get_libc_version().decode(),
            **{name: value for name, (_, value) in values.items()}, "accepted": ok}
