"""Where a training run executes: the device and, under ``torchrun``, the process group.

One process: ``_Runtime(device)``. Under ``torchrun`` (WORLD_SIZE > 1) each process trains
on its shard of every epoch's order (:func:`shard_indices`) and DDP averages the gradients.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

from .._device import rank_device, resolve_device


@dataclass
class _Runtime:
    device: torch.device
    rank: int = 0
    world: int = 1
    owns_group: bool = False

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1


def _runtime(cfg) -> _Runtime:
    """Device and process group: DDP when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    # plain cuda: torchrun's local rank picks the GPU, made the current device
    device = rank_device(resolve_device(cfg.device), local, world)
    use_cuda = device.type == "cuda"
    owns = False
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
        owns = True
    if world > 1:
        rank, world = torch.distributed.get_rank(), torch.distributed.get_world_size()
    return _Runtime(device, rank, world, owns)


def _barrier(rt: _Runtime) -> None:
    if rt.distributed:
        torch.distributed.barrier()


def _on_cuda(rt: _Runtime) -> bool:
    return rt.device.type == "cuda"


def shard_indices(order: torch.Tensor, rank: int, world: int) -> torch.Tensor:
    """Rank ``rank``'s share of ``order`` (DistributedSampler's scheme): the order padded
    by wrapping to a multiple of ``world``, then every ``world``-th element."""
    n = len(order)
    total = math.ceil(n / world) * world
    padded = torch.cat([order, order[: total - n]]) if total > n else order
    return padded[rank::world]


def _params_in_sync(model, rt) -> bool:
    """DDP keeps every rank's parameters equal; check it at the end (True on one process)."""
    if not rt.distributed:
        return True
    flat = torch.cat([p.detach().flatten().double() for p in model.parameters()])
    lo, hi = flat.clone(), flat.clone()
    torch.distributed.all_reduce(lo, op=torch.distributed.ReduceOp.MIN)
    torch.distributed.all_reduce(hi, op=torch.distributed.ReduceOp.MAX)
    return bool(torch.equal(lo, hi))
