"""The FDS estimator as a user drives it: scikit-learn conventions, types in = types out, files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from torch import nn

from fds import FDS, ConfigError, DataError
from fds.config import PRESETS
from tests.conftest import FAST


def test_params_follow_sklearn_conventions() -> None:
    m = FDS(preset="beta_tcvae", latent_dim=7)
    params = m.get_params()
    assert params["preset"] == "beta_tcvae" and params["latent_dim"] == 7
    assert params["epochs"] == 20  # untouched defaults come from the config
    m.set_params(latent_dim=4)
    assert clone(m).get_params()["latent_dim"] == 4
    assert not hasattr(m, "model_")


def test_unknown_parameter_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match="latent_dim"):
        FDS(latent_dims=3)


def test_unknown_preset_fails_at_fit_with_suggestion(digits: np.ndarray) -> None:
    with pytest.raises(ConfigError, match="beta_vae"):
        FDS(preset="beta-vae", **FAST).fit(digits)


def test_not_fitted_errors() -> None:
    m = FDS()
    for call in (lambda: m.transform(np.zeros((2, 3))), lambda: m.sample(3), lambda: m.save("x")):
        with pytest.raises(NotFittedError):
            call()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_trains_and_round_trips_images(preset: str, digits: np.ndarray) -> None:
    # the fds preset's private block needs a sensitive attribute to carry
    key = {"sensitive": np.arange(len(digits)) % 2} if PRESETS[preset].get("private_dim") else {}
    m = FDS(preset=preset, **FAST).fit(digits, **key)
    Z = m.transform(digits)
    assert Z.shape == (len(digits), 3) and np.isfinite(Z).all()
    X_hat = m.inverse_transform(Z)
    assert X_hat.shape == digits.shape and X_hat.dtype == np.uint8
    S = m.sample(5, seed=1)
    assert S.shape == (5, 8, 8) and S.dtype == np.uint8
    assert np.isfinite(m.score(digits))
    assert m.n_features_in_ == 64


def test_training_improves_the_elbo(digits: np.ndarray) -> None:
    short = FDS(**(FAST | {"epochs": 1})).fit(digits).score(digits)
    longer = FDS(**(FAST | {"epochs": 15})).fit(digits).score(digits)
    assert longer > short + 1.0


def test_dataframe_in_dataframe_out(census: pd.DataFrame) -> None:
    m = FDS(**FAST).fit(census)
    back = m.inverse_transform(m.transform(census))
    assert isinstance(back, pd.DataFrame)
    assert list(back.columns) == list(census.columns)
    assert set(back["occupation"]) <= set(census["occupation"])
    synthetic = m.sample(50, seed=0)
    assert list(synthetic.columns) == list(census.columns) and len(synthetic) == 50
    assert list(m.feature_names_in_) == list(census.columns)


def test_sample_is_reproducible_per_seed_and_fresh_without_one(census: pd.DataFrame) -> None:
    m = FDS(**FAST).fit(census)
    pd.testing.assert_frame_equal(m.sample(20, seed=3), m.sample(20, seed=3))
    assert not m.sample(20, seed=3).equals(m.sample(20, seed=4))
    # no seed: fresh OS noise, not the model's stored seed, at every call
    assert not m.sample(20).equals(m.sample(20))
    assert not m.sample(20).equals(m.sample(20, seed=m.seed))


def test_transform_draws_fresh_noise_unless_seeded(digits: np.ndarray) -> None:
    """Draws an attacker holding the model directory cannot regenerate (issue 12)."""
    m = FDS(preset="vae", **FAST).fit(digits)
    means = m.transform(digits)
    first, second = m.transform(digits, sample=True), m.transform(digits, sample=True)
    assert not np.allclose(first, means) and not np.allclose(first, second)
    assert not np.allclose(first, m.transform(digits, sample=True, seed=m.seed))
    np.testing.assert_array_equal(
        m.transform(digits, sample=True, seed=7), m.transform(digits, sample=True, seed=7)
    )
    np.testing.assert_array_equal(m.transform(digits), means)  # means need no noise


def test_same_seed_same_numbers(census: pd.DataFrame) -> None:
    a = FDS(**FAST, seed=5).fit(census).transform(census)
    b = FDS(**FAST, seed=5).fit(census).transform(census)
    np.testing.assert_array_equal(a, b)


def test_array_in_array_out() -> None:
    X = np.random.default_rng(0).normal(size=(200, 6))
    m = FDS(**FAST).fit(X)
    back = m.inverse_transform(m.transform(X))
    assert isinstance(back, np.ndarray) and back.shape == X.shape
    assert m.n_features_in_ == 6


def test_save_load_gives_identical_outputs(tmp_path, census: pd.DataFrame) -> None:
    m = FDS(**FAST).fit(census)
    m.save(tmp_path / "model")
    loaded = FDS.load(tmp_path / "model")
    np.testing.assert_array_equal(loaded.transform(census), m.transform(census))
    pd.testing.assert_frame_equal(loaded.sample(10, seed=2), m.sample(10, seed=2))


def test_pipeline_and_grid_search_choose_latent_dim(digits: np.ndarray) -> None:
    flat = digits.reshape(len(digits), -1).astype(np.float32) / 255
    pipe = make_pipeline(FunctionTransformer(), FDS(**FAST))
    search = GridSearchCV(pipe, {"fds__latent_dim": [1, 4]}, cv=2).fit(flat)
    assert search.best_params_["fds__latent_dim"] in (1, 4)
    assert search.transform(flat).shape[1] == search.best_params_["fds__latent_dim"]


def test_custom_modules_are_used(digits: np.ndarray) -> None:
    encoder = nn.Sequential(nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, 6))  # 2 × latent 3
    decoder = nn.Sequential(nn.Linear(3, 64))
    m = FDS(**FAST, encoder=encoder, decoder=decoder).fit(digits)
    assert m.model_.encoder is encoder
    with pytest.raises(ConfigError, match="encoder must output 6"):
        FDS(**FAST, encoder=nn.Linear(64, 5)).fit(digits)


def test_conv_architecture_on_images(digits: np.ndarray) -> None:
    m = FDS(**(FAST | {"epochs": 4}), architecture="conv").fit(digits)
    assert any(isinstance(layer, nn.Conv2d) for layer in m.model_.encoder.modules())
    assert m.inverse_transform(m.transform(digits[:4])).shape == (4, 8, 8)
    elbo = [epoch["val_elbo"] for epoch in m.history_]
    assert elbo[-1] > elbo[0]  # the conv nets learn, not just run


@pytest.mark.parametrize("likelihood", ["gaussian", "gaussian_learned", "mixture"])
def test_real_likelihoods_on_tables(likelihood: str, census: pd.DataFrame) -> None:
    short = FDS(**(FAST | {"epochs": 1}), likelihood=likelihood).fit(census)
    longer = FDS(**(FAST | {"epochs": 4}), likelihood=likelihood).fit(census)
    continuous = type(longer.model_.likelihood.heads[0]).__name__  # the census' continuous columns
    assert continuous == {"gaussian": "Gaussian", "gaussian_learned": "GaussianLearned"}.get(
        likelihood, "MixtureOfGaussians"
    )
    assert longer.score(census) > short.score(census)  # the likelihood is learned, not just finite


def test_deterministic_codes_sample_from_fitted_gaussian(digits: np.ndarray) -> None:
    m = FDS(preset="ae", **FAST, val_fraction=0.0).fit(digits)
    codes = m.transform(digits)
    np.testing.assert_allclose(m.latent_loc_.numpy(), codes.mean(0), atol=1e-4)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (np.zeros((0, 4)), "empty"),
        (np.array([[1.0, np.nan], [2.0, 3.0]]), "missing value"),
        (np.array([[1.0, np.inf], [2.0, 3.0]]), "inf"),
        (np.zeros((3, 2, 2, 2, 2)), "shape"),
        ("not data", "DataFrame or a numpy array"),
        (np.full((4, 5, 5), 2.0), r"\[0, 1\]"),
    ],
)
def test_bad_training_data_names_the_problem(data, message: str) -> None:
    with pytest.raises(DataError, match=message):
        FDS(**FAST, missing="error").fit(data)


def test_bad_inputs_after_fit(census: pd.DataFrame) -> None:
    m = FDS(**FAST).fit(census)
    with pytest.raises(DataError, match="occupation"):
        m.transform(census.assign(occupation="astronaut"))
    with pytest.raises(DataError, match="lacks column 'age'"):
        m.transform(census.drop(columns="age"))
    with pytest.raises(DataError, match=r"shape \(N, 3\)"):
        m.inverse_transform(np.zeros((2, 4)))
    with pytest.raises(DataError, match="images"):
        m.transform(np.zeros((2, 8, 8), dtype=np.uint8))
    with pytest.raises(DataError, match="at least 1"):
        m.sample(0)


def test_bernoulli_refused_for_tables(census: pd.DataFrame) -> None:
    with pytest.raises(ConfigError, match="bernoulli"):
        FDS(**FAST, likelihood="bernoulli").fit(census)


def test_missing_values_policy(census: pd.DataFrame) -> None:
    holes = census.copy()
    holes.loc[holes.index[5], "income"] = np.nan
    with pytest.raises(DataError, match=r"'income' has a missing value \(NaN\) at row 5"):
        FDS(**FAST, missing="error").fit(holes)
    m = FDS(**FAST, missing="impute").fit(holes)
    assert not m.inverse_transform(m.transform(holes)).isna().any().any()
    holes.loc[holes.index[::4], "income"] = np.nan
    m = FDS(**FAST).fit(holes)  # missing: model, the default: samples keep the missing rate
    assert np.isfinite(m.transform(holes)).all()
    rate = m.sample(5000, seed=0)["income"].isna().mean()
    assert rate == pytest.approx(holes["income"].isna().mean(), abs=0.03)


def test_memory_mapped_images_are_read_batch_by_batch(tmp_path, digits: np.ndarray) -> None:
    np.save(tmp_path / "x.npy", digits)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")
    m = FDS(**FAST).fit(mapped)
    assert isinstance(mapped, np.memmap)  # never copied into RAM as a whole by fit
    assert m.transform(mapped).shape == (len(digits), 3)
    torch.testing.assert_close(
        torch.from_numpy(m.transform(mapped)), torch.from_numpy(m.transform(digits))
    )
