"""Atomic writes: a temp file beside the target, then a rename, so a killed run or a full
disk never leaves a half-written checkpoint, figure, JSON, CSV or HTML file behind.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_text_atomic(d / "a.json", "{}").read_text()
'{}'
>>> save_atomic(d / "b.bin", lambda f: f.write(b"xy")).read_bytes()
b'xy'
>>> sorted(p.name for p in d.iterdir())          # no temp file left
['a.json', 'b.bin']
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from .errors import WriteError

# torch.save reports a short write on a full disk as a RuntimeError from its zip writer
# ("[enforce fail at inline_container.cc] unexpected pos ...", "PytorchStreamWriter failed").
_TORCH_WRITE_FAILURES = ("inline_container", "PytorchStreamWriter", "file write failed")


def save_atomic(path: str | os.PathLike, writer: Callable[[IO[bytes]], Any], *,
                fsync: bool = False) -> Path:
    """Call ``writer(f)`` on a binary temp file beside ``path``, then rename it to ``path``.

    ``writer`` is e.g. ``lambda f: torch.save(obj, f)`` or
    ``lambda f: fig.savefig(f, format="png")`` (give the format: the temp name has none).
    Parent folders are created. On any failure the temp file is removed; a failed write
    (``OSError``, torch's full-disk ``RuntimeError``) becomes one-line ``WriteError``.
    ``fsync`` flushes the data to the disk before the rename (checkpoints).
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            writer(f)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        raise WriteError(f"cannot write {path}: {e.strerror or e}") from e
    except RuntimeError as e:
        if not any(s in str(e) for s in _TORCH_WRITE_FAILURES):
            raise
        raise WriteError(f"cannot write {path}: the write failed (disk full?)") from e
    finally:
        tmp.unlink(missing_ok=True)
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return save_atomic(path, lambda f: f.write(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically, creating parent folders."""
    return save_atomic(path, lambda f: f.write(text.encode("utf-8")))


def save_figure_atomic(fig: Any, path: str | os.PathLike, **savefig_kwargs: Any) -> Path:
    """``fig.savefig(path, **savefig_kwargs)`` atomically; the format is ``path``'s suffix."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    return save_atomic(path, lambda f: fig.savefig(f, format=fmt, **savefig_kwargs))
