"""One writer per run folder, for every step that writes one (``train``, ``evaluate``,
``run``): ``RUN/results.sqlite.lock`` held with ``flock`` while the step runs. The OS drops a
flock when its holder dies, SIGKILL included, so a killed run never blocks the next.

A study holds its folder for its whole run and lets the steps it runs inside (evaluating
into the same folder) pass: ``RunLock(run_dir, nestable=True)``. Any other second holder,
in another process or this one, is refused in one line.

>>> lock = RunLock("runs/r18", "evaluation")    # doctest: +SKIP
>>> lock.release()                              # doctest: +SKIP
"""
from __future__ import annotations

import os
from pathlib import Path

from ._connect import StoreError
from .layout import RunFolder

# Run folders a study of this process holds, which the steps it runs may enter.
_NESTABLE: dict[Path, int] = {}


class RunBusy(StoreError):
    """Another process (or step) is writing to the run folder; one line, exit 2."""


class RunLock:
    """Hold ``run_dir``'s lock until ``release()``. ``what``: the step, named in the
    refusal another writer gets ("another evaluation (pid 123) is writing to ...")."""

    def __init__(self, run_dir: str | os.PathLike, what: str = "evaluation", *,
                 nestable: bool = False):
        self.path = RunFolder(Path(run_dir)).lock.resolve()
        self.file = None
        self.nestable = nestable
        if self.path in _NESTABLE:  # inside the study that holds this folder
            _NESTABLE[self.path] += 1
            self.nested = True
            return
        self.nested = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.file = open(self.path, "a+")
        except OSError as e:
            raise RunBusy(f"cannot create the lock file {self.path}: {e.strerror or e}") from None
        try:
            import fcntl
        except ImportError:  # no advisory locks on this platform
            return
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            kind, _, pid = self.file.read().strip().rpartition("pid ")
            self.file.close()
            holder = f"{kind.strip() or 'evaluation'} (pid {pid})" if pid else "process"
            raise RunBusy(f"another {holder} is writing to {Path(run_dir)}; wait for it to "
                          "finish or pass another --out") from None
        try:
            os.ftruncate(self.file.fileno(), 0)
            os.write(self.file.fileno(), f"{what} pid {os.getpid()}".encode())
        except OSError:  # a full disk: the lock is held all the same, only unlabelled
            pass
        if nestable:
            _NESTABLE[self.path] = 1

    def release(self) -> None:
        if self.path in _NESTABLE and (self.nested or self.nestable):
            _NESTABLE[self.path] -= 1
            if _NESTABLE[self.path] > 0:
                return
            del _NESTABLE[self.path]
        if self.file is not None:
            self.file.close()
            self.file = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc) -> None:
        self.release()
