"""Disentanglement metrics for codes whose ground-truth generative factors are known.

Every metric is a pure function ``metric(factors, codes, **kw) -> dict``: ``factors`` is an (N, K)
array (or DataFrame) of integer factor codes, ``codes`` the (N, D) latent means of the same rows.
Defaults follow disentanglement_lib (Locatello et al., "Challenging Common Assumptions in the
Unsupervised Learning of Disentangled Representations", ICML 2019), so scores are comparable with
published ones. disentanglement_lib draws fresh samples from a simulator; we have a fixed data set,
so every "sample" is a seeded draw of rows from it, and ``fast=True`` shrinks every sample budget.

- MIG: Chen et al., "Isolating Sources of Disentanglement in Variational Autoencoders",
  NeurIPS 2018.
- DCI: Eastwood & Williams, "A Framework for the Quantitative Evaluation of Disentangled
  Representations", ICLR 2018.
- SAP: Kumar et al., "Variational Inference of Disentangled Latent Concepts from Unlabeled
  Observations", ICLR 2018.
- FactorVAE score: Kim & Mnih, "Disentangling by Factorising", ICML 2018.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats
from numpy.typing import ArrayLike
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.metrics import mutual_info_score
from sklearn.svm import LinearSVC

from fds.errors import ConfigError, DataError

__all__ = [
    "DISENTANGLEMENT_METRICS",
    "dci",
    "discretize",
    "entropy",
    "evaluate_disentanglement",
    "factor_vae_score",
    "mig",
    "sap",
]

FactorsLike = ArrayLike | pd.DataFrame


@dataclass(frozen=True)
class _Budget:
    """Sample budgets: disentanglement_lib's gin defaults, or a small set for tests and previews."""

    train: int  # rows to fit on (MIG: rows to estimate mutual information from)
    test: int  # held-out rows to score on
    train_votes: int  # FactorVAE majority-vote training points
    eval_votes: int  # FactorVAE evaluation points
    n_estimators: int  # boosting stages per DCI factor (sklearn's default is 100)


_FULL = _Budget(train=10_000, test=5_000, train_votes=10_000, eval_votes=5_000, n_estimators=100)
_FAST = _Budget(train=2_000, test=1_000, train_votes=800, eval_votes=800, n_estimators=20)


def _budget(fast: bool) -> _Budget:
    return _FAST if fast else _FULL


# --------------------------------------------------------------------------- shared helpers


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


