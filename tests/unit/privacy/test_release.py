"""DP release of latents: analytic Gaussian σ, clipping, the noise actually added."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from fds.errors import ConfigError
from fds.privacy.release import (
    _delta_of,
    analytic_gaussian_sigma,
    classical_gaussian_sigma,
    clip_rows,
    release_latents,
)


@pytest.mark.parametrize("epsilon", [0.1, 0.5, 0.9])
def test_analytic_sigma_is_below_the_classical_bound_for_small_epsilon(epsilon):
    analytic = analytic_gaussian_sigma(epsilon, 1e-5, 1.0)
    assert analytic < classical_gaussian_sigma(epsilon, 1e-5, 1.0)


@pytest.mark.parametrize(("epsilon", "delta"), [(0.5, 1e-5), (1.0, 1e-5), (4.0, 1e-6), (8.0, 1e-3)])
def test_analytic_sigma_is_the_smallest_that_meets_delta(epsilon, delta):
    sigma = analytic_gaussian_sigma(epsilon, delta, 2.0)
    assert _delta_of(sigma, epsilon, 2.0) <= delta
    assert _delta_of(sigma * 0.999, epsilon, 2.0) > delta


def test_analytic_sigma_matches_a_published_value():
    # the analytic Gaussian mechanism at ε = 1, δ = 1e-5, Δ = 1: σ ≈ 3.73 (classical: 4.84)
    assert analytic_gaussian_sigma(1.0, 1e-5, 1.0) == pytest.approx(3.7306, abs=1e-3)
    assert classical_gaussian_sigma(1.0, 1e-5, 1.0) == pytest.approx(4.8448, abs=1e-3)


def test_sigma_scales_with_sensitivity_and_shrinks_with_epsilon():
    assert analytic_gaussian_sigma(1.0, 1e-5, 3.0) == pytest.approx(
        3 * analytic_gaussian_sigma(1.0, 1e-5, 1.0), rel=1e-8
    )
    sigmas = [analytic_gaussian_sigma(e, 1e-5, 1.0) for e in (0.5, 1, 2, 4, 8)]
    assert all(a > b for a, b in itertools.pairwise(sigmas))


def test_clipping_bounds_every_row_and_keeps_short_rows():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(500, 6)) * rng.uniform(0.01, 10, size=(500, 1))
    clipped = clip_rows(Z, 2.0)
    norms = np.linalg.norm(clipped, axis=1)
    assert norms.max() <= 2.0 + 1e-9
    short = np.linalg.norm(Z, axis=1) <= 2.0
    np.testing.assert_allclose(clipped[short], Z[short])


def test_released_noise_has_the_calibrated_std():
    Z = np.zeros((20_000, 5))
    noisy, meta = release_latents(Z, epsilon=1.0, delta=1e-5, clip=1.0, seed=0)
    assert meta["sensitivity"] == 2.0  # replace-one neighbours: Δ = 2C
    assert meta["noise_std"] == pytest.approx(analytic_gaussian_sigma(1.0, 1e-5, 2.0))
    assert noisy.std() == pytest.approx(meta["noise_std"], rel=0.02)
    assert abs(noisy.mean()) < 0.05 * meta["noise_std"]
    assert "seed" not in meta


def test_bad_parameters_are_refused():
    with pytest.raises(ConfigError, match="epsilon"):
        analytic_gaussian_sigma(0.0, 1e-5, 1.0)
    with pytest.raises(ConfigError, match="delta"):
        analytic_gaussian_sigma(1.0, 1.5, 1.0)
    with pytest.raises(ConfigError, match="clipping"):
        release_latents(np.ones((3, 2)), 1.0, 1e-5, clip=-1.0)
    assert math.isfinite(analytic_gaussian_sigma(50.0, 1e-9, 1.0))


def test_release_noise_is_fresh_unless_a_seed_is_given():
    Z = np.zeros((50, 4))
    first, _ = release_latents(Z, epsilon=1.0, delta=1e-5, clip=1.0)
    second, _ = release_latents(Z, epsilon=1.0, delta=1e-5, clip=1.0)
    assert not np.allclose(first, second)
    fixed, _ = release_latents(Z, epsilon=1.0, delta=1e-5, clip=1.0, seed=4)
    np.testing.assert_array_equal(fixed, release_latents(Z, 1.0, 1e-5, 1.0, seed=4)[0])


def test_fds_release_never_draws_its_noise_from_the_models_seed(tmp_path):
    """Two releases of the same latents differ; the run's stored seed does not reproduce them,
    an explicit noise seed does."""
    from fds.estimator import FDS
    from fds.workflows.release import release_run

    table = pd.DataFrame(np.random.default_rng(0).normal(size=(60, 3)), columns=list("abc"))
    model = FDS(latent_dim=2, hidden_dims=[16], epochs=1, seed=0, verbose=False).fit(table)
    model.save(tmp_path / "run" / "model")
    table.iloc[:20].to_csv(tmp_path / "x.csv", index=False)

    def release(name: str, seed: int | None) -> np.ndarray:
        out = tmp_path / f"{name}.npy"
        release_run(
            tmp_path / "run", str(tmp_path / "x.csv"), out, epsilon=1.0, delta=1e-5, seed=seed
        )
        return np.load(out)

    first, second = release("a", None), release("b", None)
    assert not np.allclose(first, second)
    assert not np.allclose(first, release("c", model.seed))
    np.testing.assert_array_equal(release("d", 9), release("e", 9))
