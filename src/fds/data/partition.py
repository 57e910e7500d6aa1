"""Splitting one data set into sites, for federated simulation and for writing per-site files.

Three schemes, as in the federated-learning literature: `iid` (a seeded random split into equal
shares), `dirichlet` (label skew: each class is spread over the sites with proportions drawn from
Dirichlet(α), small α = each site sees few classes) and `column` (one site per distinct value of a
column, e.g. `site` or `hospital`). Every site must receive rows; an empty site is an error, not a
silent no-op participant.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd

from fds.errors import ConfigError, DataError

Scheme = Literal["iid", "dirichlet", "column"]
SCHEMES = ("iid", "dirichlet", "column")
# Dirichlet draws that leave a site with fewer rows than this are redrawn (a fresh seeded draw).
_MIN_ROWS_PER_SITE = 2
_DIRICHLET_RETRIES = 100


def partition(
    n_rows: int,
    sites: int | None,
    scheme: str = "iid",
    *,
    labels: np.ndarray | None = None,
    column: pd.Series | np.ndarray | None = None,
    alpha: float = 0.5,
    seed: int = 0,
) -> list[np.ndarray]:
    """Row indices of each site (sorted, disjoint, covering every row).

    `labels` are needed for `dirichlet`, `column` values for `column` (then the number of sites is
    the number of distinct values; a given `sites` must agree with it).
    """
    if scheme not in SCHEMES:
        raise ConfigError(f"unknown partition {scheme!r}; valid: {', '.join(SCHEMES)}")
    if scheme == "column":
        return _by_column(n_rows, sites, column)
    if sites is None or sites < 1:
        raise ConfigError(f"sites must be a positive number, got {sites}")
    if n_rows < sites * _MIN_ROWS_PER_SITE:
        raise DataError(
            f"{n_rows} rows cannot give {sites} sites at least {_MIN_ROWS_PER_SITE} rows each"
        )
    if scheme == "iid":
        order = np.random.default_rng(seed).permutation(n_rows)
        return [np.sort(part) for part in np.array_split(order, sites)]
    return _dirichlet(n_rows, sites, labels, alpha, seed)


def _dirichlet(
    n_rows: int, sites: int, labels: np.ndarray | None, alpha: float, seed: int
) -> list[np.ndarray]:
    """Per class, shares over sites ~ Dirichlet(α·1); redrawn while a site gets too few rows."""
    if labels is None:
        raise DataError(
            "partition dirichlet needs class labels: use a built-in data set with labels, "
            "or a table with label_column set"
        )
    labels = np.asarray(labels)
    if len(labels) != n_rows:
        raise DataError(f"{len(labels)} labels for {n_rows} rows")
    if not alpha > 0:
        raise ConfigError(f"alpha must be positive, got {alpha}")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    for _ in range(_DIRICHLET_RETRIES):
        parts: list[list[np.ndarray]] = [[] for _ in range(sites)]
        for cls in classes:
            rows = rng.permutation(np.flatnonzero(labels == cls))
            shares = rng.dirichlet(np.full(sites, alpha))
            cuts = (np.cumsum(shares)[:-1] * len(rows)).astype(int)
            for site, chunk in enumerate(np.split(rows, cuts)):
                parts[site].append(chunk)
        result = [np.sort(np.concatenate(p)) for p in parts]
        if min(len(p) for p in result) >= _MIN_ROWS_PER_SITE:
            return result
    raise DataError(
        f"dirichlet(alpha={alpha}) left a site with fewer than {_MIN_ROWS_PER_SITE} rows in "
        f"{_DIRICHLET_RETRIES} draws: use fewer sites, a larger alpha or more data"
    )


def _by_column(n_rows: int, sites: int | None, column: Any) -> list[np.ndarray]:
    if column is None:
        raise ConfigError("partition column needs `column:` (the column naming each row's site)")
    values = pd.Series(np.asarray(column))
    if len(values) != n_rows:
        raise DataError(f"the site column has {len(values)} values for {n_rows} rows")
    if values.isna().any():
        raise DataError(
            f"the site column is missing at row {int(values.isna().to_numpy().argmax())}"
        )
    groups = sorted(values.unique().tolist(), key=str)
    if sites is not None and sites != len(groups):
        raise ConfigError(
            f"sites = {sites}, but the site column has {len(groups)} distinct values "
            f"({', '.join(map(str, groups[:5]))}{', …' if len(groups) > 5 else ''})"
        )
    return [np.flatnonzero((values == g).to_numpy()) for g in groups]


def site_names(scheme: str, count: int, column: Any = None) -> list[str]:
    """Human names of the sites: the column's values, else site-0, site-1, …"""
    if scheme == "column" and column is not None:
        return [str(v) for v in sorted(pd.Series(np.asarray(column)).unique().tolist(), key=str)]
    return [f"site-{i}" for i in range(count)]
