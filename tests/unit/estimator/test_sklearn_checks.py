"""scikit-learn's own estimator checks: FDS must behave like any transformer inside sklearn tooling."""

from __future__ import annotations

import warnings

from sklearn.utils.estimator_checks import parametrize_with_checks

from fds import FDS

TINY = FDS(latent_dim=2, hidden_dims=[8], epochs=1, batch_size=16, verbose=False)


@parametrize_with_checks([TINY])
def test_sklearn_estimator_checks(estimator, check) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(estimator)
