"""What the data-set loaders share: seeded streams per split, the first n rows, their return type."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fds.errors import DataError

__all__ = ["GENERATED_SPLITS", "Loaded", "first_n", "split_rng"]

# What a loader returns: X, labels, factors; load_builtin adds the registry metadata.
Loaded = tuple[np.ndarray | pd.DataFrame | dict[str, Any], np.ndarray | None, pd.DataFrame | None]

GENERATED_SPLITS = ("train", "test")


def split_rng(seed: int, split: str) -> np.random.Generator:
    """Independent streams per (seed, split), so train and test never share draws."""
    if split not in GENERATED_SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(GENERATED_SPLITS)}")
    return np.random.default_rng([seed, GENERATED_SPLITS.index(split)])


def factor_codes(levels: dict[str, int], n: int, seed: int, split: str) -> pd.DataFrame:
    """`n` rows of uniform, independent codes, one column per factor with its number of levels."""
    rng = split_rng(seed, split)
    codes = {k: rng.integers(0, count, size=n) for k, count in levels.items()}
    return pd.DataFrame(codes).astype(np.int64)


def first_n(index: np.ndarray, n: int | None, what: str) -> np.ndarray:
    """The first `n` of `index` (all without `n`); more than it holds is an error naming `what`."""
    if n is None:
        return index
    if n > len(index):
        raise DataError(f"n={n} exceeds the {len(index)} rows of the {what}; pass n ≤ {len(index)}")
    return index[:n]
