"""SAP: Kumar et al., "Variational Inference of Disentangled Latent Concepts from Unlabeled
Observations", ICLR 2018."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from sklearn.svm import LinearSVC

from fds.evaluation.disentanglement.common import (
    FactorsLike,
    require_variation,
    sample_budget,
    split_rows,
    validate_inputs,
)

__all__ = ["sap"]


def sap(
    factors: FactorsLike,
    codes: ArrayLike,
    *,
    continuous_factors: bool = False,
    n_train: int | None = None,
    n_test: int | None = None,
    fast: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Separated Attribute Predictability (Kumar et al. 2018), as disentanglement_lib computes it.

    Scores how well each single code dim predicts each factor, then averages over factors the gap
    between the best and second-best dim. Discrete factors: held-out accuracy of a class-balanced
    LinearSVC (C=0.01) on the one dim; continuous factors: squared correlation on the train rows.
    """
    f, c, names = validate_inputs(factors, codes, discrete=not continuous_factors, min_dims=2)
    budget = sample_budget(fast)
    train, test = split_rows(
        len(f), n_train or budget.train, n_test or budget.test, np.random.default_rng(seed)
    )
    require_variation(f[train], names, " in the training split")
    scores = np.zeros((c.shape[1], f.shape[1]))
    for d in range(c.shape[1]):
        for k in range(f.shape[1]):
            if continuous_factors:
                cov = np.cov(c[train, d], f[train, k], ddof=1)
                scores[d, k] = cov[0, 1] ** 2 / (cov[0, 0] * cov[1, 1]) if cov[0, 0] > 1e-12 else 0
            else:
                svm = LinearSVC(C=0.01, class_weight="balanced", random_state=seed)
                svm.fit(c[train, d : d + 1], f[train, k])
                scores[d, k] = svm.score(c[test, d : d + 1], f[test, k])
    top = np.sort(scores, axis=0)
    return {"sap": float(np.mean(top[-1] - top[-2]))}
