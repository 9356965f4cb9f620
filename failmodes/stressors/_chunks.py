"""Running a stressor over cache-sized chunks of a CPU batch, on the torch CPU threads.

Why: most corruptions are chains of cheap elementwise steps, so on CPU they are limited
by memory traffic, not arithmetic. Run on a whole batch (2000 CIFAR images: 25 MB per
float32 temporary) every step streams through main memory; run on chunks of a few hundred images
the temporaries stay in the caches (measured 1.5-2x faster on one thread). The
chunks are independent, so with ``torch.get_num_threads() > 1`` they run on that many
Python threads, each running torch single-threaded: torch releases the GIL inside its
kernels, and so do PIL and OpenCV, which the per-image ops (JPEG, spatter) call; small
chunks gain nothing from intra-op threads, whose fork/join would only add spin-waits.

Chunking changes no number: a stressor's output for image i depends only on image i and
its dataset index (the registry contract, tested as batch invariance), so the chunks'
outputs are exactly the batch's. CUDA batches run whole.
"""
from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

# Pixels (H·W) per chunk: 256 CIFAR images (3 MB per float32 RGB temporary), one 512-px
# image. Of 2^16, 2^18 and whole batches, 2^18 gave the fastest 19 x 5 suite on one thread.
CHUNK_PIXELS = 1 << 18

_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()
_PREFIX = "failmodes-stressor"


def _one_thread() -> None:
    torch.set_num_threads(1)  # per thread (OpenMP's nthreads-var): the caller keeps its own


def _pool(workers: int) -> ThreadPoolExecutor:
    with _POOLS_LOCK:
        if workers not in _POOLS:
            _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix=_PREFIX,
                                                 initializer=_one_thread)
        return _POOLS[workers]


