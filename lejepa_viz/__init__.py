"""lejepa_viz: LeJEPA and SIGReg, exact and fast, with figures and notebooks.

The original release's Quick Start runs unchanged with ``import lejepa_viz as lejepa``::

    >>> import torch
    >>> import lejepa_viz as lejepa
    >>> univariate_test = lejepa.univariate.EppsPulley(num_points=17)
    >>> loss_fn = lejepa.multivariate.SlicingUnivariateTest(
    ...     univariate_test=univariate_test, num_slices=1024)
    >>> embeddings = torch.randn(256, 64, requires_grad=True)
    >>> loss = loss_fn(embeddings)
    >>> loss.backward()
"""

from . import multivariate, univariate
from .backbones import load_backbone, load_encoder
from .sigreg import (
    JUDGE_SEED,
    JUDGE_SLICES,
    Judged,
    LeJEPALoss,
    NullLevel,
    SIGReg,
    judge,
    judge_null,
    lejepa_loss,
    null_level,
    null_mean,
)

__version__ = "0.1.0"

__all__ = [
    "JUDGE_SEED",
    "JUDGE_SLICES",
    "Judged",
    "LeJEPALoss",
    "NullLevel",
    "SIGReg",
    "judge",
    "judge_null",
    "lejepa_loss",
    "load_backbone",
    "load_encoder",
    "multivariate",
    "null_level",
    "null_mean",
    "univariate",
]
