"""The decode cache: a file list decoded once, in threads, straight into a memory-mapped
``images.npy``, so a 224 px set never has to fit in RAM twice (or at all).

A cache folder holds ``images.npy`` (uint8 N×H×W×3), ``labels.npy`` and ``meta.json``,
written last, so its presence marks a whole cache. A cache that fails to load (truncated,
garbled, from an older layout) is removed and rebuilt. Space is reserved with
``posix_fallocate`` before mapping, so a full disk is an ``OSError`` up front, never a
SIGBUS halfway; the decode then runs in RAM and no temp file is left behind.

Processes share the cache: :func:`cache_lock` makes the first one build a cache while the
others wait and then read it, and temp files carry the writer's pid, so a second writer
(an older failmodes, a lock-less file system) never truncates a file another process has
mapped (a SIGBUS there).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import numpy as np

from .dataset import DataError
from .decode import ImageDecodeError

log = logging.getLogger("failmodes.data")
T = TypeVar("T")  # what decode_files decodes: a file path, a row number
CACHE_VERSION = 3
IMAGES, LABELS, META = "images.npy", "labels.npy", "meta.json"
# Decoding one image holds about this many copies of it at once (file pixels, RGB
# conversion, resize output) per thread.
DECODE_COPIES = 4


def cache_dir() -> Path:
    """Where decoded arrays live: $FAILMODES_CACHE or ~/.cache/failmodes."""
    return Path(os.environ.get("FAILMODES_CACHE", Path.home() / ".cache" / "failmodes"))


def decode_threads() -> int:
    """Decoder threads: PIL releases the GIL while decoding and resizing."""
    return max(1, min(8, (os.cpu_count() or 2) * 2))


@contextlib.contextmanager
def cache_lock(cdir: Path | None) -> Iterator[None]:
    """Hold an exclusive lock on cache folder ``cdir`` (None: no cache, no lock): the
    lock file sits beside the folder, so removing a broken cache keeps it. Where locking is
    not supported the cache is used without one."""
    if cdir is None:
        yield
        return
    try:
        import fcntl
        cdir.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(cdir.parent / f"{cdir.name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except (ImportError, OSError) as e:
        log.debug("decode cache %s unlocked (%s)", cdir, e)
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as e:
            log.debug("decode cache %s unlocked (%s)", cdir, e)
        yield
    finally:
        os.close(fd)  # releases the lock


def _tmp(cdir: Path, name: str) -> Path:
    """This process's temp file for ``name`` in ``cdir``."""
    return cdir / f"{name}.{os.getpid()}.tmp"


