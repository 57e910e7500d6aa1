"""Site partitions: disjoint and complete, seeded, label skew grows as α shrinks, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fds.data.partition import partition
from fds.errors import ConfigError, DataError


def _check_cover(parts: list[np.ndarray], n: int) -> None:
    joined = np.concatenate(parts)
    assert len(joined) == n and len(np.unique(joined)) == n
    assert all(len(p) > 0 for p in parts)


def test_iid_is_a_seeded_equal_split() -> None:
    parts = partition(103, 4, "iid", seed=1)
    _check_cover(parts, 103)
    assert sorted(len(p) for p in parts) == [25, 26, 26, 26]
    again = partition(103, 4, "iid", seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    other = partition(103, 4, "iid", seed=2)
    assert not all(np.array_equal(a, b) for a, b in zip(parts, other, strict=True))


def _skew(parts: list[np.ndarray], labels: np.ndarray) -> float:
    """Mean over sites of the share of its most common class."""
    return float(np.mean([np.bincount(labels[p]).max() / len(p) for p in parts]))


def test_dirichlet_skews_labels_more_for_small_alpha() -> None:
    labels = np.repeat(np.arange(10), 100)
    mild = partition(1000, 5, "dirichlet", labels=labels, alpha=100.0, seed=0)
    strong = partition(1000, 5, "dirichlet", labels=labels, alpha=0.1, seed=0)
    _check_cover(mild, 1000)
    _check_cover(strong, 1000)
    assert _skew(strong, labels) > _skew(mild, labels) + 0.2


def test_column_partition_makes_one_site_per_value() -> None:
    column = pd.Series(["b", "a", "b", "c", "a", "a"])
    parts = partition(6, None, "column", column=column)
    assert [list(p) for p in parts] == [[1, 4, 5], [0, 2], [3]]
    with pytest.raises(ConfigError, match="3 distinct values"):
        partition(6, 2, "column", column=column)


def test_bad_partitions_fail_clearly() -> None:
    with pytest.raises(DataError, match="cannot give 10 sites"):
        partition(5, 10, "iid")
    with pytest.raises(DataError, match="needs class labels"):
        partition(100, 2, "dirichlet")
    with pytest.raises(ConfigError, match="unknown partition"):
        partition(100, 2, "random")
    with pytest.raises(DataError, match="fewer than 2 rows"):
        partition(20, 10, "dirichlet", labels=np.zeros(20, dtype=int), alpha=0.01)
