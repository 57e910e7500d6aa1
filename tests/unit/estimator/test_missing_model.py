"""missing: model (the default): samples miss each column as often as the training rows do, and
where the data misses more (one group), the samples do too; the shift that matches the rates is
saved with the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fds import FDS

PARAMS = {"epochs": 30, "seed": 0, "verbose": False}


def _table(n: int = 800) -> pd.DataFrame:
    """income is missing for half of group A and 5% of group B; city for 10% of the rows."""
    rng = np.random.default_rng(0)
    group = rng.choice(["A", "B"], n, p=[0.3, 0.7])
    income = np.round(rng.lognormal(10, 0.5, n), 2)
    gone = rng.random(n) < np.where(group == "A", 0.5, 0.05)
    city = rng.choice(["bern", "basel", "chur"], n).astype(object)
    city[rng.random(n) < 0.1] = None
    return pd.DataFrame(
        {
            "group": group,
            "income": np.where(gone, np.nan, income),
            "age": rng.integers(20, 65, n),
            "city": city,
        }
    )


@pytest.fixture(scope="module")
def fitted() -> tuple[FDS, pd.DataFrame]:
    table = _table()
    return FDS(**PARAMS).fit(table), table


def test_sampled_missing_rates_match_the_training_rows(fitted) -> None:
    model, table = fitted
    samples = model.sample(20_000, seed=1)
    for column in ("income", "city"):
        assert samples[column].isna().mean() == pytest.approx(table[column].isna().mean(), abs=0.01)
    assert samples[["group", "age"]].notna().all().all()
    assert samples["age"].dtype == np.int64


def test_the_link_between_missingness_and_other_columns_is_kept(fitted) -> None:
    model, _ = fitted
    samples = model.sample(20_000, seed=2)
    rate = samples["income"].isna().groupby(samples["group"]).mean()
    assert rate["A"] > rate["B"] + 0.2  # the data: 50% against 5%


def test_the_rates_survive_save_and_load(fitted, tmp_path: Path) -> None:
    model, _ = fitted
    loaded = FDS.load(model.save(tmp_path / "model"))
    pd.testing.assert_frame_equal(loaded.sample(500, seed=3), model.sample(500, seed=3))


def test_drop_trains_on_the_complete_rows_and_samples_none_missing() -> None:
    table = _table(300)
    model = FDS(**PARAMS | {"epochs": 2, "missing": "drop"}).fit(table)
    assert not model.sample(300, seed=0).isna().any().any()