def available_memory() -> int:
    """Bytes of RAM the kernel says it can hand out now (MemAvailable), else total RAM."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62


def _gib(n: float) -> str:
    return f"{n / 2 ** 30:.1f} GiB"


def read_cache(cdir: Path) -> tuple[np.ndarray, np.ndarray, dict] | None:
    """(images memmap, labels, meta) of a whole cache, or None; a broken one is removed."""
    if not (cdir / META).exists():
        return None
    try:
        meta = json.loads((cdir / META).read_text())
        images = np.load(cdir / IMAGES, mmap_mode="r")
        labels = np.load(cdir / LABELS)
        ok = (meta.get("version") == CACHE_VERSION and images.dtype == np.uint8
              and images.ndim == 4 and len(images) == len(labels) == meta["n"])
        if not ok:
            raise ValueError("cache does not match its meta.json")
    except (OSError, ValueError, KeyError, TypeError, EOFError) as e:
        log.warning("decode cache %s is unreadable (%s); rebuilding it", cdir, e)
        shutil.rmtree(cdir, ignore_errors=True)
        return None
    return images, labels, meta


def decode_files(paths: Sequence[T], decode: Callable[[T], np.ndarray],
                 shape: tuple[int, int] | None, cdir: Path | None, what: str
                 ) -> tuple[np.ndarray, list[int], list[str]]:
    """Decode ``paths`` into one uint8 N×H×W×3 array: (images, kept rows, skipped messages).

    shape: the (H, W) every decoded image has (known when resizing), or None to take the
    first readable file's and require it of all. cdir: a cache folder to decode into
    (a memory map, moved into place by ``write_cache``), or None for RAM. The memory need
    is estimated before anything is allocated; refused with one line when it cannot fit.
    """
    failures: dict[int, str] = {}
    first: tuple[int, np.ndarray] | None = None
    if shape is None:  # learn the shape from the first readable file
        for i, p in enumerate(paths):
            try:
                first = (i, decode(p))
                break
            except ImageDecodeError as e:
                failures[i] = str(e)
        if first is None:
            return np.zeros((0, 1, 1, 3), np.uint8), [], [failures[i] for i in sorted(failures)]
        shape = first[1].shape[:2]
    h, w = shape
    per_image = h * w * 3
    total = per_image * len(paths)
    ram = available_memory()
    if per_image * DECODE_COPIES > ram:
        raise DataError(f"{what}: one {w}×{h} image needs {_gib(per_image * DECODE_COPIES)} "
                        f"to decode but {_gib(ram)} of memory is free; pass a smaller "
                        "--image-size")
    threads = max(1, min(decode_threads(), ram // (per_image * DECODE_COPIES)))
    out, tmp = _allocate(cdir, (len(paths), h, w, 3), total)
    if out is None:
        if total > 0.8 * ram:
            raise DataError(f"{what}: {len(paths)} images at {w}×{h} need {_gib(total)} but "
                            f"{_gib(ram)} of memory is free (and the decode cache cannot hold "
                            "them); pass a smaller --image-size or fewer images")
        out = np.empty((len(paths), h, w, 3), np.uint8)
    try:
        start = 0
        if first is not None:
            out[first[0]] = first[1]
            start = first[0] + 1
        odd = _fill(out, paths, decode, start, (h, w), threads, failures)
        if odd:
            ex = ", ".join(f"{s[1]}×{s[0]}" for s in sorted({(h, w)} | odd)[:3])
            raise DataError(f"{what} holds images of mixed sizes ({ex}, ...); "
                            "pass --image-size N to resize them all to N×N")
        kept = [i for i in range(len(paths)) if i not in failures]
        if failures:
            out = _compact(out, kept, tmp)
    except BaseException:
        _discard(out, tmp)
        raise
    return out, kept, [failures[i] for i in sorted(failures)]


def _fill(out: np.ndarray, paths, decode, start: int, shape: tuple, threads: int,
          failures: dict[int, str]) -> set:
    """Decode rows ``start..`` into ``out`` in threads; failures land in ``failures``.
    Returns the off-shape sizes met (a folder of mixed sizes)."""
    from PIL import Image
    odd: set = set()

    def one(i: int) -> None:
        try:
            a = decode(paths[i])
        except ImageDecodeError as e:
            failures[i] = str(e)
            return
        if a.shape[:2] != shape:
            odd.add(a.shape[:2])
        else:
            out[i] = a

    # PIL warns (DecompressionBombWarning) between 1× and 2× its pixel limit; the decoder
    # refuses and reports such files already.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with ThreadPoolExecutor(max_workers=threads) as pool:
            list(pool.map(one, range(start, len(paths)), chunksize=64))
    return odd


def _allocate(cdir: Path | None, shape: tuple, nbytes: int):
    """A writable memmap ``images.npy.tmp`` in ``cdir`` with its space reserved, or
    (None, None) when there is no cache folder or no room (nothing left behind)."""
    if cdir is None:
        return None, None
    tmp = _tmp(cdir, IMAGES)
    try:
        cdir.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(cdir).free
        if nbytes > free:
            raise OSError(28, f"{_gib(nbytes)} needed, {_gib(free)} free")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
        fd = os.open(tmp, os.O_RDWR)
        try:
            os.posix_fallocate(fd, 0, os.path.getsize(tmp))
        finally:
            os.close(fd)
        return out, tmp
    except OSError as e:
        _discard(locals().get("out"), tmp)
        log.warning("decode cache in %s not used (%s); decoding in memory", cdir, e)
        return None, None


def _compact(out: np.ndarray, kept: list[int], tmp: Path | None) -> np.ndarray:
    """Only the ``kept`` rows (unreadable files dropped), copied in chunks."""
    if tmp is None:
        return out[kept]
    dst_path = _tmp(tmp.parent, IMAGES + "2")
    dst = np.lib.format.open_memmap(dst_path, mode="w+", dtype=np.uint8,
                                    shape=(len(kept),) + out.shape[1:])
    for k in range(0, len(kept), 1024):
        dst[k:k + 1024] = out[kept[k:k + 1024]]
    tmp.unlink()
    return dst


def _discard(out, tmp: Path | None) -> None:
    if tmp is not None:
        tmp.unlink(missing_ok=True)
        _tmp(tmp.parent, IMAGES + "2").unlink(missing_ok=True)


def write_cache(cdir: Path, images: np.ndarray, labels: np.ndarray, meta: dict) -> np.ndarray:
    """Finish a cache: images (a memmap from ``decode_files`` is moved, an array saved),
    labels, then meta.json. Returns the images to use (a read-only memmap of the cache
    when it was written). On OSError nothing half-written is left; ``images`` is returned."""
    tmps = [_tmp(cdir, IMAGES), _tmp(cdir, LABELS), _tmp(cdir, META)]
    try:
        cdir.mkdir(parents=True, exist_ok=True)
        if isinstance(images, np.memmap) and images.filename and \
                Path(images.filename).parent == cdir:
            images.flush()  # decoded in place: move the mapped file, never rewrite it
            if Path(images.filename) != tmps[0]:
                os.replace(images.filename, tmps[0])
        else:
            _save_npy(tmps[0], images)
        _save_npy(tmps[1], labels)
        tmps[2].write_text(json.dumps({**meta, "version": CACHE_VERSION, "n": len(labels)}))
        os.replace(tmps[0], cdir / IMAGES)
        os.replace(tmps[1], cdir / LABELS)
        os.replace(tmps[2], cdir / META)  # last: its presence marks a whole cache
    except OSError as e:
        log.warning("could not write the decode cache in %s (%s); data kept in memory", cdir, e)
        if isinstance(images, np.memmap):
            images = np.array(images)
        for t in tmps + [_tmp(cdir, IMAGES + "2")]:
            t.unlink(missing_ok=True)
        return images
    return np.load(cdir / IMAGES, mmap_mode="r")


def _save_npy(path: Path, arr: np.ndarray) -> None:
    try:
        with open(path, "wb") as f:
            np.save(f, arr)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