def run_chunked(fn: Callable[..., torch.Tensor], images: torch.Tensor,
                indices: torch.Tensor, scale: int = 1) -> torch.Tensor:
    """``fn(images[s:e], indices[s:e], out[s:e])`` over chunks of a CPU batch, each
    writing its rows of one output tensor (shape and dtype of ``images``), chunks of
    ``scale`` x CHUNK_PIXELS pixels.

    ``fn`` must be batch-invariant (row i of its output depends only on row i of its
    inputs) and fill its ``out`` rows; a CPU batch of one chunk is one call with the whole
    output (so the 8-bit ops still write their k/255 straight into it); other devices
    call ``fn(images, indices)`` once and return what it returns.
    """
    n, _, h, w = images.shape
    if images.device.type != "cpu":
        return fn(images, indices)
    threads = _threads()
    # At least one chunk per thread: small batches, too, run single-threaded per chunk.
    per = max(1, min(scale * CHUNK_PIXELS // max(1, h * w), -(-n // threads)))
    if n <= per:
        return fn(images, indices, empty_output(images))
    starts = range(0, n, per)
    workers = min(threads, len(starts))
    # Each chunk writes its rows while they are still in the cache (a torch.cat of the
    # parts afterwards read them all back from memory into a fresh tensor).
    out = empty_output(images)
    # Grad and inference mode are thread-local: the workers take the caller's, or a batch
    # made under torch.inference_mode() (an inference tensor) could not be written there.
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def one(s: int) -> None:
        with torch.inference_mode(inference), torch.set_grad_enabled(grad):
            fn(images[s:s + per], indices[s:s + per], out[s:s + per])

    if workers <= 1:
        for s in starts:
            one(s)
    else:
        with _opencv_single_threaded():
            list(_pool(workers).map(one, starts))
    return out


# Why: while the stressor threads already keep every core busy, OpenCV's own thread pool
# (the per-image Canny, blur, resize, LUT of spatter, pixelate and the 8-bit conversions)
# only adds hand-offs, and its parallel sections from two callers contend: 2000 32-px
# images on two threads, interleaved A/B in one process: JPEG 24.7 -> 35.3 k img/s,
# pixelate 42 -> 53 k, spatter 21.2 -> 22.7 k, glass 28.9 -> 29.6 k; 224 px within noise.
# cv2.setNumThreads is process-wide, so the first of concurrent callers sets 1 thread
# and the last restores the caller's setting.
_cv2_lock = threading.Lock()
_cv2_state = {"users": 0, "before": 0}


@contextlib.contextmanager
def _opencv_single_threaded():
    import cv2

    with _cv2_lock:
        if _cv2_state["users"] == 0:
            _cv2_state["before"] = cv2.getNumThreads()
            cv2.setNumThreads(1)
        _cv2_state["users"] += 1
    try:
        yield
    finally:
        with _cv2_lock:
            _cv2_state["users"] -= 1
            if _cv2_state["users"] == 0:
                cv2.setNumThreads(_cv2_state["before"])


def value_range(images: torch.Tensor) -> tuple[float, float]:
    """(min, max) of a batch (NaN propagates), one host sync. A CPU batch is reduced on
    the stressor threads, each single-threaded, not by torch's intra-op (OpenMP) threads:
    after a parallel region those spin, waiting for more work, for some milliseconds, and
    the stressor threads the op is about to start would share the cores with them
    (measured: a 20-image 224-px pixelate took twice as long after an OpenMP aminmax)."""
    n = images.shape[0]
    threads = _threads()
    if images.device.type != "cpu" or threads <= 1 or n < 2 or images.numel() < (1 << 16):
        return tuple(torch.stack(torch.aminmax(images)).tolist())  # type: ignore[return-value]
    per = -(-n // threads)

    def one(s: int) -> torch.Tensor:
        return torch.stack(torch.aminmax(images[s:s + per]))

    parts = torch.stack(list(_pool(min(threads, -(-n // per))).map(one, range(0, n, per))))
    # min/max over the parts, NaN propagating as aminmax does
    return parts[:, 0].amin().item(), parts[:, 1].amax().item()


def in_worker() -> bool:
    """Whether this code runs on a stressor thread (beside others: see run_chunked)."""
    return threading.current_thread().name.startswith(_PREFIX)


def _threads() -> int:
    # torch's thread count on the caller's thread; 1 on a stressor thread (no nesting)
    return 1 if in_worker() else torch.get_num_threads()


# ----------------------------------------------------------------------------- outputs
# Why recycle outputs: a batch's output is new memory the size of its input (600 KB per
# 224-px image in float32). Above glibc's largest mmap threshold (32 MiB: a 56-image
# 224-px batch) every call maps it afresh, and its first touch costs a page fault per
# 4 KiB page: 230 us per 224-px image on this project's 2-core EPYC against 25 us to
# write it once mapped -- more than the whole of imagecorruptions' pixelate (~300 us),
# whose uint8 images stay on the heap. So large CPU outputs come from a few buffers that
# are reused once nothing refers to them any more (like torch's CUDA caching allocator):
# the tensor handed out holds a numpy view of its buffer, so the buffer's reference count
# says whether any tensor, view or slice of it is still alive.
RECYCLE_MIN_BYTES = 4 << 20
RECYCLE_MAX_BUFFERS = 3
RECYCLE_MAX_BYTES = 1 << 30  # held by the pool at most (what glibc keeps mapped, _malloc.py)
_ALIGN = 64
_buffers: list[list] = []  # [numpy uint8 buffer, its reference count when idle]
_buffers_lock = threading.Lock()


def _refs(entry: list) -> int:
    return sys.getrefcount(entry[0])


def empty_output(images: torch.Tensor) -> torch.Tensor:
    """An uninitialised tensor like ``images`` (contiguous CPU batches from 4 MiB up to
    half of ``RECYCLE_MAX_BYTES``: from a recycled buffer; else ``torch.empty_like``).
    ``FAILMODES_RECYCLE_OUTPUTS=0`` turns the recycling off. A recycled tensor's storage
    is a numpy buffer's, so it cannot be ``resize_``-d beyond its size."""
    nbytes = images.numel() * images.element_size()
    if (not RECYCLE_MIN_BYTES <= nbytes <= RECYCLE_MAX_BYTES // 2
            or images.device.type != "cpu"
            or not images.is_contiguous() or os.environ.get("FAILMODES_RECYCLE_OUTPUTS") == "0"):
        return torch.empty_like(images)
    with _buffers_lock:
        entry = next((e for e in _buffers if nbytes + _ALIGN <= e[0].nbytes
                      <= 2 * nbytes + _ALIGN and _refs(e) == e[1]), None)
        if entry is None:
            idle = [e for e in _buffers if _refs(e) == e[1]]
            # Make room, idle buffers first, then the oldest (its tensors keep it alive).
            while _buffers and (len(_buffers) >= RECYCLE_MAX_BUFFERS or nbytes + sum(
                    e[0].nbytes for e in _buffers) > RECYCLE_MAX_BYTES):
                victim = idle.pop(0) if idle else _buffers[0]
                # by identity: list.remove's == would compare the entries' arrays
                _buffers[:] = [e for e in _buffers if e is not victim]
            entry = [np.empty(nbytes + _ALIGN, dtype=np.uint8), 0]
            entry[1] = _refs(entry)
            _buffers.append(entry)
        start = -entry[0].ctypes.data % _ALIGN
        view = entry[0][start:start + nbytes]
    return torch.from_numpy(view).view(images.dtype).view(images.shape)
