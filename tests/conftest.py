"""Small data and fast settings shared by the tests: every model here trains in about a second."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import HealthCheck, settings

from fds.data.datasets import load_builtin, make_census

# The tests' tensors are tiny: one thread avoids OpenMP hand-offs that cost more than the maths
# (and stall badly when the other core is busy). Subprocess tests run with torch's default.
torch.set_num_threads(1)

# Property-based tests: a small, derandomized budget in the suite (same examples every run, no
# example database written); HYPOTHESIS_PROFILE=long explores ≥ 2,000 fresh examples per target.
_SLOW_OK = [HealthCheck.too_slow, HealthCheck.data_too_large]
settings.register_profile(
    "suite",
    max_examples=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=_SLOW_OK,
)
settings.register_profile("long", max_examples=2000, deadline=None, suppress_health_check=_SLOW_OK)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))

FAST = {"latent_dim": 3, "hidden_dims": [32], "epochs": 2, "batch_size": 64, "verbose": False}


@pytest.fixture(scope="session")
def digits() -> np.ndarray:
    """8×8 uint8 digit images (scikit-learn ships them)."""
    return load_builtin("digits", n=400).X


@pytest.fixture(scope="session")
def census() -> pd.DataFrame:
    """A mixed-type table: continuous, counts, binary, categorical columns."""
    return make_census(n=400, seed=0)
