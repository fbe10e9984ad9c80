"""The normal CDF helpers of the original LeJEPA release's ``lejepa.univariate.utils``, exact.

The original evaluates ``log Φ`` beyond ``±thresh`` with an asymptotic approximation; here
both come from torch's ``ndtr`` / ``log_ndtr``, accurate over the whole line (scipy's values).
"""

from __future__ import annotations

import torch


def _floats(x) -> torch.Tensor:
    x = torch.as_tensor(x)
    return x if x.is_floating_point() else x.to(torch.get_default_dtype())


def norm_cdf(x) -> torch.Tensor:
    """``Φ(x)``, the standard normal CDF, elementwise (any shape; what ``torch.as_tensor`` takes).

    Example:
        >>> norm_cdf(torch.tensor([-1.0, 0.0, 1.0]))
        tensor([0.1587, 0.5000, 0.8413])
    """
    return torch.special.ndtr(_floats(x))


def log_norm_cdf(x, thresh: float = 3.0) -> torch.Tensor:
    """``log Φ(x)`` elementwise, finite far into the left tail (any shape).

    Args:
        x: values; what ``torch.as_tensor`` takes.
        thresh: accepted for the original's signature, where beyond ``±thresh`` an
            asymptotic approximation replaces the direct formula; the value here is exact
            everywhere, so it has no effect.

    Example:
        >>> [round(v, 4) for v in log_norm_cdf(torch.tensor([-40.0, 0.0])).tolist()]
        [-804.6085, -0.6931]
    """
    return torch.special.log_ndtr(_floats(x))
