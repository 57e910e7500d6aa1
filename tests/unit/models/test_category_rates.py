"""Category frequencies of samples match the training rows' (fds.models.category_rates), and a
table's codes are drawn from the aggregate posterior's moments, not N(0, I)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fds import FDS
from fds.models.category_rates import fit_softmax_shift
from tests.conftest import FAST


def test_the_softmax_shift_moves_the_mean_probabilities_onto_the_frequencies() -> None:
    logits = torch.randn(5_000, 4, generator=torch.Generator().manual_seed(0)) * 2
    logits[:, 0] += 3.0  # the model favours category 0 far more than the data does
    wanted = torch.tensor([0.1, 0.2, 0.3, 0.4])
    shift = fit_softmax_shift(logits, wanted)
    got = torch.softmax(logits + shift, dim=1).mean(0)
    assert torch.allclose(got, wanted, atol=1e-4)
    assert not torch.allclose(torch.softmax(logits, dim=1).mean(0), wanted, atol=0.05)


def _table(n: int = 1_000) -> pd.DataFrame:
    """An imbalanced category (70/20/7/3%), a binary flag (15%) tied to it, a number."""
    rng = np.random.default_rng(0)
    city = rng.choice(["bern", "basel", "chur", "sion"], n, p=[0.7, 0.2, 0.07, 0.03])
    return pd.DataFrame(
        {
            "city": city,
            "member": np.where(city == "bern", rng.random(n) < 0.05, rng.random(n) < 0.4),
            "income": np.round(rng.lognormal(10, 0.5, n), 2),
        }
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[FDS, pd.DataFrame]:
    table = _table()
    return FDS(**FAST | {"epochs": 3, "val_fraction": 0.0}).fit(table), table


def test_sampled_category_rates_match_the_training_rows(fitted) -> None:
    model, table = fitted
    samples = model.sample(20_000, seed=1)
    for column in ("city", "member"):
        want = table[column].value_counts(normalize=True)
        got = samples[column].value_counts(normalize=True).reindex(want.index, fill_value=0)
        assert np.abs(got - want).max() < 0.015, column


def test_the_shift_survives_save_and_load(fitted, tmp_path: Path) -> None:
    model, _ = fitted
    loaded = FDS.load(model.save(tmp_path / "model"))
    assert torch.equal(loaded.category_shift_, model.category_shift_)
    pd.testing.assert_frame_equal(loaded.sample(500, seed=3), model.sample(500, seed=3))


def test_a_table_vae_draws_codes_from_its_aggregate_posterior(fitted) -> None:
    model, table = fitted
    means = model.transform(table)
    np.testing.assert_allclose(model.latent_loc_.numpy(), means.mean(0), atol=1e-4)
    cov = (model.latent_scale_tril_ @ model.latent_scale_tril_.T).numpy()
    # the spread of the posterior means plus the mean posterior variance: wider than the means
    assert (np.diag(cov) > means.var(0)).all()


def test_an_image_vae_keeps_the_standard_normal(digits: np.ndarray) -> None:
    model = FDS(**FAST | {"epochs": 1}).fit(digits)
    assert torch.equal(model.latent_loc_, torch.zeros(FAST["latent_dim"]))
    assert torch.equal(model.latent_scale_tril_, torch.eye(FAST["latent_dim"]))
