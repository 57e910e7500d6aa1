"""The leakage estimator's MLP ensemble: learns nonlinear maps, repeats itself per seed, copes
with too few rows to stop early."""

from __future__ import annotations

import numpy as np

from fds.privacy.mlp_ensemble import MLPEnsembleClassifier, MLPEnsembleRegressor

SMALL = {"hidden": (32, 32), "members": 2, "max_epochs": 80, "patience": 10}


def test_classifier_reads_a_nonlinear_attribute_and_repeats_per_seed() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1200, 3))
    y = np.where((X[:, 0] > 0) ^ (X[:, 1] > 0), "yes", "no")
    model = MLPEnsembleClassifier(**SMALL, random_state=1).fit(X[:900], y[:900])
    assert list(model.classes_) == ["no", "yes"] and len(model.epochs_) == 2
    proba = model.predict_proba(X[900:])
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert (model.predict(X[900:]) == y[900:]).mean() > 0.9
    again = MLPEnsembleClassifier(**SMALL, random_state=1).fit(X[:900], y[:900])
    np.testing.assert_array_equal(again.predict_proba(X[900:]), proba)
    other = MLPEnsembleClassifier(**SMALL, random_state=2).fit(X[:900], y[:900])
    assert not np.array_equal(other.predict_proba(X[900:]), proba)


def test_members_stop_on_their_own_and_keep_their_best_weights() -> None:
    """Pure noise: every member's validation loss stops improving early, each at its own
    epoch, and the restored weights predict no worse than the base rate."""
    rng = np.random.default_rng(3)
    X, y = rng.normal(size=(600, 2)), rng.integers(0, 2, size=600)
    model = MLPEnsembleClassifier(**SMALL | {"members": 3, "max_epochs": 200}).fit(X, y)
    assert all(epochs < 200 for epochs in model.epochs_), model.epochs_
    assert len(set(model.epochs_)) > 1  # stacked, yet stopped one by one
    proba = model.predict_proba(rng.normal(size=(400, 2)))
    assert np.abs(proba[:, 1] - y.mean()).max() < 0.25  # the best weights: near the base rate


def test_regressor_fits_a_curve_in_the_targets_units() -> None:
    rng = np.random.default_rng(1)
    X = rng.uniform(-3, 3, size=(1000, 1))
    y = 100.0 + 50.0 * np.sin(X[:, 0])
    model = MLPEnsembleRegressor(**SMALL).fit(X[:800], y[:800])
    residual = model.predict(X[800:]) - y[800:]
    assert np.mean(residual**2) < 0.1 * np.var(y[800:])


def test_too_few_rows_to_stop_early_still_fit() -> None:
    X = np.arange(10.0)[:, None]
    y = (X[:, 0] > 4).astype(int)
    model = MLPEnsembleClassifier(**SMALL | {"max_epochs": 300}).fit(X, y)
    assert (model.predict(X) == y).mean() >= 0.9
