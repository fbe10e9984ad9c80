"""Input checks shared by every statistic.

Each public statistic refuses bad input with a ``ValueError`` that names the argument and
the expected form, and computes in float32 or wider whatever the input dtype. The one check
that reads tensor values (NaN / Inf) makes a GPU wait for the host; :func:`value_checks`
turns it off inside a block (the training loop does so on CUDA), the shape checks stay.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import torch

_state = threading.local()


@contextmanager
def value_checks(enabled: bool) -> Iterator[None]:
    """Check inputs for NaN / Inf inside the block (``True``, the default outside) or not.

    Example:
        >>> with value_checks(False):
        ...     x = as_samples(torch.tensor([[float("nan")], [0.0]]))  # not refused here
    """
    before = getattr(_state, "enabled", True)
    _state.enabled = bool(enabled)
    try:
        yield
    finally:
        _state.enabled = before


def as_samples(x, name: str = "x", min_samples: int = 2) -> torch.Tensor:
    """Validate a ``(*, N, K)`` sample tensor and upcast it to float32 or wider.

    Args:
        x: samples along dim -2, columns (or dimensions) along dim -1: a tensor, or anything
            ``torch.as_tensor`` takes (a NumPy array, nested lists), as the original release
            accepts.
        name: argument name used in error messages.
        min_samples: smallest accepted N.

    Returns:
        ``x`` as float32 (or float64 when it already is), autocast-independent.
    """
    if not isinstance(x, torch.Tensor):
        try:
            x = torch.as_tensor(x)
        except (TypeError, ValueError, RuntimeError):
            raise ValueError(
                f"{name} must be a tensor of shape (*, N, D) (or an array torch.as_tensor "
                f"takes), got {type(x).__name__}"
            ) from None
    if x.ndim < 2:
        raise ValueError(
            f"{name} must have shape (*, N, D) with at least 2 dims, got shape {tuple(x.shape)}"
        )
    if x.shape[-2] < min_samples:
        raise ValueError(
            f"{name} needs N >= {min_samples} samples along dim -2, got shape {tuple(x.shape)}"
        )
    if x.shape[-1] < 1:
        raise ValueError(
            f"{name} needs at least one column along dim -1, got shape {tuple(x.shape)}"
        )
    if x.is_complex():
        raise ValueError(f"{name} must be real, got dtype {x.dtype}")
    if getattr(_state, "enabled", True) and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or Inf values")
    if x.dtype != torch.float64:
        x = x.to(torch.float32)
    return x


def positive(value: float, name: str) -> float:
    """Return ``value`` as float if it is a finite number > 0, else raise ``ValueError``."""
    if not (isinstance(value, (int, float)) and value > 0 and value != float("inf")):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def integer_at_least(value: int, low: int, name: str) -> int:
    """Return ``value`` if it is an int >= ``low``, else raise ``ValueError``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value
