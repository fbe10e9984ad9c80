"""SIGReg gradient flow: optimise a point cloud with SIGReg alone and watch it become N(0, I).

No network, no data: a cloud of N points in D dimensions (a collapsed line, a ring, two
moons, a heavy-tailed blob) is the parameter, and each step moves the points down the SIGReg
gradient. It is the smallest experiment that shows what the regulariser does, and it runs in
seconds on a CPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from ._checks import integer_at_least, positive
from .sigreg import SIGReg

SHAPES = ("line", "ring", "moons", "heavy")


def make_cloud(shape: str, n: int = 1024, dim: int = 2, seed: int = 0) -> torch.Tensor:
    """A non-Gaussian point cloud of shape ``(n, dim)``.

    Args:
        shape: ``"line"`` (collapsed onto one direction), ``"ring"``, ``"moons"`` (two
            interleaved half circles) or ``"heavy"`` (Student-t with 2 degrees of freedom).
        n: number of points.
        dim: dimension, at least 2; the 2-D shapes are embedded in the first two coordinates
            with small noise in the others.
        seed: seed of the cloud.

    Example:
        >>> make_cloud("ring", n=100, dim=4).shape
        torch.Size([100, 4])
    """
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    n = integer_at_least(n, 2, "n")
    dim = integer_at_least(dim, 2, "dim")
    g = torch.Generator().manual_seed(seed)
    x = 0.05 * torch.randn(n, dim, generator=g)
    if shape == "line":
        x += torch.linspace(-2.0, 2.0, n)[:, None] * torch.ones(dim) / math.sqrt(dim)
    elif shape == "ring":
        angle = 2 * math.pi * torch.rand(n, generator=g)
        x[:, 0] += 2 * torch.cos(angle)
        x[:, 1] += 2 * torch.sin(angle)
    elif shape == "moons":
        angle = math.pi * torch.rand(n, generator=g)
        upper = torch.arange(n) % 2 == 0
        x[:, 0] += torch.where(upper, torch.cos(angle), 1 - torch.cos(angle)) - 0.5
        x[:, 1] += torch.where(upper, torch.sin(angle), 0.5 - torch.sin(angle)) - 0.25
        x[:, :2] *= 1.5
    else:
        half_chi2 = torch.empty(n, 1).exponential_(generator=g)  # χ²(2) / 2
        x = torch.randn(n, dim, generator=g) / torch.sqrt(half_chi2)
    return x


@dataclass
class Flow:
    """What :func:`sigreg_flow` records: snapshots of the cloud and the SIGReg curve."""

    steps: list[int] = field(default_factory=list)
    snapshots: list[torch.Tensor] = field(default_factory=list)  # each (N, D)
    sigreg: list[float] = field(default_factory=list)


def sigreg_flow(
    x: torch.Tensor,
    steps: int = 300,
    lr: float = 0.05,
    num_slices: int = 256,
    every: int = 10,
    seed: int = 0,
    progress: bool = True,
) -> Flow:
    """Move the points of ``x`` (N, D) down the gradient of SIGReg with Adam.

    Args:
        x: the starting cloud, shape ``(N, D)``; not modified.
        steps: number of optimisation steps.
        lr: Adam learning rate.
        num_slices: slices per step (fresh directions every step).
        every: keep a snapshot every ``every`` steps (and the last one).
        seed: seed of the direction stream.
        progress: show a tqdm progress bar.

    Returns:
        A :class:`Flow` with the snapshots and the SIGReg value at each snapshot.

    Example:
        >>> flow = sigreg_flow(make_cloud("line", 256, 2), steps=50, every=25, progress=False)
        >>> flow.steps, flow.sigreg[-1] < flow.sigreg[0]
        ([0, 25, 50], True)
    """
    steps = integer_at_least(steps, 1, "steps")
    every = integer_at_least(every, 1, "every")
    lr = positive(lr, "lr")
    points = x.detach().clone().float().requires_grad_(True)
    sigreg = SIGReg(num_slices=num_slices, seed=seed)
    opt = torch.optim.Adam([points], lr=lr)
    flow = Flow()
    for step in tqdm(range(steps + 1), desc="SIGReg flow", disable=not progress, leave=False):
        loss = sigreg(points)
        if step % every == 0 or step == steps:
            flow.steps.append(step)
            flow.snapshots.append(points.detach().clone())
            flow.sigreg.append(loss.item())
        if step == steps:
            break
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return flow
