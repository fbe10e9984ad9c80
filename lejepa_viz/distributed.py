"""The only module that talks to ``torch.distributed``, and where a process picks its device
(:func:`resolve_device`), for tiny tensors its CPU threads (:func:`one_thread`), and seeds
what it builds without touching the global random state (:func:`seeded`). The training loop
reaches the process group only through here: :func:`setup`, :func:`data_parallel`,
:func:`max_over_ranks` (its time budget), :func:`gather_objects` (checkpoints),
:func:`divergence` and :func:`cleanup`.

SIGReg is a statistic of the *global* batch: under DDP every rank sums its local empirical
characteristic function and sample count, and these sums are all-reduced with the
autograd-aware collective. Each rank then holds the global statistic, and the backward pass of
the all-reduce sums the ranks' upstream gradients, so after DDP averages parameter gradients
over the W ranks they equal those of one process on the concatenated batch — also when ranks
hold different batch sizes, because sums and counts are reduced, never means.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → CUDA when present, else the CPU; anything else as ``torch.device`` reads it.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


@contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one CPU thread inside the block (tiny tensors: thread wake-ups cost more
    than they save, many times over on a busy machine), then restore the thread count."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Inside the block torch's CPU random state is seeded with ``seed``; after it, the state is
    what it was before (what a seeded initialisation needs, without seeding the caller).

    Example:
        >>> with seeded(0):
        ...     a = torch.rand(2)
        >>> with seeded(0):
        ...     b = torch.rand(2)
        >>> torch.equal(a, b)
        True
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def is_distributed() -> bool:
    """True inside an initialised process group with more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """Number of ranks (1 outside a process group)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """This process's rank (0 outside a process group)."""
    return dist.get_rank() if is_distributed() else 0


def launch_rank() -> int:
    """This process's rank as the launcher set it (``RANK``, torchrun's), also after the
    process group was left: who writes what outlives the group. 0 without a launcher."""
    return rank() if is_distributed() else int(os.environ.get("RANK", "0"))


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all ranks, differentiably; identity outside a process group.

    The backward of a sum all-reduce is the sum all-reduce of the upstream gradients.
    """
    if not is_distributed():
        return tensor
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(tensor, op=dist.ReduceOp.SUM)


def data_parallel(module: torch.nn.Module) -> torch.nn.Module:
    """``module`` wrapped in ``DistributedDataParallel`` inside a process group (its gradients
    averaged over the ranks in backward), ``module`` itself outside one."""
    if not is_distributed():
        return module
    return torch.nn.parallel.DistributedDataParallel(module)


def setup(device: torch.device) -> torch.device:
    """Join the process group that ``torchrun`` describes in the environment, if any.

    Uses NCCL on CUDA (one GPU per local rank) and gloo on the CPU. Returns the device this
    rank should use. Outside ``torchrun`` (no ``WORLD_SIZE`` > 1) it does nothing.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def max_over_ranks(value: float, device: torch.device) -> float:
    """The largest ``value`` over all ranks, on every rank (one all-reduce: the host waits for
    it); ``value`` itself outside a process group.

    Example:
        >>> max_over_ranks(2.5, torch.device("cpu"))
        2.5
    """
    if not is_distributed():
        return value
    tensor = torch.tensor(float(value), dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return tensor.item()


def gather_objects(obj: object) -> list:
    """Every rank's ``obj`` (anything picklable), in rank order, on every rank; ``[obj]``
    outside a process group.

    Example:
        >>> gather_objects({"rank": 0})
        [{'rank': 0}]
    """
    if not is_distributed():
        return [obj]
    gathered: list = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, obj)
    return gathered


def cleanup() -> None:
    """Leave the process group, if this process joined one."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def divergence(tensors) -> float:
    """Largest difference of the given tensors across ranks (0.0 when replicas agree exactly)."""
    if not is_distributed():
        return 0.0
    flat = torch.cat([t.detach().float().flatten() for t in tensors])
    high, low = flat.clone(), flat.clone()
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    return (high - low).max().item()
