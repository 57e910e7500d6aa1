"""Small data and fast settings shared by the tests: every model here trains in about a second."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fds.data.builtin import load_builtin, make_census

FAST = {"latent_dim": 3, "hidden_dims": [32], "epochs": 2, "batch_size": 64, "verbose": False}


@pytest.fixture(scope="session")
def digits() -> np.ndarray:
    """8×8 uint8 digit images (scikit-learn ships them)."""
    return load_builtin("digits", n=400).X


@pytest.fixture(scope="session")
def census() -> pd.DataFrame:
    """A mixed-type table: continuous, counts, binary, categorical columns."""
    return make_census(n=400, seed=0)
