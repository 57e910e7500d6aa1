"""attribute_leakage: attackers find an attribute the latents hold, and nothing in pure noise."""

from __future__ import annotations

import numpy as np
import pytest

from fds.errors import DataError
from fds.privacy.leakage import ATTACKERS, attribute_leakage


def _data(informative: bool, n: int = 600, seed: int = 0):
    rng = np.random.default_rng(seed)
    s = rng.choice(["a", "b", "c"], size=n, p=[0.5, 0.3, 0.2])
    z = rng.normal(size=(n, 4))
    if informative:
        z[:, 0] += 3.0 * (s == "b") - 3.0 * (s == "c")
    return z[:400], s[:400], z[400:], s[400:]


def test_latents_holding_the_attribute_leak_it() -> None:
    result = attribute_leakage(*_data(informative=True))
    assert set(result["attackers"]) == set(ATTACKERS)
    assert result["best_accuracy"] > 0.85
    assert result["advantage"] > 0.3
    assert result["attackers"][result["best_attacker"]]["auc"] > 0.9
    assert result["n_classes"] == 3 and result["n_test"] == 200


def test_independent_noise_stays_near_the_majority_baseline() -> None:
    result = attribute_leakage(*_data(informative=False))
    assert abs(result["majority"] - 0.5) < 0.1
    assert result["advantage"] < 0.08
    for scores in result["attackers"].values():
        assert 0.35 < scores["auc"] < 0.65


def test_binary_auc_and_determinism() -> None:
    rng = np.random.default_rng(1)
    s = rng.integers(0, 2, size=500)
    z = rng.normal(size=(500, 3)) + s[:, None] * 1.5
    first = attribute_leakage(z[:300], s[:300], z[300:], s[300:], seed=3)
    again = attribute_leakage(z[:300], s[:300], z[300:], s[300:], seed=3)
    assert first == again
    assert first["attackers"]["logistic"]["auc"] > 0.9


def test_bad_inputs_raise_data_errors() -> None:
    z = np.zeros((10, 2))
    with pytest.raises(DataError, match="differ in length"):
        attribute_leakage(z, np.arange(9) % 2, z, np.arange(10) % 2)
    with pytest.raises(DataError, match="single value"):
        attribute_leakage(z, np.zeros(10), z, np.zeros(10))
    with pytest.raises(DataError, match="width"):
        attribute_leakage(z, np.arange(10) % 2, np.zeros((10, 3)), np.arange(10) % 2)
