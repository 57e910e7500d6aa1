"""Synthetic-data quality on constructed cases: copies score high, garbage and shifts score low."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fds.data.datasets import make_census, make_shapes
from fds.errors import DataError
from fds.evaluation.synthetic import image_sample_quality, prdc, table_quality, tstr


def test_prdc_is_about_one_for_the_same_distribution() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(800, 4))
    copy = prdc(real, real, k=5)
    assert copy["precision"] == copy["recall"] == copy["coverage"] == 1.0
    fresh = prdc(real, rng.normal(size=(800, 4)), k=5)
    for key in ("precision", "recall", "coverage"):
        assert fresh[key] > 0.85, key
    assert fresh["density"] == pytest.approx(1.0, abs=0.2)


def test_prdc_precision_and_coverage_fall_for_a_shifted_distribution() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(size=(800, 4))
    shifted = prdc(real, rng.normal(size=(800, 4)) + 3.0, k=5)
    assert shifted["precision"] < 0.2 and shifted["coverage"] < 0.2
    collapsed = prdc(real, rng.normal(scale=0.05, size=(800, 4)), k=5)  # mode collapse
    assert collapsed["precision"] > 0.9 and collapsed["recall"] < 0.2
    assert collapsed["coverage"] < 0.2


def test_prdc_rejects_mismatched_features() -> None:
    with pytest.raises(DataError, match="columns"):
        prdc(np.zeros((10, 3)), np.zeros((10, 2)))


@pytest.fixture(scope="module")
def tables() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    return make_census(600, seed=0), make_census(600, seed=1), make_census(300, seed=2)


def test_table_quality_prefers_a_copy_to_shuffled_garbage(tables) -> None:
    real, other, _ = tables
    copy = table_quality(real, real.copy())
    fresh = table_quality(real, other)  # a new draw from the same generator
    rng = np.random.default_rng(0)
    garbage = real.copy()
    for name in garbage.columns:  # break every pair trend and distort every numeric column
        values = garbage[name].to_numpy()[rng.permutation(len(garbage))]
        if pd.api.types.is_numeric_dtype(garbage[name]) and garbage[name].dtype != bool:
            values = values * 3 + 10
        garbage[name] = values
    bad = table_quality(real, garbage)
    assert set(copy) >= {"quality_score", "column_shapes", "column_pair_trends"}
    assert copy["quality_score"] == pytest.approx(1.0)
    assert fresh["quality_score"] > 0.85
    assert fresh["quality_score"] > bad["quality_score"] + 0.15
    assert fresh["column_shapes"] > bad["column_shapes"] + 0.3
    assert set(copy["column_shape_scores"]) == set(real.columns)


def test_tstr_matches_trtr_for_real_rows_and_names_a_single_class(tables) -> None:
    real, other, test = tables
    result = tstr(real, other, test, "high_income")
    assert result["task"] == "classification" and result["metric"] == "accuracy"
    assert result["tstr"] == pytest.approx(result["trtr"], abs=0.08)
    assert result["tstr"] > result["majority_baseline"] - 0.05
    one_class = other.assign(high_income=0)
    degenerate = tstr(real, one_class, test, "high_income")
    assert degenerate["tstr"] is None and "single class" in degenerate["reason"]
    assert degenerate["trtr"] is not None


def test_tstr_uses_r2_for_a_continuous_target(tables) -> None:
    real, other, test = tables
    result = tstr(real, other, test, "income")
    assert result["metric"] == "r2" and result["tstr"] > 0.2
    with pytest.raises(DataError, match="target column 'salary'"):
        tstr(real, other, test, "salary")


@pytest.fixture(scope="module")
def sprites() -> tuple[np.ndarray, np.ndarray]:
    images, factors = make_shapes(1000, seed=0)
    return images, factors["shape"].to_numpy()


def test_image_quality_scores_real_images_above_noise(sprites) -> None:
    images, labels = sprites
    fresh, _ = make_shapes(200, seed=1)
    good = image_sample_quality(images, labels, fresh, seed=0)
    noise = np.random.default_rng(0).integers(0, 256, size=(200, 32, 32), dtype=np.uint8)
    bad = image_sample_quality(images, labels, noise, seed=0)
    assert good["labels_source"] == "labels" and good["classifier_accuracy"] > 0.4
    assert good["precision"] > 0.7 and good["coverage"] > 0.7
    assert bad["precision"] < 0.1 and bad["coverage"] < 0.1
    assert sum(good["sample_class_histogram"]) == pytest.approx(1.0)
    assert 0.8 < good["sample_class_entropy"] <= 1.0


def test_image_quality_without_labels_uses_clusters(sprites) -> None:
    images, _ = sprites
    result = image_sample_quality(images.astype(np.float32) / 255, None, images[:100], seed=0)
    assert result["labels_source"] == "kmeans" and len(result["classes"]) == 10
    with pytest.raises(DataError, match="samples have shape"):
        image_sample_quality(images, None, np.zeros((10, 8, 8)))
