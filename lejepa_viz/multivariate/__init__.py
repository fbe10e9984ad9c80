"""Multivariate normality statistics against N(0, I).

Each takes ``x`` of shape ``(*, N, D)`` and returns ``(*)``; lower means more like N(0, I).
:class:`SlicingUnivariateTest` lifts any univariate statistic to D dimensions through random
unit directions; it is SIGReg's engine. The kernel statistics (BHEP, BHEP_M, COMB, HZ, HV)
are exact O(N²·D) weighted L2 distances, for comparison and small N.
"""

from .base import MultivariateTest, MultivariatetTest
from .bhep import BHEP, bhep
from .bhep_m import BHEP_M, bhep_m
from .comb import COMB, comb
from .hv import HV, hv
from .hz import HZ, hz, hz_bandwidth
from .slicing import SlicingUnivariateTest, directions

__all__ = [
    "BHEP",
    "BHEP_M",
    "COMB",
    "HV",
    "HZ",
    "MultivariateTest",
    "MultivariatetTest",
    "SlicingUnivariateTest",
    "bhep",
    "bhep_m",
    "comb",
    "directions",
    "hv",
    "hz",
    "hz_bandwidth",
]
