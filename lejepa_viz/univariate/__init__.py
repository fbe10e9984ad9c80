"""Univariate normality statistics against N(0, 1).

Every statistic takes ``x`` of shape ``(*, N, K)`` (N samples along dim -2, K independent
columns) and returns ``(*, K)``; lower means more like N(0, 1). All are differentiable and
computed in float32 or wider.
"""

from . import utils
from .anderson_darling import AndersonDarling, anderson_darling
from .base import UnivariateTest
from .cramer_von_mises import CramerVonMises, cramer_von_mises
from .ecf import epps_pulley_quadrature
from .entropy import Entropy, entropy, vasicek_entropy
from .epps_pulley import EppsPulley, epps_pulley
from .jarque_bera import ExtendedJarqueBera, JarqueBera, extended_jarque_bera, jarque_bera
from .likelihood import NLL, nll
from .moments import Moments, moments, original_moments
from .shapiro_wilk import ShapiroWilk, shapiro_wilk
from .vcreg import VCReg, vcreg
from .watson import Watson, watson

__all__ = [
    "AndersonDarling",
    "CramerVonMises",
    "Entropy",
    "EppsPulley",
    "ExtendedJarqueBera",
    "JarqueBera",
    "Moments",
    "NLL",
    "ShapiroWilk",
    "UnivariateTest",
    "VCReg",
    "Watson",
    "anderson_darling",
    "cramer_von_mises",
    "entropy",
    "epps_pulley",
    "epps_pulley_quadrature",
    "extended_jarque_bera",
    "jarque_bera",
    "moments",
    "nll",
    "original_moments",
    "shapiro_wilk",
    "utils",
    "vasicek_entropy",
    "vcreg",
    "watson",
]
