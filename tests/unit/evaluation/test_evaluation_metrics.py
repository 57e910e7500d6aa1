"""Likelihood bounds and latent diagnostics on constructed cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from fds.config import make_config
from fds.data.codec import Block
from fds.data.image_codec import ImageCodec
from fds.data.tabular import TabularCodec
from fds.errors import DataError
from fds.evaluation.metrics import (
    elbo_and_iwae,
    gaussian_total_correlation,
    hoyer,
    independence,
    latent_health,
    reconstruction_errors,
    sparsity,
)
from fds.models import build_model


def _model(preset: str, latent_dim: int = 2, width: int = 6, seed: int = 0):
    torch.manual_seed(seed)
    config = make_config(preset=preset, latent_dim=latent_dim, hidden_dims=(16,)).resolved()
    return build_model(config, [Block("real", 0, width, "real")], None).eval()


def _batches(n: int = 64, width: int = 6, seed: int = 0) -> list[torch.Tensor]:
    x = torch.from_numpy(np.random.default_rng(seed).normal(size=(n, width)).astype(np.float32))
    return list(x.split(32))


# --------------------------------------------------------------------------- ELBO / IWAE


def test_iwae_bounds_the_elbo_and_tightens_with_k() -> None:
    model, batches = _model("vae"), _batches()
    small = elbo_and_iwae(model, batches, k=5, seed=0)
    large = elbo_and_iwae(model, batches, k=200, seed=0)
    for result in (small, large):
        assert result["iwae"] >= result["elbo"]
        assert result["n_examples"] == 64
    assert large["iwae"] >= small["iwae"] - 0.05  # the bound tightens as k grows
    assert small["kl"] > 0 and small["nll_posterior_mean"] > 0


def test_iwae_with_one_sample_is_the_elbo() -> None:
    model, batches = _model("vae"), _batches()
    one = elbo_and_iwae(model, batches, k=1, seed=3)
    assert one["iwae"] == pytest.approx(one["elbo"], abs=1e-9)
    # ... and in expectation equals the closed-form-KL ELBO the model itself reports
    mc = np.mean([elbo_and_iwae(model, batches, k=1, seed=s)["iwae"] for s in range(40)])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        with torch.no_grad():
            analytic = np.mean([float(model.elbo(torch.cat(batches)).mean()) for _ in range(40)])
    assert mc == pytest.approx(analytic, abs=0.1)


def test_elbo_is_deterministic_for_a_seed_and_chunking_does_not_matter() -> None:
    model, batches = _model("vae"), _batches()
    a = elbo_and_iwae(model, batches, k=30, seed=7)
    b = elbo_and_iwae(model, batches, k=30, seed=7)
    assert a == b
    whole = elbo_and_iwae(model, [torch.cat(batches)], k=30, seed=7)
    assert whole["nll_posterior_mean"] == pytest.approx(a["nll_posterior_mean"], rel=1e-6)


def test_deterministic_codes_report_the_reconstruction_likelihood_only() -> None:
    result = elbo_and_iwae(_model("ae"), _batches(), k=10)
    assert result["iwae"] is None and result["elbo"] is None and result["kl"] is None
    assert result["reconstruction_log_likelihood"] == pytest.approx(-result["nll_posterior_mean"])


def test_elbo_rejects_bad_k_and_no_rows() -> None:
    with pytest.raises(DataError, match="k"):
        elbo_and_iwae(_model("vae"), _batches(), k=0)
    with pytest.raises(DataError, match="no rows"):
        elbo_and_iwae(_model("vae"), [], k=2)


# --------------------------------------------------------------------------- latent health


def test_active_units_count_the_dims_that_vary() -> None:
    rng = np.random.default_rng(0)
    mean = np.zeros((500, 6))
    mean[:, :2] = rng.normal(size=(500, 2))  # two informative dims
    mean[:, 2:] = rng.normal(scale=0.01, size=(500, 4))  # four collapsed ones (var 1e-4)
    logvar = np.zeros_like(mean)
    logvar[:, :2] = -4.0
    health = latent_health(mean, logvar)
    assert health["active_units"] == 2 and health["active_dims"] == [0, 1]
    assert health["posterior_collapse"] is True and len(health["warnings"]) == 1
    assert health["kl_per_dim"][2] == pytest.approx(0.0, abs=1e-3)  # collapsed: q = prior
    assert health["kl_per_dim"][0] > 1.0
    healthy = latent_health(mean[:, :3], logvar[:, :3])
    assert healthy["posterior_collapse"] is False and healthy["warnings"] == []


def test_means_collapsed_while_sigma_carries_the_data_are_active_and_flagged() -> None:
    """Judged by information, not by the spread of the means alone."""
    rng = np.random.default_rng(0)
    n = 2000
    group = rng.integers(0, 2, size=n)
    mean = np.zeros((n, 5))
    logvar = np.zeros((n, 5))
    mean[:, 0], logvar[:, 0] = rng.normal(size=n), -4.0  # healthy
    mean[:, 1] = rng.normal(scale=0.01, size=n)  # posterior = prior: inactive
    mean[:, 2], logvar[:, 2] = rng.normal(scale=0.005, size=n), -6.0 * group  # σ carries it
    mean[:, 3], logvar[:, 3] = rng.normal(scale=0.01, size=n), np.log(1e-3**2)  # σ ≪ the spread
    mean[:, 4], logvar[:, 4] = 2.0, np.log(0.3**2)  # one posterior for every row: far from the
    # prior (large KL) yet no information about the row
    health = latent_health(mean, logvar)
    assert health["activity"][2] < 0.01 and health["activity"][3] < 0.01  # Burda: inactive
    assert health["active_dims"] == [0, 2, 3] and health["active_units"] == 3
    assert health["means_collapsed"] is True and health["means_collapsed_dims"] == [2, 3]
    info, kl = health["information_per_dim"], health["kl_per_dim"]
    assert info[1] < 0.001 and info[4] < 1e-9 and kl[4] > 1.0
    assert info[2] > 0.5 and info[3] > 2.0
    assert all(i <= k + 1e-9 for i, k in zip(info, kl, strict=True))
    (warning,) = health["warnings"]
    assert warning.startswith("means collapsed while σ carries the data")
    assert "dim 2: per-row σ varies" in warning and "dim 3: means vary" in warning
    assert health["posterior_collapse"] is False
    plain = latent_health(mean[:, :2], logvar[:, :2])
    assert plain["means_collapsed"] is False and plain["means_collapsed_dims"] == []


def test_deterministic_codes_warn_about_dead_units_without_claiming_collapse() -> None:
    codes = np.zeros((100, 4))
    codes[:, 0] = np.arange(100)
    health = latent_health(codes, None)
    assert health["kl_per_dim"] is None and health["active_units"] == 1
    assert health["information_per_dim"] is None and health["means_collapsed"] is False
    assert health["posterior_collapse"] is False and "dead" in health["warnings"][0]


# --------------------------------------------------------------------------- independence


def test_gaussian_tc_is_zero_for_independent_and_positive_for_correlated_codes() -> None:
    rng = np.random.default_rng(0)
    independent = rng.normal(size=(4000, 3))
    assert gaussian_total_correlation(independent) < 0.01
    rho = 0.8
    a = rng.normal(size=4000)
    correlated = np.stack([a, rho * a + math.sqrt(1 - rho**2) * rng.normal(size=4000)], 1)
    assert gaussian_total_correlation(correlated) == pytest.approx(
        -0.5 * math.log(1 - rho**2), abs=0.05
    )
    duplicated = np.stack([a, a], 1)
    assert math.isfinite(gaussian_total_correlation(duplicated))
    # collapsed dims whose tiny means move together are independent prior noise in q(z)
    tiny = 0.01 * np.stack([a, a + 0.1 * rng.normal(size=4000)], 1)
    assert gaussian_total_correlation(tiny) > 1.0
    assert gaussian_total_correlation(tiny, np.zeros_like(tiny)) < 0.01


def test_pairwise_mi_and_minibatch_tc_see_dependence() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=2000)
    independent = rng.normal(size=(2000, 2))
    dependent = np.stack([a, np.sin(3 * a) + 0.05 * rng.normal(size=2000)], 1)  # non-linear
    logvar = np.full((2000, 2), -6.0)
    free = independence(independent, logvar)
    tied = independence(dependent, logvar)
    assert tied["mean_pairwise_mi"] > free["mean_pairwise_mi"] + 0.5
    assert free["mean_pairwise_mi"] < 2 * free["mean_pairwise_mi_shuffled"] + 0.05
    assert tied["tc_minibatch"] > free["tc_minibatch"] + 0.5
    assert np.asarray(tied["pairwise_mi"]).shape == (2, 2)
    assert independence(dependent, None)["tc_minibatch"] is None


def test_independence_of_random_codes_is_near_the_shuffled_baseline() -> None:
    codes = np.random.default_rng(0).normal(size=(1000, 3))
    result = independence(codes, None)
    assert result["mean_pairwise_mi"] == pytest.approx(
        result["mean_pairwise_mi_shuffled"], abs=0.05
    )


# --------------------------------------------------------------------------- sparsity


def test_hoyer_is_one_for_one_hot_and_zero_for_constant_rows() -> None:
    assert hoyer(np.eye(5)) == pytest.approx(np.ones(5))
    assert hoyer(np.full((2, 5), 3.0)) == pytest.approx(np.zeros(2))
    assert np.isnan(hoyer(np.zeros((1, 5))))[0]


def test_sparsity_counts_near_zero_activations() -> None:
    codes = np.eye(4) * 2.0  # 12 of 16 entries are zero
    result = sparsity(codes)
    assert result["near_zero_fraction"] == pytest.approx(0.75)
    assert result["hoyer"] == pytest.approx(1.0)
    dense = sparsity(np.full((10, 4), 1.0))
    assert dense["near_zero_fraction"] == 0.0 and dense["hoyer"] == pytest.approx(0.0)
    absolute = sparsity(np.full((10, 4), 0.01), relative=False)
    assert absolute["near_zero_fraction"] == 1.0


# --------------------------------------------------------------------------- reconstruction


def test_table_reconstruction_errors_are_in_the_columns_units() -> None:
    frame = pd.DataFrame(
        {
            "height": [150.5, 160.1, 170.7, 180.2, 190.9, 200.3],  # not integers: continuous
            "colour": ["red", "blue", "green", "red", "blue", "green"],
            "smoker": [True, False, True, False, True, False],
        }
    )
    codec = TabularCodec.fit(frame)
    x = codec.encode(frame)
    perfect = reconstruction_errors(codec, x, x)
    assert perfect["mse"] == 0.0
    assert perfect["columns"]["height"]["rmse"] == pytest.approx(0.0, abs=1e-9)
    assert perfect["columns"]["colour"]["accuracy"] == 1.0
    shifted = x.copy()
    # one standard deviation of height, towards the middle: decoded values stay in the range
    shifted[:, 0] += np.where(x[:, 0] < 0, 1.0, -1.0)
    blurred = reconstruction_errors(codec, x, shifted)
    std = frame["height"].std(ddof=0)
    # decoded heights are rounded to the data's 1 decimal: within half of 0.1
    assert blurred["columns"]["height"]["rmse"] == pytest.approx(std, abs=0.05)
    assert blurred["columns"]["height"]["rmse_over_std"] == pytest.approx(1.0, abs=0.05 / std)
    flipped = x.copy()
    smoker = 1  # binary block right after the single real column
    flipped[:, smoker] = 1.0 - flipped[:, smoker]
    assert reconstruction_errors(codec, x, flipped)["columns"]["smoker"]["accuracy"] == 0.0


def test_image_reconstruction_errors_report_pixel_mse_and_psnr() -> None:
    images = np.zeros((4, 8, 8), dtype=np.uint8)
    codec = ImageCodec.fit(images)
    x = codec.encode(images)
    result = reconstruction_errors(codec, x, x + 0.1)
    assert result["pixel_mse"] == pytest.approx(0.01, rel=1e-4)
    assert result["psnr"] == pytest.approx(20.0, rel=1e-3)
    with pytest.raises(DataError, match="shape"):
        reconstruction_errors(codec, x, x[:, :10])
