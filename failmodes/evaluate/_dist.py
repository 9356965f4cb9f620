"""torchrun sharding: every rank computes its cells, rank 0 gathers the rows and writes.

Objects go through ``gather_object`` on a gloo group, so this works for CPU and GPU ranks
alike (rows are numpy arrays by then).
"""
from __future__ import annotations

import os


class Dist:
    """Rank, world size and the object collectives; a single process is rank 0 of 1."""

    def __init__(self):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self._owned = False
        self.group = None
        if self.world > 1:
            import torch.distributed as td
            if not td.is_initialized():
                td.init_process_group(backend="gloo")
                self._owned = True
            # A gloo group even when the default one is NCCL: object collectives on CPU.
            self.group = td.new_group(backend="gloo") if td.get_backend() != "gloo" else None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast(self, obj):
        """Rank 0's ``obj`` on every rank."""
        if self.world == 1:
            return obj
        import torch.distributed as td
        box = [obj]
        td.broadcast_object_list(box, src=0, group=self.group)
        return box[0]

    def gather(self, obj) -> list | None:
        """Every rank's ``obj`` as a list on rank 0 (rank order), None elsewhere."""
        if self.world == 1:
            return [obj]
        import torch.distributed as td
        out = [None] * self.world if self.is_main else None
        td.gather_object(obj, out, dst=0, group=self.group)
        return out

    def barrier(self) -> None:
        """Wait until every rank gets here. Called on the success path only: a rank that
        failed must not enter a collective its peers never reach."""
        if self.world > 1:
            import torch.distributed as td
            td.barrier(group=self.group)

    def close(self) -> None:
        if self._owned:
            import torch.distributed as td
            td.destroy_process_group()
            self._owned = False
