"""Distance to closest record on raw tables, averaged over several reference subsets.

A synthesizer that memorises its training rows puts its samples closer to them than to real rows
it never saw. `dcr_share` measures this on the table itself (not a model's encoding, so any
synthesizer's CSV can be scored alike): the share of synthetic rows whose closest training row is
nearer than their closest held-out row, with as many training as held-out rows, so 0.5 is ideal.
One draw of reference rows is noisy; the figure is the mean over `n_subsets` seeded draws, with
their spread. `exact_copy_rate` counts synthetic rows identical to a training row, beside the
same rate for the held-out rows (real data has duplicates too: that is the floor to compare with).

Distance (Gower-like, as SDMetrics' DCR): the mean over columns of |a − b| / training range for
numbers and of a mismatch for categories; a missing cell differs by at least 1 from any value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from fds.errors import DataError
from fds.evaluation.fidelity import category_labels, column_kind

__all__ = ["dcr_share", "exact_copy_rate"]

_MAX_ROWS = 2000  # rows per side in each subset: exact k-NN stays a few seconds on one core


class _Features:
    """Rows → points whose Manhattan distance / n_columns is the Gower-like distance above,
    fitted on the training rows (ranges and categories)."""

    def __init__(self, train: pd.DataFrame) -> None:
        self.columns = list(train.columns)
        self.numeric: dict[Any, tuple[float, float]] = {}
        self.categories: dict[Any, list[str]] = {}
        for name in self.columns:
            if column_kind(train[name]) == "numerical":
                values = pd.to_numeric(train[name], errors="coerce")
                low, high = float(values.min()), float(values.max())
                if np.isnan(low):
                    low, high = 0.0, 1.0
                self.numeric[name] = (low, (high - low) or 1.0)
            else:
                self.categories[name] = sorted(set(category_labels(train[name]).dropna()))

    def __call__(self, frame: pd.DataFrame) -> np.ndarray:
        parts = []
        for name in self.columns:
            if name in self.numeric:
                low, span = self.numeric[name]
                values = pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64)
                missing = np.isnan(values)
                # a missing cell sits 1 away on its indicator; its value coordinate stays 0
                parts.append(np.where(missing, 0.0, (values - low) / span))
                parts.append(missing.astype(np.float64))
            else:
                labels = category_labels(frame[name])
                known = self.categories[name]
                onehot = np.zeros((len(frame), len(known)), dtype=bool)
                for k, category in enumerate(known):
                    onehot[:, k] = (labels == category).to_numpy()
                missing = labels.isna().to_numpy()[:, None]
                parts.append(0.5 * np.concatenate([onehot, missing], axis=1).astype(np.float64))
        return np.column_stack(parts) / len(self.columns)


def _check(**frames: Any) -> list[pd.DataFrame]:
    columns = None
    for what, frame in frames.items():
        if not isinstance(frame, pd.DataFrame):
            raise DataError(f"{what} must be a pandas DataFrame")
        if len(frame) == 0:
            raise DataError(f"{what} has no rows")
        columns = list(frame.columns) if columns is None else columns
        absent = [c for c in columns if c not in frame.columns]
        if absent:
            raise DataError(f"{what} lacks column {absent[0]!r}")
    return [frame[columns] for frame in frames.values()]


def _closest(reference: np.ndarray, rows: np.ndarray) -> np.ndarray:
    nn = NearestNeighbors(n_neighbors=1, metric="manhattan", algorithm="brute").fit(reference)
    return nn.kneighbors(rows)[0][:, 0]


@threadpool_limits.wrap(limits=1)
def dcr_share(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    synthetic: pd.DataFrame,
    *,
    n_subsets: int = 5,
    max_rows: int = _MAX_ROWS,
    seed: int = 0,
) -> dict[str, Any]:
    """Share of synthetic rows closer to the training rows than to held-out rows (0.5 ideal).

    Each of `n_subsets` seeded draws takes n = min(len(train), len(holdout), `max_rows`) rows
    from each real side and up to `max_rows` synthetic rows; a tie counts half. ``share`` is the
    mean over the draws, ``spread`` their standard deviation, ``shares`` each draw's figure. Also
    ``exact_copy_rate`` (synthetic rows identical to a training row) and
    ``holdout_exact_copy_rate`` (the same for the held-out rows: the rate real data shows)."""
    train, holdout, synthetic = _check(train=train, holdout=holdout, synthetic=synthetic)
    if n_subsets < 1 or max_rows < 1:
        raise DataError(f"n_subsets and max_rows must be at least 1, got {n_subsets}, {max_rows}")
    features = _Features(train)
    T, H, S = features(train), features(holdout), features(synthetic)
    rng = np.random.default_rng(seed)
    n = min(len(T), len(H), max_rows)
    m = min(len(S), max_rows)
    shares = []
    for _ in range(n_subsets):
        t = T[rng.choice(len(T), n, replace=False)]
        h = H[rng.choice(len(H), n, replace=False)]
        s = S[rng.choice(len(S), m, replace=False)]
        d_train, d_hold = _closest(t, s), _closest(h, s)
        shares.append(float(np.mean((d_train < d_hold) + 0.5 * (d_train == d_hold))))
    return {
        "share": float(np.mean(shares)),
        "spread": float(np.std(shares)),
        "shares": shares,
        "ideal": 0.5,
        "n_subsets": n_subsets,
        "n_reference_rows": n,
        "n_synthetic_rows": m,
        "exact_copy_rate": exact_copy_rate(train, synthetic),
        "holdout_exact_copy_rate": exact_copy_rate(train, holdout),
    }


def _row_keys(frame: pd.DataFrame, kinds: dict[Any, str]) -> np.ndarray:
    """One 64-bit hash per row of canonical values: numbers as floats (5 and 5.0 agree), other
    values as strings, missing as a sentinel."""
    canonical = pd.DataFrame(index=range(len(frame)))
    for name, kind in kinds.items():
        if kind == "numerical":
            values = pd.to_numeric(frame[name], errors="coerce").to_numpy(np.float64) + 0.0
            canonical[name] = np.where(np.isnan(values), -np.inf, values)
        else:
            canonical[name] = category_labels(frame[name]).fillna("\x00missing").to_numpy()
    return pd.util.hash_pandas_object(canonical, index=False).to_numpy()


def exact_copy_rate(train: pd.DataFrame, rows: pd.DataFrame) -> float:
    """Share of `rows` identical (every column) to some row of `train`."""
    train, rows = _check(train=train, rows=rows)
    kinds = {name: column_kind(train[name]) for name in train.columns}
    return float(np.isin(_row_keys(rows, kinds), _row_keys(train, kinds)).mean())
