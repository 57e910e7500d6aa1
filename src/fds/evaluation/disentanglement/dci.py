"""DCI: Eastwood & Williams, "A Framework for the Quantitative Evaluation of Disentangled
Representations", ICLR 2018."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.ensemble import GradientBoostingClassifier

from fds.evaluation.disentanglement.common import (
    FactorsLike,
    entropy,
    require_variation,
    sample_budget,
    split_rows,
    validate_inputs,
)

__all__ = ["dci"]


def _weighted_specificity(importance: np.ndarray) -> float:
    """Mean over rows of 1 − normalised entropy of the row, weighted by the row's total importance.

    On the (codes × factors) matrix this is DCI disentanglement; on its transpose, completeness.
    The 1e-11 and the uniform fallback for an all-zero matrix are disentanglement_lib's.
    """
    per_row = 1.0 - entropy(importance + 1e-11, axis=1, normalized=True)
    total = importance.sum()
    weights = (
        importance.sum(axis=1) / total
        if total > 0
        else np.full(len(importance), 1.0 / len(importance))
    )
    return float(np.dot(per_row, weights))


def dci(
    factors: FactorsLike,
    codes: ArrayLike,
    *,
    n_train: int | None = None,
    n_test: int | None = None,
    fast: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Disentanglement, completeness and informativeness (Eastwood & Williams 2018).

    One gradient-boosted tree classifier per factor predicts it from all codes; its feature
    importances form the (codes × factors) importance matrix. Informativeness is the mean held-out
    accuracy. Splits default to disentanglement_lib's 10 000 train / 5 000 test rows; fast mode
    uses 2 000 / 1 000 rows and 20 boosting stages instead of 100.
    """
    f, c, names = validate_inputs(factors, codes)
    budget = sample_budget(fast)
    train, test = split_rows(
        len(f), n_train or budget.train, n_test or budget.test, np.random.default_rng(seed)
    )
    require_variation(f[train], names, " in the training split")
    importance = np.zeros((c.shape[1], f.shape[1]))
    accuracy = []
    for k in range(f.shape[1]):
        model = GradientBoostingClassifier(n_estimators=budget.n_estimators, random_state=seed)
        model.fit(c[train], f[train, k])
        importance[:, k] = np.abs(model.feature_importances_)
        accuracy.append(model.score(c[test], f[test, k]))
    return {
        "disentanglement": _weighted_specificity(importance),
        "completeness": _weighted_specificity(importance.T),
        "informativeness": float(np.mean(accuracy)),
        "importance": importance.tolist(),
    }
