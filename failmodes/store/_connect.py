"""Opening the SQLite file: read-write in WAL mode, or read-only without writing a byte."""
from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ..errors import FailmodesError


class StoreError(RuntimeError, FailmodesError):
    """The store file is unusable (missing, corrupt, not a failmodes store, disk full)."""


def connect(path: Path, readonly: bool) -> sqlite3.Connection:
    """A connection to ``path``; read-only connections never create or change a file.

    A plain ``mode=ro`` open of a WAL database creates ``-wal`` and ``-shm`` beside it (and
    fails on read-only media). When no ``-wal`` exists no writer is live and every commit
    is in the main file, so the store is opened ``immutable=1``: no lock, no side file, no
    write. A ``-wal`` beside it means a live writer or an unfinished log: ``mode=ro`` then
    reads it (SQLite can do so on read-only media only when ``-shm`` exists too). An
    immutable reader does not see a writer that starts after it opened (reading a run
    while it is still being evaluated gives the cells committed when the reader opened).
    """
    if readonly:
        db = sqlite3.connect(readonly_uri(path), uri=True, timeout=60)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=60)
    return db


def store_writable(path: str | os.PathLike) -> bool:
    """Whether ``path`` (and its folder, for ``-wal``/``-shm``) can be written; False on
    read-only media, for root too (``access`` reports EROFS)."""
    path = Path(path)
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def readonly_uri(path: Path) -> str:
    """The URI that opens the existing store ``path`` read-only (see ``connect``)."""
    if not path.is_file():
        raise StoreError(f"no results store at {path}; run `failmodes evaluate` first")
    wal = path.with_name(path.name + "-wal")
    return path.resolve().as_uri() + ("?mode=ro" if wal.exists() else "?immutable=1")


def describe(path: Path, e: sqlite3.Error, doing: str) -> StoreError:
    """One line naming the file and what to do, for an error raised while ``doing``."""
    msg = str(e)
    if "full" in msg:
        hint = "; free disk space (finished cells are kept) and rerun"
    elif "readonly" in msg or "read-only" in msg:
        hint = "; the store is read-only: pass --out on writable storage for outputs"
    elif "locked" in msg:
        hint = "; another process holds it: wait for it to finish"
    elif doing == "open" and path.with_name(path.name + "-wal").exists():
        # SQLite reads an unfinished write-ahead log only with its -shm index, which it
        # must be able to create or find beside the store.
        hint = (f"; its write-ahead log {path.name}-wal can only be read where the folder "
                "is writable: open the run once there (or copy the folder to writable storage)")
    else:
        hint = ""
    return StoreError(f"cannot {doing} {path}: {msg}{hint}")
