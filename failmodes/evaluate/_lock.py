"""One writer per run folder: the lock lives with the run folder's layout in
``failmodes.store.lock``; evaluation, training and studies share it."""
from ..store.lock import RunBusy, RunLock

__all__ = ["RunBusy", "RunLock"]
