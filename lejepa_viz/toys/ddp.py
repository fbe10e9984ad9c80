"""SIGReg's gradient under DDP, exact or off by 1/W: W gloo processes on the CPU, seconds.

SIGReg is a statistic of the global batch: every rank sums its samples' empirical
characteristic function and the sums are all-reduced. If that all-reduce is torch's plain
``torch.distributed.all_reduce``, the forward value is right but autograd does not see the
reduction: each rank's backward reaches only its own samples' share of the statistic, and
after DDP averages the ranks' gradients the result is the true gradient divided by W (lightly
#1920, fixed by #1923). With the autograd-aware all-reduce (``torch.distributed.nn``, ours) the
backward sums the ranks' upstream gradients and DDP's average is exactly the gradient of one
process on the concatenated batch. :func:`ddp_gradients` measures both.
"""

from __future__ import annotations

import importlib
import tempfile
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from ..sigreg import SIGReg

SAMPLES, DIM, OUT, SLICES = 96, 6, 8, 64  # per rank; a linear layer DIM -> OUT under SIGReg


def _setup(world: int) -> tuple[torch.Tensor, nn.Linear]:
    """The concatenated batch ``(world·SAMPLES, DIM)`` (skewed, not Gaussian) and the layer."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(world * SAMPLES, DIM, generator=g) ** 3
    layer = nn.Linear(DIM, OUT)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(OUT, DIM, generator=g) * 0.5)
        layer.bias.copy_(torch.randn(OUT, generator=g))
    return x, layer


def _gradient(layer: nn.Module, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    """SIGReg of ``layer(x)`` and the gradient of the layer's weight."""
    loss = SIGReg(num_slices=SLICES)(layer(x))
    loss.backward()
    weight = (
        layer.module.weight
        if isinstance(layer, nn.parallel.DistributedDataParallel)
        else layer.weight
    )
    return loss.item(), weight.grad.clone()


def plain_all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The bug: the sum over ranks in the forward pass, but a backward that sees only this
    rank's ``tensor`` (what ``torch.distributed.all_reduce`` on a tensor in the graph does)."""
    total = tensor.detach().clone()
    dist.all_reduce(total)
    return tensor + (total - tensor.detach())


def _worker(rank: int, world: int, store: str, out: str, autograd: bool) -> None:
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    if not autograd:  # this process only: the module SIGReg's sums are reduced in
        module = importlib.import_module("..univariate.epps_pulley", __package__)
        module.all_reduce_sum = plain_all_reduce_sum
    x, layer = _setup(world)
    ddp = nn.parallel.DistributedDataParallel(layer)
    loss, grad = _gradient(ddp, x[rank * SAMPLES : (rank + 1) * SAMPLES])
    torch.save({"loss": loss, "grad": grad}, f"{out}.{rank}")
    dist.destroy_process_group()


def ddp_gradients(world: int = 2, autograd: bool = True) -> dict:
    """SIGReg of a linear layer's outputs in ``world`` DDP processes (gloo, CPU) against one
    process on the concatenated batch.

    Args:
        world: number of processes, each holding :data:`SAMPLES` samples.
        autograd: the all-reduce of the characteristic-function sums: autograd-aware (ours),
            or torch's plain all-reduce (the bug of :func:`plain_all_reduce_sum`).

    Returns:
        ``{"loss": (one process, DDP rank 0), "grad_ratio": |DDP grad| / |one process grad|
        (1 when exact, 1/world with the bug), "grad_error": max |DDP − ratio·one| / max |one|
        (0 up to rounding when the DDP gradient is a multiple of the true one),
        "ranks_agree": bool}``.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result")
        mp.start_processes(
            _worker, args=(world, str(Path(tmp) / "store"), out, autograd), nprocs=world,
            start_method="spawn",
        )  # fmt: skip
        results = [torch.load(f"{out}.{r}") for r in range(world)]
    x, layer = _setup(world)
    loss, grad = _gradient(layer, x)
    ddp = results[0]["grad"]
    ratio = float(ddp.norm() / grad.norm())
    return {
        "loss": (loss, results[0]["loss"]),
        "grad_ratio": ratio,
        "grad_error": float((ddp - ratio * grad).abs().max() / grad.abs().max()),
        "ranks_agree": all(torch.equal(r["grad"], ddp) for r in results),
    }
