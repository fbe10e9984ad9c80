"""The only module that talks to ``torch.distributed``.

SIGReg is a statistic of the *global* batch: under DDP every rank sums its local empirical
characteristic function and sample count, and these sums are all-reduced with the
autograd-aware collective. Each rank then holds the global statistic, and the backward pass of
the all-reduce sums the ranks' upstream gradients, so after DDP averages parameter gradients
over the W ranks they equal those of one process on the concatenated batch — also when ranks
hold different batch sizes, because sums and counts are reduced, never means.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of ranks (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if is_distributed() else 0


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, differentiably; identity outside a process group.

    The backward of a sum all-reduce is the sum all-reduce of the upstream gradients.
    """
    if not is_distributed():
        return tensor
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(tensor, op=dist.ReduceOp.SUM)
