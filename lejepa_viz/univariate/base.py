"""The base class of the univariate tests, under the original LeJEPA release's name and API.

Every test of :mod:`lejepa_viz.univariate` but :class:`~.epps_pulley.EppsPulley` derives from
:class:`UnivariateTest`, so code written against the original (``isinstance`` checks, a custom
test that calls ``self.prepare_data``) runs here. ``eps`` and ``sorted`` keep the original's
meaning; which tests read ``eps`` is said in each test's docstring.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .. import distributed
from .._checks import as_samples, positive


def flag(value: bool, name: str) -> bool:
    """Return ``value`` if it is a bool, else raise ``ValueError`` naming ``name``."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")
    return value


class UnivariateTest(nn.Module):
    """A univariate test of N(0, 1): ``(*, N, K) -> (*, K)``, lower is more Gaussian.

    Args:
        eps: a small positive constant; the original release's tests use it as a floor (of
            spacings in :class:`~.entropy.Entropy`, in the cosine of the original
            :class:`~.shapiro_wilk.ShapiroWilk`). A test that has no use for it stores it.
        sorted: ``True`` promises that every column of the input is already sorted
            ascending along N, so :meth:`prepare_data` skips the sort (not checked: an
            unsorted input then gives a wrong value, as in the original).

    Attributes:
        g: the standard normal law, ``torch.distributions.Normal(0, 1)``, as in the original.

    Example:
        >>> class MeanSquare(UnivariateTest):
        ...     def forward(self, x):
        ...         return self.prepare_data(x).square().mean(-2) - 1
        >>> MeanSquare()(torch.randn(100, 3)).shape
        torch.Size([3])
        >>> UnivariateTest(sorted=True).prepare_data([[2.0], [1.0]]).flatten().tolist()
        [2.0, 1.0]
    """

    def __init__(self, eps: float = 1e-5, sorted: bool = False):
        super().__init__()
        self.eps = positive(eps, "eps")
        self.sorted = flag(sorted, "sorted")
        self.g = torch.distributions.Normal(0.0, 1.0)

    def prepare_data(self, x) -> torch.Tensor:
        """``x`` validated (see :func:`lejepa_viz._checks.as_samples`) and, unless ``sorted``,
        sorted ascending along N: ``(*, N, K) -> (*, N, K)``."""
        x = as_samples(x)
        return x if self.sorted else torch.sort(x, dim=-2).values

    def dist_mean(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of ``x`` over the ranks of a process group (differentiable); ``x`` itself
        outside one. (The original discards the all-reduce's result, so its ``dist_mean``
        returns the rank's own ``x`` everywhere.)"""
        return distributed.all_reduce_sum(x) / distributed.world_size()

    @property
    def world_size(self) -> int:
        """Number of ranks of the process group, 1 outside one."""
        return distributed.world_size()


class FunctionTest(UnivariateTest):
    """A test that is one function of the sample, ``statistic(x)``, as a module. ``eps`` and
    ``sorted`` are accepted and stored, as in the original release, which reads neither for
    these tests (the statistics do not depend on the order).

    Example:
        >>> class MeanOfSquares(FunctionTest):
        ...     statistic = staticmethod(lambda x: x.square().mean(-2))
        >>> MeanOfSquares()(torch.ones(4, 2)).tolist()
        [1.0, 1.0]
    """

    statistic: Callable[[torch.Tensor], torch.Tensor]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.statistic(x)
