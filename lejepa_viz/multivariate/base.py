"""The base class of the multivariate kernel tests, under the original LeJEPA release's API.

The original names it ``MultivariatetTest`` (sic) in ``lejepa.multivariate.base``; both
spellings name :class:`MultivariateTest` here.
"""

from __future__ import annotations

import torch
from torch import nn

from .._checks import as_samples


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
