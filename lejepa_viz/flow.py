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


@dataclass
class LambdaRun:
    """What :func:`lambda_flow` records for one λ: projector outputs of a fixed batch over time."""

    lam: float
    steps: list[int] = field(default_factory=list)
    snapshots: list[torch.Tensor] = field(default_factory=list)  # each (n, D)
    sigreg: list[float] = field(default_factory=list)  # SIGReg of the recorded batch
    pred: list[float] = field(default_factory=list)  # prediction loss of the training batch


def lambda_flow(
    lams: tuple[float, ...] = (0.0, 0.1),
    steps: int = 120,
    dim: int = 16,
    batch_size: int = 128,
    every: int = 4,
    seed: int = 0,
    progress: bool = True,
) -> list[LambdaRun]:
    """Train one tiny encoder per λ on the bundled digits with the LeJEPA loss, from the same
    initialisation and the same views, and record its outputs on a fixed batch.

    λ = 0 is pure invariance: every view of an image agrees with the others, which a constant
    output achieves, so the embeddings collapse. Any λ > 0 adds SIGReg and the outputs spread
    into an isotropic Gaussian instead. The encoder is an MLP on the flattened 16 x 16 views
    (2 global, 2 local views per image, upsampled), so a run takes seconds on a CPU.

    Args:
        lams: the λ values to compare, each in [0, 1].
        steps: AdamW steps per run.
        dim: output dimension D.
        batch_size: images per step.
        every: record every ``every`` steps (and the last).
        seed: seed of the initialisation, the batches, the views and the slices.
        progress: show a tqdm progress bar.

    Returns:
        One :class:`LambdaRun` per λ, snapshots of shape ``(256, D)``.

    Example:
        >>> zero, some = lambda_flow((0.0, 0.1), steps=40, every=40, progress=False)
        >>> zero.sigreg[-1] > zero.sigreg[0], some.sigreg[-1] < zero.sigreg[0] / 3
        (True, True)
    """
    from .data import MultiViewAugment, load_dataset
    from .sigreg import lejepa_loss

    steps = integer_at_least(steps, 1, "steps")
    every = integer_at_least(every, 1, "every")
    data = load_dataset("digits", "train")
    augment = MultiViewAugment.for_dataset(data, num_global=2, num_local=2)
    side = data.image_size
    fixed = data.images[:256].float() / 255
    runs = []
    for lam in tqdm(lams, desc="λ runs", disable=not progress, leave=False):
        torch.manual_seed(seed)
        net = torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(side * side, 256), torch.nn.GELU(),
            torch.nn.Linear(256, 256), torch.nn.GELU(), torch.nn.Linear(256, dim),
        )  # fmt: skip
        with torch.no_grad():  # start spread out (std 1), so that collapse is visible
            net[-1].weight /= net(fixed).std()
        opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
        sigreg = SIGReg(num_slices=128, seed=seed)
        judge = SIGReg(num_slices=256, seed=seed + 1)
        gen = torch.Generator().manual_seed(seed)
        run = LambdaRun(lam=lam)
        for step in range(steps + 1):
            if step % every == 0 or step == steps:
                with torch.no_grad():
                    z = net(fixed)
                run.steps.append(step)
                run.snapshots.append(z)
                run.sigreg.append(judge(z).item())
            if step == steps:
                break
            idx = torch.randint(len(data), (batch_size,), generator=gen)
            g, loc = augment(data.images[idx], generator=gen)
            views = torch.cat([g, torch.nn.functional.interpolate(loc.flatten(0, 1), size=side)
                               .view(loc.shape[0], batch_size, *g.shape[2:])])  # fmt: skip
            z = net(views.flatten(0, 1)).view(len(views), batch_size, dim)  # (V, B, D)
            parts = lejepa_loss(z, lam, sigreg, num_global_views=2)
            opt.zero_grad(set_to_none=True)
            parts.loss.backward()
            opt.step()
            run.pred.append(parts.pred.item())
        runs.append(run)
    return runs
