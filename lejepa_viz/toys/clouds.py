"""Point clouds that are far from N(0, I): the starting points of the toy experiments.

A collapsed line, a ring, two moons and a heavy-tailed blob, reproducible from a seed, in any
dimension D >= 2 (the 2-D shapes sit in the first two coordinates).
"""

from __future__ import annotations

import math

import torch

from .._checks import integer_at_least

CLOUD_SHAPES = ("line", "ring", "moons", "heavy")


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
    if shape not in CLOUD_SHAPES:
        raise ValueError(f"shape must be one of {CLOUD_SHAPES}, got {shape!r}")
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
