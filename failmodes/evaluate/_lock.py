"""One writer per run folder: two evaluations into one --out would compute the same cells
twice. The OS drops a flock when its holder dies, SIGKILL included."""
from __future__ import annotations

import os
from pathlib import Path

from ..store import RunFolder
from .config import EvalError


class RunLock:
    """Hold ``RUN/results.sqlite.lock`` until ``release()``; a second holder is refused."""

    def __init__(self, run_dir: Path):
        path = RunFolder(run_dir).lock
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(path, "a+")
        except OSError as e:
            raise EvalError(f"cannot create the lock file {path}: {e.strerror or e}") from None
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform
            return
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise EvalError(f"another evaluation ({holder}) is writing to {run_dir}; wait for "
                            "it to finish or pass another --out") from None
        try:
            os.ftruncate(self.file.fileno(), 0)
            os.write(self.file.fileno(), f"pid {os.getpid()}".encode())
        except OSError:  # a full disk: the lock is held all the same, only unlabelled
            pass

    def release(self) -> None:
        self.file.close()
