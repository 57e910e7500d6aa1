"""Disentanglement metrics on constructed codes whose right answer follows from the definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fds.errors import ConfigError, DataError
from fds.evaluation.disentanglement import (
    DISENTANGLEMENT_METRICS,
    dci,
    discretize,
    entropy,
    evaluate_disentanglement,
    factor_vae_score,
    mig,
    sap,
)

N = 3000
LEVELS = (5, 6, 4)
K = len(LEVELS)


@pytest.fixture(scope="module")
def factors() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([rng.integers(0, n, N) for n in LEVELS], axis=1)


def _noise(dims: int, seed: int) -> np.ndarray:
    """Tiny noise: far below the 20-bin width, so it never changes a histogram bin."""
    return 0.01 * np.random.default_rng(seed).standard_normal((N, dims))


@pytest.fixture(scope="module")
def perfect(factors: np.ndarray) -> np.ndarray:
    return factors + _noise(K, 1)


@pytest.fixture(scope="module")
def scores(factors: np.ndarray, perfect: np.ndarray) -> dict[str, dict[str, dict]]:
    """Every metric on every constructed code, computed once (fast mode) for the whole module."""
    rotation = np.array([[1.0, 1.0], [1.0, -1.0]]) / np.sqrt(2.0)
    codes = {
        "perfect": perfect,
        "permuted": perfect[:, [2, 0, 1]],
        "random": np.random.default_rng(2).standard_normal((N, K)),
        "duplicated": np.concatenate([perfect, factors + _noise(K, 3)], axis=1),
        "entangled": np.concatenate([factors[:, :2] @ rotation, factors[:, 2:]], axis=1)
        + _noise(K, 4),
    }
    return {
        case: {
            name: metric(factors, z, fast=True) for name, metric in DISENTANGLEMENT_METRICS.items()
        }
        for case, z in codes.items()
    }


def test_perfect_code_scores_one(scores: dict) -> None:
    s = scores["perfect"]
    assert s["mig"]["mig"] >= 0.9
    assert min(s["mig"]["per_factor"]) >= 0.9
    assert s["dci"]["disentanglement"] >= 0.9
    assert s["dci"]["completeness"] >= 0.9
    assert s["dci"]["informativeness"] >= 0.95
    assert s["factor_vae"]["factor_vae_score"] >= 0.95
    assert s["factor_vae"]["active_dims"] == K
    # A 1-D linear SVC cannot isolate middle classes, so SAP's ceiling is well below 1 here.
    assert s["sap"]["sap"] >= 0.3


def test_random_code_scores_near_zero(scores: dict) -> None:
    s = scores["random"]
    assert s["mig"]["mig"] < 0.05
    assert s["dci"]["disentanglement"] < 0.2
    assert s["dci"]["informativeness"] < 0.4
    assert s["sap"]["sap"] < 0.05
    assert s["factor_vae"]["factor_vae_score"] <= 1 / K + 0.1


def test_permuted_code_scores_like_perfect(scores: dict) -> None:
    perfect, permuted = scores["perfect"], scores["permuted"]
    assert permuted["mig"]["mig"] == pytest.approx(perfect["mig"]["mig"], abs=0.01)
    for key in ("disentanglement", "completeness", "informativeness"):
        assert permuted["dci"][key] == pytest.approx(perfect["dci"][key], abs=0.01)
    assert permuted["sap"]["sap"] == pytest.approx(perfect["sap"]["sap"], abs=0.02)
    assert permuted["factor_vae"]["factor_vae_score"] == perfect["factor_vae"]["factor_vae_score"]


def test_duplicated_code_has_no_gap(scores: dict) -> None:
    s = scores["duplicated"]
    # Both copies carry the same information, so the gap between the top two is zero.
    assert s["mig"]["mig"] == pytest.approx(0.0, abs=0.02)
    assert s["sap"]["sap"] == pytest.approx(0.0, abs=0.05)
    assert s["dci"]["informativeness"] >= 0.95
    assert s["dci"]["disentanglement"] >= 0.9
    # Each factor's importance is shared by two codes: completeness drops towards 1 − log 2 / log D.
    assert s["dci"]["completeness"] < scores["perfect"]["dci"]["completeness"] - 0.2


def test_entangled_code_scores_lower(scores: dict) -> None:
    perfect, entangled = scores["perfect"], scores["entangled"]
    assert entangled["mig"]["mig"] < perfect["mig"]["mig"] - 0.2
    assert entangled["dci"]["disentanglement"] < perfect["dci"]["disentanglement"] - 0.2
    assert entangled["sap"]["sap"] < perfect["sap"]["sap"]
    assert entangled["factor_vae"]["factor_vae_score"] < perfect["factor_vae"]["factor_vae_score"]


def test_importance_matrix_is_codes_by_factors(scores: dict) -> None:
    importance = np.array(scores["duplicated"]["dci"]["importance"])
    assert importance.shape == (2 * K, K)
    assert importance.sum(axis=0) == pytest.approx(np.ones(K))


def test_evaluate_flattens_scalars(factors: np.ndarray, perfect: np.ndarray) -> None:
    flat = evaluate_disentanglement(factors, perfect, fast=True)
    assert set(flat) == {
        "mig",
        "dci_disentanglement",
        "dci_completeness",
        "dci_informativeness",
        "sap",
        "factor_vae_score",
        "factor_vae_active_dims",
    }
    assert all(isinstance(v, int | float) for v in flat.values())
    assert flat == evaluate_disentanglement(factors, perfect, fast=True)  # same seed, same numbers


def test_dataframe_factors_and_single_factor(factors: np.ndarray, perfect: np.ndarray) -> None:
    frame = pd.DataFrame(factors, columns=["shape", "scale", "x"])
    assert mig(frame, perfect)["mig"] == pytest.approx(mig(factors, perfect)["mig"])
    single = dci(frame[["shape"]], perfect, fast=True)
    assert single["disentanglement"] == pytest.approx(1.0)  # one factor: nothing to entangle with
    assert single["informativeness"] >= 0.95


def test_sap_continuous_factors(factors: np.ndarray, perfect: np.ndarray) -> None:
    assert sap(factors.astype(float), perfect, continuous_factors=True)["sap"] >= 0.9


def test_factor_vae_all_dims_pruned(factors: np.ndarray) -> None:
    collapsed = 0.001 * np.random.default_rng(5).standard_normal((N, K))
    assert factor_vae_score(factors, collapsed, fast=True) == {
        "factor_vae_score": 0.0,
        "active_dims": 0,
    }


def test_helpers() -> None:
    binned = discretize(np.array([[0.0, 5.0], [0.5, 5.0], [1.0, 5.0]]), n_bins=2)
    assert binned[:, 0].tolist() == [1, 2, 2]
    assert len(set(binned[:, 1])) == 1  # a constant column lands in one bin
    assert entropy([1, 1]) == pytest.approx(np.log(2))
    assert entropy([3, 3, 3, 3], normalized=True) == pytest.approx(1.0)
    assert entropy([[7.0]], axis=1, normalized=True) == pytest.approx([0.0])


BAD_INPUTS = {
    "length mismatch": (np.zeros((10, 2), int), np.zeros((9, 2))),
    "one sample": (np.zeros((1, 2), int), np.zeros((1, 2))),
    "nan code": (np.arange(20).reshape(10, 2) % 3, np.full((10, 2), np.nan)),
    "inf code": (np.arange(20).reshape(10, 2) % 3, np.full((10, 2), np.inf)),
    "1-d codes": (np.arange(20).reshape(10, 2) % 3, np.zeros(10)),
    "1-d factors": (np.arange(10) % 3, np.zeros((10, 2))),
    "constant factor": (np.zeros((10, 2), int), np.random.default_rng(0).random((10, 2))),
    "non-integer factor": (np.full((10, 2), 0.5) + np.arange(10)[:, None], np.zeros((10, 2))),
    "text factor": (pd.DataFrame({"colour": list("abababab")}), np.zeros((8, 2))),
}


@pytest.mark.parametrize("metric", DISENTANGLEMENT_METRICS.values(), ids=DISENTANGLEMENT_METRICS)
@pytest.mark.parametrize("case", BAD_INPUTS.values(), ids=BAD_INPUTS)
def test_bad_input_raises_data_error(metric, case) -> None:
    bad_factors, bad_codes = case
    with pytest.raises(DataError) as info:
        metric(bad_factors, bad_codes, fast=True)
    assert "\n" not in str(info.value)


def test_gap_metrics_need_two_dims(factors: np.ndarray, perfect: np.ndarray) -> None:
    for metric in (mig, sap):
        with pytest.raises(DataError, match="at least 2 code dims"):
            metric(factors, perfect[:, :1])


def test_bad_options_raise_config_error(factors: np.ndarray, perfect: np.ndarray) -> None:
    with pytest.raises(ConfigError):
        mig(factors, perfect, n_bins=0)
    with pytest.raises(ConfigError):
        factor_vae_score(factors, perfect, batch_size=1)
