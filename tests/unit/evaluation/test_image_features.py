"""The image feature space tells blur from real: what makes precision and density truthful for
generators whose samples are blurred means (VAEs), where pixels or their PCA cannot."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from fds.data.datasets import make_shapes
from fds.errors import DataError
from fds.evaluation.image_features import ImageFeatures
from fds.evaluation.synthetic import image_sample_quality


@pytest.fixture(scope="module")
def fitted() -> tuple[ImageFeatures, np.ndarray, np.ndarray, np.ndarray]:
    """A feature net fitted on 1,000 real sprites, and two further real sets (reference, fresh)."""
    train, factors = make_shapes(1000, seed=0)
    features = ImageFeatures(seed=0).fit(train, factors["shape"].to_numpy())
    reference, reference_factors = make_shapes(400, seed=1)
    fresh, _ = make_shapes(400, seed=2)
    return features, reference, reference_factors["shape"].to_numpy(), fresh


def test_blurred_real_images_score_below_real_ones(fitted) -> None:
    features, reference, labels, fresh = fitted
    blurred = gaussian_filter(fresh.astype(np.float32) / 255, sigma=(0, 1.0, 1.0))
    real = image_sample_quality(reference, labels, fresh, seed=0, features=features)
    blur = image_sample_quality(reference, labels, blurred, seed=0, features=features)
    assert real["labels_source"] == "features" and real["n_real"] == len(reference)
    assert real["precision"] > 0.8 and real["density"] > 0.7
    assert blur["precision"] < real["precision"] - 0.1
    assert blur["density"] < 0.7 * real["density"]
    assert blur["coverage"] < real["coverage"]


def test_features_are_deterministic_by_seed(fitted) -> None:
    _, reference, labels, _ = fitted
    one, again, other = (ImageFeatures(seed, epochs=1) for seed in (0, 0, 1))
    for net in (one, again, other):
        net.fit(reference[:200], labels[:200])
    np.testing.assert_array_equal(one.features(reference[200:]), again.features(reference[200:]))
    assert not np.array_equal(one.features(reference[200:]), other.features(reference[200:]))
    assert one.features(reference[:5]).shape == (5, 128)
    assert set(one.predict(reference)) <= set(one.classes_)


def test_bad_images_are_named(fitted) -> None:
    features, reference, labels, _ = fitted
    with pytest.raises(DataError, match="samples have shape"):
        image_sample_quality(reference, labels, np.zeros((10, 28, 28)), features=features)
    with pytest.raises(DataError, match="labels must have shape"):
        ImageFeatures().fit(reference, labels[:-1])
    with pytest.raises(DataError, match="single class"):
        ImageFeatures().fit(reference, np.zeros(len(reference)))
    with pytest.raises(DataError, match="too small"):
        ImageFeatures().fit(np.zeros((20, 3, 3)), np.arange(20) % 2)
