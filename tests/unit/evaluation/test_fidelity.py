"""Faithful-value figures and DCR on small hand-made tables whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fds.errors import DataError
from fds.evaluation.dcr import dcr_share, exact_copy_rate
from fds.evaluation.fidelity import (
    category_coverage,
    missing_rates,
    out_of_support,
    precision_kept,
    table_fidelity,
)
from fds.evaluation.synthetic import pair_trends, table_quality


def _table(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "age": rng.integers(21, 65, n),
            "wage": np.round(rng.lognormal(3, 0.5, n), 2),
            "sex": rng.choice(["f", "m"], n),
        }
    )


def test_one_value_outside_the_training_range_is_a_rate_of_one_over_n() -> None:
    train = _table()
    sample = _table(seed=1)
    sample["age"] = sample["age"].clip(21, 64)
    sample["wage"] = sample["wage"].clip(train["wage"].min(), train["wage"].max())
    assert out_of_support(train, sample)["rate"] == 0.0
    sample.loc[7, "age"] = 115  # the impossible age
    result = out_of_support(train, sample)
    assert result["rate"] == pytest.approx(1 / len(sample))
    assert result["columns"]["age"]["rate"] == pytest.approx(1 / len(sample))
    assert result["columns"]["age"]["synthetic_max"] == 115
    assert result["columns"]["wage"]["rate"] == 0.0
    sample.loc[3, "sex"] = "x"  # a category never seen counts too
    result = out_of_support(train, sample)
    assert result["columns"]["sex"] == {"rate": pytest.approx(1 / len(sample)), "unseen": ["x"]}
    assert result["n_rows_outside"] == 2


def test_missing_rate_error_is_the_absolute_difference_per_column() -> None:
    train = _table()
    train.loc[: len(train) // 10 - 1, "wage"] = np.nan  # 10% missing
    result = missing_rates(train, _table(seed=1))  # 0% missing
    assert result["columns"]["wage"] == {"real": 0.1, "synthetic": 0.0, "error": 0.1}
    assert result["max_error"] == pytest.approx(0.1)
    assert result["columns_with_missing"] == ["wage"]
    assert result["columns"]["age"]["error"] == 0.0


def test_a_rare_category_never_sampled_lowers_coverage() -> None:
    train = _table(1000)
    train.loc[:9, "sex"] = "other"  # 1% of the rows: above the 0.5% floor
    train.loc[10, "sex"] = "tiny"  # 0.1%: below it, not required
    sample = _table(seed=1)
    result = category_coverage(train, sample)
    assert result["columns"]["sex"]["absent"] == ["other"]
    assert result["coverage"] == pytest.approx(2 / 3)
    sample.loc[0, "sex"] = "other"
    assert category_coverage(train, sample)["coverage"] == 1.0


def test_precision_counts_values_with_more_decimals_than_training() -> None:
    train = _table()
    sample = _table(seed=1)
    result = precision_kept(train, sample)
    assert result["columns"]["age"]["decimals"] == 0
    assert result["columns"]["wage"]["decimals"] == 2
    assert result["value_share"] == 1.0 and result["columns_kept"] == 2
    sample["wage"] = sample["wage"].astype(float)
    sample.loc[0, "wage"] = 949.8073887400836  # the unrounded float
    sample["age"] = sample["age"] + 0.5  # no integer left
    result = precision_kept(train, sample)
    assert result["columns"]["wage"]["kept"] == pytest.approx(1 - 1 / len(sample))
    assert result["columns"]["age"]["kept"] == 0.0
    assert result["columns_kept"] == 0


def test_table_fidelity_rejects_a_sample_without_a_column() -> None:
    with pytest.raises(DataError, match="wage"):
        table_fidelity(_table(), _table().drop(columns="wage"))


def test_dcr_share_is_reproducible_with_a_seed_and_flags_copies() -> None:
    train, holdout, fresh = _table(400, 0), _table(200, 1), _table(400, 2)
    first = dcr_share(train, holdout, fresh, n_subsets=4, seed=3)
    assert first == dcr_share(train, holdout, fresh, n_subsets=4, seed=3)
    assert len(first["shares"]) == 4 and first["spread"] == pytest.approx(np.std(first["shares"]))
    assert first["share"] == pytest.approx(np.mean(first["shares"]))
    assert 0.35 < first["share"] < 0.65  # a fresh draw is no closer to train than to holdout
    copied = dcr_share(train, holdout, train.iloc[:200], n_subsets=4, seed=3)
    assert copied["share"] > first["share"] + 0.2
    assert copied["exact_copy_rate"] == 1.0 and first["exact_copy_rate"] == 0.0


def test_exact_copies_match_across_dtypes_and_missing_cells() -> None:
    train = pd.DataFrame({"n": [1, 2, 3], "c": ["a", None, "b"]})
    rows = pd.DataFrame({"n": [1.0, 2.0, 3.5], "c": ["a", np.nan, "b"]})  # as a CSV reads back
    assert exact_copy_rate(train, rows) == pytest.approx(2 / 3)


def test_pair_trends_cover_every_pair_and_bin_on_the_real_range() -> None:
    train, fresh = _table(2000, 0), _table(2000, 1)
    pairs = pair_trends(train, fresh)
    assert len(pairs) == 3 and pairs["score"].min() > 0.9
    # one extreme value must not re-bin the whole column (SDMetrics' report bins each table on
    # its own range: there the same sample with one outlier collapses on every age pair)
    fresh.loc[0, "age"] = 10_000
    mixed = pair_trends(train, fresh).set_index(["a", "b"])["score"]
    assert mixed["age", "sex"] > 0.9


def test_table_quality_names_sdmetrics_thresholded_figure_apart() -> None:
    rng = np.random.default_rng(0)
    real = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300)})
    fake = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300)})
    result = table_quality(real, fake)
    # no strongly related pair: SDMetrics' thresholded figure is null, the all-pairs one is not
    assert result["n_pairs"] == 1 and result["n_pairs_thresholded"] == 0
    assert result["sdmetrics_column_pair_trends_thresholded"] is None
    assert result["column_pair_trends"] is not None
    assert result["sdmetrics_quality_score"] == pytest.approx(result["column_shapes"])


def test_a_collapsed_synthetic_column_scores_its_pairs_as_trendless() -> None:
    train = _table(300)
    train["tenure"] = train["age"] - 20 + np.random.default_rng(1).integers(0, 3, 300)
    collapsed = _table(300, seed=1).assign(tenure=5, wage=np.nan)  # constant and empty columns
    pairs = pair_trends(train, collapsed).set_index(["a", "b"])["score"]
    real_r = np.corrcoef(train["age"], train["tenure"])[0, 1]
    assert pairs["age", "tenure"] == pytest.approx(1 - abs(real_r) / 2)  # counted as r = 0
    assert pairs["age", "wage"] == pytest.approx(
        1 - abs(train[["age", "wage"]].corr().iloc[0, 1]) / 2
    )
