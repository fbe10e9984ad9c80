"""Settings for the whole test run, notebooks included (their kernels inherit the environment)."""

import os

os.environ.setdefault("LEJEPA_VIZ_FAST", "1")  # notebooks take their quick path under pytest
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # no network in tests: fail at once, don't retry
