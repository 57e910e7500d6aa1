"""FactorVAE score: Kim & Mnih, "Disentangling by Factorising", ICML 2018."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from fds.errors import ConfigError
from fds.evaluation.disentanglement.common import FactorsLike, sample_budget, validate_inputs

__all__ = ["factor_vae_score"]


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
    f, c, _ = validate_inputs(factors, codes)
    global_variance = c.var(axis=0, ddof=1)
    active = np.sqrt(global_variance) >= prune_threshold
    if not active.any():
        return {"factor_vae_score": 0.0, "active_dims": 0}
    budget = sample_budget(fast)
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
