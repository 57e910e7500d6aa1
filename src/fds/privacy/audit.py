"""Empirical ε audit of differentially private training in one run (Steinke, Nasr & Jagielski 2023,
"Privacy Auditing with One (1) Training Run", arXiv:2305.08846).

m canaries are each put into the training set independently with probability ½. After training,
every canary gets a membership score; the auditor guesses "in" for the k₊ highest scores and "out"
for the k₋ lowest and abstains on the rest. Under (ε, δ)-DP the number of correct guesses is
stochastically dominated by Binomial(r, e^ε/(1+e^ε)) up to a δ-dependent term (their Theorem 3.1);
the largest ε that this test rejects at confidence 1−β is a *lower bound* on the ε of the training
algorithm. It can only certify leakage, never privacy: a correct DP-SGD run must give a bound at
most the accountant's ε (with probability ≥ 1−β), and a broken one (no noise) is caught when the
bound exceeds the claimed ε.

`epsilon_lower_bound` is the paper's Algorithm (their reference `get_eps_audit`, with the alpha
loop vectorised); `audit_dp_training` runs the experiment around any training function.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from fds.errors import DataError

__all__ = ["audit_dp_training", "audit_p_value", "epsilon_lower_bound"]

ScoreFn = Callable[[Any], np.ndarray]
_BISECTIONS = 40


def _check_counts(n_correct: int, n_guesses: int, n_canaries: int, delta: float) -> None:
    if not 0 <= n_correct <= n_guesses <= n_canaries:
        raise DataError(
            "need 0 ≤ n_correct ≤ n_guesses ≤ n_canaries, got "
            f"n_correct={n_correct}, n_guesses={n_guesses}, n_canaries={n_canaries}"
        )
    if not 0 <= delta <= 1:
        raise DataError(f"delta must be in [0, 1], got {delta}")


def audit_p_value(
    n_correct: int, n_guesses: int, n_canaries: int, epsilon: float, delta: float
) -> float:
    """P[≥ n_correct correct guesses] for an (ε, δ)-DP algorithm (the paper's `p_value_DP_audit`)."""
    _check_counts(n_correct, n_guesses, n_canaries, delta)
    v, r = int(n_correct), int(n_guesses)
    q = 1.0 / (1.0 + math.exp(-epsilon))  # accuracy of ε-DP randomized response
    beta = float(stats.binom.sf(v - 1, r, q))  # P[Binomial(r, q) ≥ v]
    if v == 0:
        return 1.0
    # alpha = max_i P[v > Binomial(r, q) ≥ v − i] / i, for i = 1..v
    tail = np.cumsum(stats.binom.pmf(np.arange(v - 1, -1, -1), r, q))
    alpha = float(np.max(tail / np.arange(1, v + 1)))
    return min(beta + alpha * delta * 2 * n_canaries, 1.0)


def epsilon_lower_bound(
    n_correct: int, n_guesses: int, n_canaries: int, delta: float, confidence: float = 0.95
) -> float:
    """Largest ε such that an (ε, δ)-DP algorithm would make ≥ `n_correct` correct guesses out of
    `n_guesses` with probability < 1 − `confidence`: with that confidence the audited algorithm is
    not (ε, δ)-DP for any smaller ε. 0 when the guesses are no better than chance."""
    if not 0 < confidence < 1:
        raise DataError(f"confidence must be in (0, 1), got {confidence}")
    p = 1.0 - confidence
    if audit_p_value(n_correct, n_guesses, n_canaries, 0.0, delta) >= p:
        return 0.0
    low, high = 0.0, 1.0
    while audit_p_value(n_correct, n_guesses, n_canaries, high, delta) < p:
        low, high = high, 2 * high
        if high > 1e4:  # only δ = 0 with every guess right gets here: no finite bound is tight
            return math.inf
    for _ in range(_BISECTIONS):
        mid = (low + high) / 2
        if audit_p_value(n_correct, n_guesses, n_canaries, mid, delta) < p:
            low = mid
        else:
            high = mid
    return low


def guess_counts(
    scores: np.ndarray, included: np.ndarray, k_in: int, k_out: int
) -> tuple[int, int]:
    """(correct, guesses) for "in" on the `k_in` highest scores and "out" on the `k_out` lowest.

    Ties are broken at random beforehand (by the caller's order), never in the auditor's favour."""
    scores = np.asarray(scores, dtype=np.float64)
    included = np.asarray(included, dtype=bool)
    if scores.shape != included.shape:
        raise DataError(f"{len(scores)} scores for {len(included)} canaries")
    if not np.isfinite(scores).all():
        raise DataError("canary scores hold NaN or inf")
    if k_in < 0 or k_out < 0 or k_in + k_out > len(scores):
        raise DataError(f"k_in + k_out = {k_in + k_out} guesses for {len(scores)} canaries")
    order = np.argsort(scores, kind="stable")
    low, high = order[:k_out], order[len(order) - k_in :]
    correct = int(included[high].sum()) + int((~included[low]).sum())
    return correct, k_in + k_out


def audit_dp_training(
    train_fn: Callable[[Any], ScoreFn],
    data: Any,
    canaries: Any,
    *,
    delta: float,
    k_in: int | None = None,
    k_out: int | None = None,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """One training run with canaries, then the ε lower bound.

    `train_fn(rows)` trains on `rows` (the `data` rows followed by the included canaries, same type
    as `data`: array or DataFrame) and returns a function giving a per-example membership score
    (higher = more likely trained on; e.g. `FDS.score_samples` or minus a loss). The guess counts
    default to k₊ = k₋ = m/10: they must be fixed before seeing the scores, since choosing them
    afterwards would turn the test into many tests.

    For FDS's own DP training: ``train_fn = lambda rows: FDS(..., val_fraction=0).fit(rows)
    .score_samples`` (with a validation split some included canaries are never trained on: the
    bound stays valid but gets weaker).
    """
    n = len(canaries)
    if n < 2:
        raise DataError(f"need at least 2 canaries, got {n}")
    k_in = max(1, n // 10) if k_in is None else int(k_in)
    k_out = max(1, n // 10) if k_out is None else int(k_out)
    rng = np.random.default_rng(seed)
    included = rng.random(n) < 0.5
    rows = _concat(data, _take(canaries, np.flatnonzero(included)))
    score_fn = train_fn(rows)
    # a random order first, so a stable sort breaks ties between equal scores at random
    shuffle = rng.permutation(n)
    scores = np.asarray(score_fn(_take(canaries, shuffle)), dtype=np.float64).reshape(-1)
    correct, guesses = guess_counts(scores, included[shuffle], k_in, k_out)
    bound = epsilon_lower_bound(correct, guesses, n, delta, confidence)
    return {
        "epsilon_lower_bound": bound,
        "delta": delta,
        "confidence": confidence,
        "n_canaries": n,
        "n_included": int(included.sum()),
        "k_in": k_in,
        "k_out": k_out,
        "n_guesses": guesses,
        "n_correct": correct,
        "accuracy": correct / guesses if guesses else None,
        "method": "Steinke, Nasr & Jagielski 2023, one training run, canaries included w.p. 1/2",
    }


def _take(X: Any, rows: np.ndarray) -> Any:
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else np.asarray(X)[rows]


def _concat(data: Any, extra: Any) -> Any:
    if isinstance(data, pd.DataFrame):
        return pd.concat([data, extra], ignore_index=True)
    return np.concatenate([np.asarray(data), np.asarray(extra)])
