"""Sliced tests: a univariate statistic applied to K random 1-D projections of D-dim samples.

This is SIGReg's engine. Directions are explicit randomness: at step ``s`` they come from a
CPU ``torch.Generator`` seeded with a fixed function of ``(seed, s)``, so every device, rank
and world size sees the same directions. The step lives in a buffer (checkpointed with the
module) and advances on every forward. When the univariate test is Epps–Pulley, the
projection is fused into its O(N·K)-memory kernel.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .._checks import as_samples, integer_at_least
from ..univariate.epps_pulley import EppsPulley, ecf_statistic

_REDUCTIONS = ("mean", "sum", None)


def directions(
    dim: int,
    num_slices: int,
    *,
    seed: int = 0,
    step: int = 0,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Random unit directions, shape ``(dim, num_slices)``, reproducible from ``(seed, step)``.

    Drawn as float32 Gaussians from a CPU generator, normalised column-wise, then moved to
    ``device`` and ``dtype``: the same on every machine. The generator's seed mixes
    ``(seed, step)`` through ``numpy.random.SeedSequence`` (the CPU generator keeps 32 bits of
    its seed, so a plain ``seed·2³² + step`` would ignore ``seed``).

    Example:
        >>> A = directions(3, 5, seed=0, step=7)
        >>> A.shape, torch.allclose(A.norm(dim=0), torch.ones(5))
        (torch.Size([3, 5]), True)
        >>> torch.equal(A, directions(3, 5, seed=0, step=7))
        True
    """
    dim = integer_at_least(dim, 1, "dim")
    num_slices = integer_at_least(num_slices, 1, "num_slices")
    seed = integer_at_least(seed, 0, "seed")
    step = integer_at_least(step, 0, "step")
    mixed = int(np.random.SeedSequence([seed, step]).generate_state(1)[0])
    generator = torch.Generator().manual_seed(mixed)
    A = torch.randn(dim, num_slices, generator=generator)
    A /= A.norm(dim=0, keepdim=True)
    return A.to(device=device, dtype=dtype)


class SlicingUnivariateTest(nn.Module):
    """Sliced multivariate test: ``stat(x) = reduce_k univariate_test(x @ a_k)``.

    Args:
        univariate_test: a module mapping ``(*, N, K)`` to ``(*, K)``.
        num_slices: number K of random unit directions per step.
        reduction: ``"mean"`` or ``"sum"`` over all slices and leading dims (a scalar), or
            ``None`` for the per-slice statistics ``(*, num_slices)``.
        sampler: law of the directions before normalisation; ``"gaussian"``, the only one
            (as in the original release), gives directions uniform on the sphere.
        clip_value: ``None`` (the default), or a number: per-slice statistics below it are
            set to 0 (and pass no gradient) before the reduction, as in the original.
        seed: seed of the direction stream (see :func:`directions`); keyword-only.

    Attributes:
        step: the step counter (a buffer); ``global_step`` is the original release's name.

    Shape:
        ``x``: ``(*, N, D)``; output: scalar, or ``(*, num_slices)`` with ``reduction=None``.

    Example:
        >>> from lejepa_viz.univariate import EppsPulley
        >>> test = SlicingUnivariateTest(EppsPulley(), num_slices=64, reduction=None)
        >>> test(torch.randn(2, 256, 10)).shape, int(test.step)
        (torch.Size([2, 64]), 1)
        >>> x = torch.randn(256, 10)
        >>> torch.equal(test(x, step=0), test(x, step=0)), int(test.step)
        (True, 1)
    """

    def __init__(
        self,
        univariate_test: nn.Module,
        num_slices: int,
        reduction: str | None = "mean",
        sampler: str = "gaussian",
        clip_value: float | None = None,
        *,
        seed: int = 0,
    ):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        if sampler != "gaussian":
            raise ValueError(f"sampler must be 'gaussian' (the only one), got {sampler!r}")
        if clip_value is not None and (
            isinstance(clip_value, bool)
            or not isinstance(clip_value, (int, float))
            or not np.isfinite(clip_value)
        ):
            raise ValueError(f"clip_value must be None or a finite number, got {clip_value!r}")
        self.sampler = sampler
        self.clip_value = None if clip_value is None else float(clip_value)
        if not callable(univariate_test):
            raise ValueError("univariate_test must be a module mapping (*, N, K) to (*, K)")
        self.univariate_test = univariate_test
        self.num_slices = integer_at_least(num_slices, 1, "num_slices")
        self.reduction = reduction
        self.seed = integer_at_least(seed, 0, "seed")
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self._step_seen: tuple[int, int] | None = None  # (storage, version) of `step` last read
        self._step_value = 0

    def _host_step(self) -> int:
        """The step counter as a Python int. The buffer is read (a GPU sync on CUDA) only when
        something other than :meth:`forward` wrote it since — loading a state dict, ``.to()``,
        ``step.zero_()`` or ``step.fill_(s)``: tensors count their in-place writes on the host
        (``_version``). A write through ``step.data`` bypasses that count and is not seen."""
        seen = (self.step.data_ptr(), self.step._version)
        if seen != self._step_seen:
            self._step_value, self._step_seen = int(self.step), seen
        return self._step_value

    def directions(self, dim: int, step: int | None = None) -> torch.Tensor:
        """The ``(dim, num_slices)`` unit directions used at ``step`` (default: the next one)."""
        step = self._host_step() if step is None else step
        return directions(dim, self.num_slices, seed=self.seed, step=step, device=self.step.device)

    def forward(self, x: torch.Tensor, step: int | None = None) -> torch.Tensor:
        """The statistic of ``x`` ``(*, N, D)`` on the directions of the next step, which it then
        advances; with ``step``, on the directions of that step, the counter left alone (the
        same directions every call: a judge that does not move)."""
        x = as_samples(x)
        A = self.directions(x.shape[-1], step).to(x.dtype)
        if step is None:  # advance without reading the buffer back
            self._step_value = self._host_step() + 1
            self.step.fill_(self._step_value)
            self._step_seen = (self.step.data_ptr(), self.step._version)
        test = self.univariate_test
        if isinstance(test, EppsPulley):  # fused projection, O(N·K) memory
            stats = ecf_statistic(x, A, test.t_max, test.n_points)
        else:
            stats = test(x @ A)
        if self.clip_value is not None:
            stats = torch.where(stats < self.clip_value, 0, stats)
        if self.reduction == "mean":
            return stats.mean()
        if self.reduction == "sum":
            return stats.sum()
        return stats

    @property
    def global_step(self) -> torch.Tensor:
        """The original release's name for the :attr:`step` buffer (the same tensor)."""
        return self.step

    def extra_repr(self) -> str:
        clip = "" if self.clip_value is None else f", clip_value={self.clip_value}"
        return f"num_slices={self.num_slices}, reduction={self.reduction!r}{clip}, seed={self.seed}"
