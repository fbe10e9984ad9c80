"""The base class of the multivariate kernel tests, under the original LeJEPA release's API.

The original names it ``MultivariatetTest`` (sic) in ``lejepa.multivariate.base``; both
spellings name :class:`MultivariateTest` here.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .._checks import as_samples, positive


class MultivariateTest(nn.Module):
    """A multivariate test of N(0, I_D): ``(*, N, D) -> (*)``, lower is more Gaussian.

    Example:
        >>> import numpy as np
        >>> MultivariateTest().prepare_data(np.zeros((4, 2))).dtype
        torch.float64
    """

    def prepare_data(self, x) -> torch.Tensor:
        """``x`` validated and upcast to float32 or wider (:func:`lejepa_viz._checks.as_samples`),
        ``(*, N, D)``. The original turns a NumPy array into float32 and accepts only
        ``(N, D)``; here a float64 array stays float64 and leading batch dims are allowed."""
        return as_samples(x)


MultivariatetTest = MultivariateTest  # the original release's spelling


def decay(value: float, name: str, above: float, why: str, shown: str | None = None) -> float:
    """A kernel test's weight parameter ``value`` as a float, refused with a ``ValueError``
    naming ``name`` unless it is above ``above`` (``shown``: how the bound is written), the
    statistic's ``why`` otherwise failing.

    Example:
        >>> decay(0.4, "gamma", 0.5, "finite null expectation", "1/2")
        Traceback (most recent call last):
        ...
        ValueError: gamma must be > 1/2 (finite null expectation), got 0.4
    """
    value = positive(value, name)
    if value <= above:
        raise ValueError(f"{name} must be > {shown or f'{above:g}'} ({why}), got {value!r}")
    return value


class WeightedTest(MultivariateTest):
    """A kernel test whose statistic takes one weight parameter: ``statistic(x, value)``, the
    parameter named ``parameter`` and checked by :meth:`check` when the test is built."""

    parameter: str
    statistic: Callable[[torch.Tensor, float], torch.Tensor]

    def __init__(self, value: float):
        super().__init__()
        setattr(self, self.parameter, self.check(value))

    @staticmethod
    def check(value: float) -> float:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.statistic(x, getattr(self, self.parameter))

    def extra_repr(self) -> str:
        return f"{self.parameter}={getattr(self, self.parameter)}"
