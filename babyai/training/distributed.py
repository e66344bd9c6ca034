"""Data-parallel helpers: a process's place in the run and the few collectives the trainer needs.

Under `torchrun --nproc_per_node N`, every batch of `batch_size` episodes is split among the
ranks (rank r takes rows r, r+N, ... of the batch sorted by length, which balances the
work). The model is not wrapped in DistributedDataParallel: the recurrent agent calls
forward many times per backward, so instead parameters and buffers are broadcast from rank
0 at start and gradients are summed with one all_reduce per batch (every rank divides by
the global number of valid steps, so the sum is the global mean). Rank 0 validates, logs
and saves. BatchNorm running statistics are rank 0's.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistContext:
    """This process's place in a data-parallel run (world_size 1 = not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, indices: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """This rank's episodes of a global batch: every world_size-th, longest first."""
        ordered = indices[np.argsort(-lengths, kind="stable")]
        return ordered[self.rank::self.world_size]


def dist_context_from_env() -> DistContext:
    """Rank and world size as set by `torchrun` (a single process otherwise)."""
    return DistContext(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                       int(os.environ.get("LOCAL_RANK", 0)))


@contextmanager
def process_group(context: DistContext, device: torch.device) -> Iterator[None]:
    """Join the process group for the duration of a run (if distributed and not joined yet)."""
    created = False
    if context.enabled and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                rank=context.rank, world_size=context.world_size)
        created = True
    try:
        yield
        if created:
            dist.barrier()  # every rank done with its collectives before any tears down
    finally:
        if created:
            dist.destroy_process_group()


def broadcast_model(model: nn.Module) -> None:
    """Every rank starts from rank 0's parameters and buffers."""
    for tensor in list(model.parameters()) + list(model.buffers()):
        dist.broadcast(tensor.data, src=0)


def all_reduce_gradients(params: Sequence[torch.Tensor]) -> None:
    """Sum the gradients of `params` over the ranks, in one all_reduce."""
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        p.grad.copy_(flat[offset:offset + p.numel()].view_as(p))
        offset += p.numel()


def all_reduce_sum(values: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The sum over ranks of a host tensor (moved through `device` for NCCL)."""
    on_device = values.to(device)
    dist.all_reduce(on_device)
    return on_device.cpu()


def broadcast_flag(flag: bool, device: torch.device) -> bool:
    """Rank 0's value of `flag` on every rank."""
    tensor = torch.tensor([float(flag)], device=device)
    dist.broadcast(tensor, src=0)
    return bool(tensor.item())


def check_in_sync(model: nn.Module, world_size: int) -> None:
    """Ranks must end with identical weights; a silent divergence would be a bug."""
    total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum()
    values = [torch.zeros_like(total) for _ in range(world_size)]
    dist.all_gather(values, total)
    if any(not torch.equal(values[0], v) for v in values):
        raise RuntimeError(f"data-parallel ranks diverged: parameter sums {values}")
