"""Data-parallel training under `torchrun`: process group, rank, and rank-0-only writing.

`seg_perception train` and `seg_perception adapt` run unchanged under
`torchrun --nproc_per_node N`: torchrun sets RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous
address; `setup()` then joins the process group (gloo on the CPU, nccl on CUDA) once per process.
Without those variables (a plain run) it returns a single-process context and starts nothing.
Every rank trains on its own random batches (per-rank seeds); DistributedDataParallel averages
the gradients, so the weights stay identical, and only rank 0 validates and writes files.
"""

from __future__ import annotations

from dataclasses import dataclass
import os

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a data-parallel run (rank 0 of 1 when not distributed)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ''

    @property
    def distributed(self) -> bool:
        """Return True when more than one process trains together."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Return True on the process that logs, validates and writes files."""
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every rank (no-op when not distributed)."""
        if self.distributed:
            dist.barrier()

    def max_scalar(self, value: float, device: torch.device) -> float:
        """Return the largest `value` over the ranks (every rank must call it).

        Used for the training time: ranks that stopped at different times would deadlock in
        the next gradient all-reduce, and different LR factors would let the weights drift.
        """
        if not self.distributed:
            return value
        tensor = torch.tensor([value], dtype=torch.float64,
                              device=device if self.backend == 'nccl' else 'cpu')
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return float(tensor.item())


def env_world_size() -> int:
    """Return WORLD_SIZE from the environment (1 when unset or malformed)."""
    try:
        return max(1, int(os.environ.get('WORLD_SIZE', '1')))
    except ValueError:
        return 1


def setup(device_name: str = 'auto') -> DistContext:
    """Join the torchrun process group once (idempotent) and return this process's context.

    Backend: nccl when the device resolves to CUDA, gloo otherwise. On CUDA each rank uses
    the GPU of its LOCAL_RANK.
    """
    world_size = env_world_size()
    if world_size == 1:
        return DistContext()
    rank = int(os.environ.get('RANK', '0'))
    local_rank = int(os.environ.get('LOCAL_RANK', '0'))
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and not str(device_name).startswith('cpu')
        if use_cuda:
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend='nccl' if use_cuda else 'gloo')
    return DistContext(rank=rank, world_size=world_size, local_rank=local_rank,
                       backend=dist.get_backend())


def rank_device(device: torch.device, context: DistContext) -> torch.device:
    """Return the device of this rank: its own GPU under torchrun, else `device` unchanged."""
    if context.distributed and device.type == 'cuda':
        return torch.device('cuda', context.local_rank)
    return device


def teardown() -> None:
    """Leave the process group if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