def _validate(
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
    _require_variation(f, names)
    return (f.astype(np.int64) if discrete else f), c, names


def _require_variation(factors: np.ndarray, names: list[str], where: str = "") -> None:
    """A factor that never changes has zero entropy and a single class: no metric is defined."""
    for j, name in enumerate(names):
        if np.all(factors[:, j] == factors[0, j]):
            raise DataError(
                f"factor column {name} is constant{where}; it cannot be disentangled, drop it"
            )


def _subsample(n: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """At most `size` distinct rows: disentanglement_lib's sample size, bounded by the data."""
    return np.arange(n) if n <= size else np.sort(rng.choice(n, size=size, replace=False))


def _split(
    n: int, n_train: int, n_test: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint seeded train/test rows; data smaller than the budget is split in the same ratio."""
    if n < n_train + n_test:
        n_train = min(n - 1, max(1, round(n * n_train / (n_train + n_test))))
        n_test = n - n_train
    order = rng.permutation(n)
    return order[:n_train], order[n_train : n_train + n_test]


# --------------------------------------------------------------------------- MIG


def mig(
    factors: FactorsLike,
    codes: ArrayLike,
    n_bins: int = 20,
    *,
    n_samples: int | None = None,
    fast: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """Mutual Information Gap (Chen et al. 2018), as disentanglement_lib computes it.

    Each code dim is discretised into `n_bins` equal-width bins; for every factor, the gap between
    the two codes sharing most mutual information with it, divided by the factor's entropy, says
    how exclusively one code captures it. `n_samples` rows are used (default 10 000, fast 2 000).
    """
    f, c, names = _validate(factors, codes, min_dims=2)
    rows = _subsample(len(f), n_samples or _budget(fast).train, np.random.default_rng(seed))
    f, c = f[rows], c[rows]
    _require_variation(f, names, " in the sampled rows")
    binned = discretize(c, n_bins)
    info = np.array([[mutual_info_score(y, z) for y in f.T] for z in binned.T])  # (D, K)
    factor_entropy = np.array([entropy(np.unique(y, return_counts=True)[1]) for y in f.T])
    top = np.sort(info, axis=0)[::-1]
    gaps = (top[0] - top[1]) / factor_entropy
    return {"mig": float(gaps.mean()), "per_factor": gaps.tolist()}


# --------------------------------------------------------------------------- DCI


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
    f, c, names = _validate(factors, codes)
    budget = _budget(fast)
    train, test = _split(
        len(f), n_train or budget.train, n_test or budget.test, np.random.default_rng(seed)
    )
    _require_variation(f[train], names, " in the training split")
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


# --------------------------------------------------------------------------- SAP


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
    f, c, names = _validate(factors, codes, discrete=not continuous_factors, min_dims=2)
    budget = _budget(fast)
    train, test = _split(
        len(f), n_train or budget.train, n_test or budget.test, np.random.default_rng(seed)
    )
    _require_variation(f[train], names, " in the training split")
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


# --------------------------------------------------------------------------- FactorVAE score


def _factor_vae_votes(
    factors: np.ndarray,
    codes: np.ndarray,
    global_variance: np.ndarray,
    active: np.ndarray,
    n_votes: int,
    batch_size: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """(K, D) vote counts: fix a random factor, vote (factor, dim of least normalised variance).

    The fixed value is that of a random row, so values come with their data frequency as in the
    simulator; the batch is drawn with replacement from the rows sharing it (the simulator draws
    the other factors independently, duplicates included).
    """
    n, n_factors = factors.shape
    active_dims = np.flatnonzero(active)
    scale = global_variance[active_dims]
    votes = np.zeros((n_factors, codes.shape[1]), dtype=np.int64)
    chosen = rng.integers(n_factors, size=n_votes)
    chunk = max(1, 2**22 // (batch_size * len(active_dims)))  # bounds the gathered batch to ~32 MB
    for k in range(n_factors):
        _, inverse, counts = np.unique(factors[:, k], return_inverse=True, return_counts=True)
        by_value = np.argsort(inverse, kind="stable")
        starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
        values = inverse[rng.integers(n, size=np.count_nonzero(chosen == k))]
        for lo in range(0, len(values), chunk):
            v = values[lo : lo + chunk, None]
            offsets = (rng.random((len(v), batch_size)) * counts[v]).astype(np.int64)
            batch = codes[by_value[starts[v] + offsets]][:, :, active_dims]
            local = batch.var(axis=1, ddof=1) / scale
            np.add.at(votes[k], active_dims[local.argmin(axis=1)], 1)
    return votes


def factor_vae_score(
    factors: FactorsLike,
    codes: ArrayLike,
    *,
    n_train_votes: int | None = None,
    n_eval_votes: int | None = None,
    batch_size: int = 64,
    prune_threshold: float = 0.05,
    fast: bool = False,
    seed: int = 0,
) -> dict[str, Any]:
    """FactorVAE score (Kim & Mnih 2018): accuracy of a majority-vote classifier dim → factor.

    Dims whose global std is below `prune_threshold` are dropped (collapsed to the prior). Each vote
    fixes one factor over a batch of `batch_size` rows and names the active dim whose variance,
    relative to its global variance, is smallest. Votes default to disentanglement_lib's
    10 000 train / 5 000 eval (fast: 800 / 800); the score is the eval accuracy.
    """
    if batch_size < 2:
        raise ConfigError(f"batch_size must be at least 2 to estimate a variance, got {batch_size}")
    f, c, _ = _validate(factors, codes)
    global_variance = c.var(axis=0, ddof=1)
    active = np.sqrt(global_variance) >= prune_threshold
    if not active.any():
        return {"factor_vae_score": 0.0, "active_dims": 0}
    budget = _budget(fast)
    rng = np.random.default_rng(seed)
    train_votes = _factor_vae_votes(
        f, c, global_variance, active, n_train_votes or budget.train_votes, batch_size, rng
    )
    eval_votes = _factor_vae_votes(
        f, c, global_variance, active, n_eval_votes or budget.eval_votes, batch_size, rng
    )
    classifier = train_votes.argmax(axis=0)
    correct = eval_votes[classifier, np.arange(c.shape[1])].sum()
    return {
        "factor_vae_score": float(correct / eval_votes.sum()),
        "active_dims": int(active.sum()),
    }


# --------------------------------------------------------------------------- registry

DISENTANGLEMENT_METRICS: dict[str, Callable[..., dict[str, Any]]] = {
    "mig": mig,
    "dci": dci,
    "sap": sap,
    "factor_vae": factor_vae_score,
}


def evaluate_disentanglement(
    factors: FactorsLike, codes: ArrayLike, *, fast: bool = False, seed: int = 0
) -> dict[str, float]:
    """Run every registered metric and flatten its scalar results into stable snake_case keys.

    Keys are prefixed with the metric name unless they already carry it: ``mig``,
    ``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness``, ``sap``,
    ``factor_vae_score``, ``factor_vae_active_dims``. Lists (per-factor gaps, importances) are left
    to the individual metrics.
    """
    flat: dict[str, float] = {}
    for name, metric in DISENTANGLEMENT_METRICS.items():
        for key, value in metric(factors, codes, fast=fast, seed=seed).items():
            if isinstance(value, int | float):
                flat[key if key.startswith(name) else f"{name}_{key}"] = value
    return flat
