"""What every disentanglement metric shares: input checks, sample budgets, binning, entropy.

Every metric is a pure function ``metric(factors, codes, **kw) -> dict``: ``factors`` is an (N, K)
array (or DataFrame) of integer factor codes, ``codes`` the (N, D) latent means of the same rows.
Defaults follow disentanglement_lib (Locatello et al., "Challenging Common Assumptions in the
Unsupervised Learning of Disentangled Representations", ICML 2019), so scores are comparable with
published ones. disentanglement_lib draws fresh samples from a simulator; we have a fixed data set,
so every "sample" is a seeded draw of rows from it, and ``fast=True`` shrinks every sample budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats
from numpy.typing import ArrayLike

from fds.errors import ConfigError, DataError

__all__ = [
    "FAST_BUDGET",
    "FULL_BUDGET",
    "Budget",
    "FactorsLike",
    "discretize",
    "entropy",
    "require_variation",
    "sample_budget",
    "split_rows",
    "subsample_rows",
    "validate_inputs",
]

FactorsLike = ArrayLike | pd.DataFrame


@dataclass(frozen=True)
class Budget:
    """Sample budgets: disentanglement_lib's gin defaults, or a small set for tests and previews."""

    train: int  # rows to fit on (MIG: rows to estimate mutual information from)
    test: int  # held-out rows to score on
    train_votes: int  # FactorVAE majority-vote training points
    eval_votes: int  # FactorVAE evaluation points
    n_estimators: int  # boosting stages per DCI factor (sklearn's default is 100)


FULL_BUDGET = Budget(
    train=10_000, test=5_000, train_votes=10_000, eval_votes=5_000, n_estimators=100
)
FAST_BUDGET = Budget(train=2_000, test=1_000, train_votes=800, eval_votes=800, n_estimators=20)


def sample_budget(fast: bool) -> Budget:
    """The full budget, or the small one when `fast`."""
    return FAST_BUDGET if fast else FULL_BUDGET


def discretize(codes: ArrayLike, n_bins: int = 20) -> np.ndarray:
    """Bin each column of `codes` into `n_bins` equal-width bins over its range (labels 1..n_bins).

    MIG needs discrete codes to estimate mutual information with a histogram; this is
    disentanglement_lib's ``histogram_discretizer``.
    """
    if n_bins < 1:
        raise ConfigError(f"n_bins must be at least 1, got {n_bins}")
    values = np.asarray(codes, dtype=np.float64)
    if values.ndim != 2:
        raise DataError(f"codes must be a 2-D (samples, dims) array, got shape {values.shape}")
    binned = np.empty(values.shape, dtype=np.int64)
    for d, column in enumerate(values.T):
        edges = np.histogram(column, bins=n_bins)[1]
        binned[:, d] = np.digitize(column, edges[:-1])
    return binned


def entropy(weights: ArrayLike, *, axis: int = -1, normalized: bool = False) -> np.ndarray | float:
    """Shannon entropy (nats) of non-negative `weights`, each slice along `axis` scaled to sum to 1.

    Counts give a factor's empirical entropy (MIG's normaliser); with ``normalized=True`` the result
    is divided by log(n) so that a uniform spread scores 1 — DCI's "entropy base K" — and a single
    outcome (n = 1) has entropy 0 rather than 0/0.
    """
    w = np.asarray(weights, dtype=np.float64)
    h = scipy.stats.entropy(w, axis=axis)
    if not normalized:
        return h
    n = w.shape[axis]
    return h / np.log(n) if n > 1 else np.zeros_like(h)


def _factor_names(factors: FactorsLike, k: int) -> list[str]:
    if isinstance(factors, pd.DataFrame):
        return [repr(str(c)) for c in factors.columns]
    return [str(j) for j in range(k)]


def validate_inputs(
    factors: FactorsLike,
    codes: ArrayLike,
    *,
    discrete: bool = True,
    min_dims: int = 1,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Check shapes and values once, so each metric fails with one line naming the culprit.

    Returns factors (int64, or float64 when not `discrete`), codes as float64, and factor names.
    """
    if isinstance(factors, pd.DataFrame):
        for name in factors.columns:
            if factors[name].dtype.kind not in "biuf":
                raise DataError(
                    f"factor column {str(name)!r} has dtype {factors[name].dtype}; "
                    "encode it as integer codes"
                )
    f = np.asarray(factors)
    c = np.asarray(codes)
    if f.dtype.kind not in "biuf":
        raise DataError(f"factors must be numeric integer codes, got dtype {f.dtype}")
    if c.dtype.kind not in "biuf":
        raise DataError(f"codes must be numeric, got dtype {c.dtype}")
    if f.ndim != 2:
        raise DataError(
            f"factors must be a 2-D (samples, factors) array, got shape {f.shape}; "
            "use reshape(-1, 1) for a single factor"
        )
    if c.ndim != 2:
        raise DataError(f"codes must be a 2-D (samples, dims) array, got shape {c.shape}")
    if len(f) != len(c):
        raise DataError(
            f"factors have {len(f)} rows but codes have {len(c)}; "
            "they must describe the same samples"
        )
    if len(f) < 2:
        raise DataError(f"disentanglement metrics need at least 2 samples, got {len(f)}")
    if f.shape[1] < 1:
        raise DataError("factors have no columns")
    if c.shape[1] < min_dims:
        raise DataError(f"this metric needs at least {min_dims} code dims, got {c.shape[1]}")
    c = c.astype(np.float64)
    bad = ~np.isfinite(c)
    if bad.any():
        row, dim = np.argwhere(bad)[0]
        raise DataError(
            f"codes contain {int(bad.sum())} NaN/inf values (first at row {row}, dim {dim})"
        )
    f = f.astype(np.float64)
    names = _factor_names(factors, f.shape[1])
    for j, name in enumerate(names):
        column = f[:, j]
        if not np.isfinite(column).all():
            raise DataError(f"factor column {name} contains NaN/inf values")
        if discrete and not np.array_equal(column, np.round(column)):
            raise DataError(f"factor column {name} has non-integer values; pass integer codes")
    require_variation(f, names)
    return (f.astype(np.int64) if discrete else f), c, names


def require_variation(factors: np.ndarray, names: list[str], where: str = "") -> None:
    """A factor that never changes has zero entropy and a single class: no metric is defined."""
    for j, name in enumerate(names):
        if np.all(factors[:, j] == factors[0, j]):
            raise DataError(
                f"factor column {name} is constant{where}; it cannot be disentangled, drop it"
            )


def subsample_rows(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """At most `size` distinct rows: disentanglement_lib's sample size, bounded by the data."""
    return np.arange(n) if n <= size else np.sort(rng.choice(n, size=size, replace=False))


def split_rows(
    n: int, n_train: int, n_test: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint seeded train/test rows; data smaller than the budget is split in the same ratio."""
    if n < n_train + n_test:
        n_train = min(n - 1, max(1, round(n * n_train / (n_train + n_test))))
        n_test = n - n_train
    order = rng.permutation(n)
    return order[:n_train], order[n_train : n_train + n_test]
