"""Faithful values: does a synthetic table keep what its training table makes impossible or certain?

Pure functions of the real training rows and the synthetic rows, column types from the training
table's dtypes (`column_kind`). Each answers one question a user asks before trusting a sample:

- `out_of_support`: which synthetic values could not occur in the training data (a number outside
  the training range, a category never seen), per column and as a share of rows;
- `missing_rates`: each column's share of missing values, real beside synthetic, and the error;
- `category_coverage`: which categories holding ≥ `min_share` of the training rows never appear;
- `precision_kept`: whether numbers keep the training data's decimal precision (integers stay
  integers);
- `table_fidelity`: all four together, as `fds evaluate` and the synthesis benchmark report them.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fds.errors import DataError

__all__ = [
    "category_coverage",
    "category_labels",
    "column_kind",
    "missing_rates",
    "out_of_support",
    "precision_kept",
    "table_fidelity",
]

RARE_CATEGORY_SHARE = 0.005  # issue 15: every category holding ≥ 0.5% of the training rows
_MAX_DECIMALS = 6  # a column needing more decimals is treated as continuous (no precision to keep)


def column_kind(column: pd.Series) -> str:
    """SDMetrics' sdtype from a dtype: bool → boolean, numbers → numerical, else categorical."""
    if pd.api.types.is_bool_dtype(column.dtype):
        return "boolean"
    if pd.api.types.is_numeric_dtype(column.dtype):
        return "numerical"
    return "categorical"


def check_tables(train: Any, synthetic: Any) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both sides as DataFrames with rows, the synthetic columns in the real table's order."""
    if not isinstance(train, pd.DataFrame) or not isinstance(synthetic, pd.DataFrame):
        raise DataError("real and synthetic data must be pandas DataFrames")
    if len(train) == 0 or len(synthetic) == 0:
        raise DataError(
            f"need rows on both sides, got {len(train)} real and {len(synthetic)} synthetic"
        )
    absent = [c for c in train.columns if c not in synthetic.columns]
    if absent:
        raise DataError(f"the synthetic table lacks column {absent[0]!r}")
    return train, synthetic[list(train.columns)]


def _numbers(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(float values, mask of cells that hold something but are not numbers)."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64)
    return values, column.notna().to_numpy() & np.isnan(values)


def category_labels(column: pd.Series) -> pd.Series:
    """Category values as strings (so True, "True" and a CSV's read-back agree); missing → None."""
    return column.astype(object).map(lambda v: None if pd.isna(v) else str(v))


def out_of_support(train: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, Any]:
    """Synthetic values the training data makes impossible, per column and overall.

    A numerical value is out of support when it lies outside [min, max] of the column's training
    values (or is not a number at all); a categorical or boolean one when that category never
    occurs in training. Missing cells are never out of support (`missing_rates` judges them).
    Each column's ``rate`` is over all synthetic rows; ``rate`` overall is the share of synthetic
    rows holding at least one such value, ``value_rate`` the share of all cells.
    """
    train, synthetic = check_tables(train, synthetic)
    outside = np.zeros((len(synthetic), len(train.columns)), dtype=bool)
    columns: dict[str, Any] = {}
    for j, name in enumerate(train.columns):
        if column_kind(train[name]) == "numerical":
            real = pd.to_numeric(train[name], errors="coerce").dropna()
            if real.empty:
                continue
            low, high = float(real.min()), float(real.max())
            values, not_numbers = _numbers(synthetic[name])
            with np.errstate(invalid="ignore"):
                outside[:, j] = (values < low) | (values > high) | not_numbers
            finite = values[~np.isnan(values)]
            columns[str(name)] = {
                "rate": float(outside[:, j].mean()),
                "train_min": low,
                "train_max": high,
                "synthetic_min": float(finite.min()) if len(finite) else None,
                "synthetic_max": float(finite.max()) if len(finite) else None,
            }
        else:
            seen = set(category_labels(train[name]).dropna())
            values = category_labels(synthetic[name])
            outside[:, j] = (values.notna() & ~values.isin(seen)).to_numpy()
            unseen = sorted(set(values[outside[:, j]]))
            columns[str(name)] = {"rate": float(outside[:, j].mean()), "unseen": unseen[:10]}
    return {
        "rate": float(outside.any(axis=1).mean()),
        "value_rate": float(outside.mean()),
        "n_rows_outside": int(outside.any(axis=1).sum()),
        "columns": columns,
    }


def missing_rates(train: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, Any]:
    """Each column's share of missing cells in the training and synthetic rows, and the absolute
    error between them; ``max_error`` and ``mean_error`` over the columns."""
    train, synthetic = check_tables(train, synthetic)
    columns = {}
    for name in train.columns:
        real = float(train[name].isna().mean())
        fake = float(synthetic[name].isna().mean())
        columns[str(name)] = {"real": real, "synthetic": fake, "error": abs(fake - real)}
    errors = [c["error"] for c in columns.values()]
    return {
        "max_error": max(errors),
        "mean_error": float(np.mean(errors)),
        "columns_with_missing": [n for n, c in columns.items() if c["real"] > 0],
        "columns": columns,
    }


def category_coverage(
    train: pd.DataFrame, synthetic: pd.DataFrame, min_share: float = RARE_CATEGORY_SHARE
) -> dict[str, Any]:
    """The share of categories holding ≥ `min_share` of the training rows that the synthetic rows
    contain at least once (categorical and boolean columns). A synthesizer that drops a rare but
    real group scores below 1 here while its column shapes barely move. ``coverage`` is null when
    the table has no such categories."""
    train, synthetic = check_tables(train, synthetic)
    if not 0 < min_share < 1:
        raise DataError(f"min_share must be in (0, 1), got {min_share}")
    columns: dict[str, Any] = {}
    wanted_total = present_total = 0
    for name in train.columns:
        if column_kind(train[name]) == "numerical":
            continue
        shares = category_labels(train[name]).value_counts(dropna=True) / len(train)
        wanted = sorted(shares.index[shares >= min_share])
        produced = set(category_labels(synthetic[name]).dropna())
        absent = [c for c in wanted if c not in produced]
        columns[str(name)] = {
            "coverage": (len(wanted) - len(absent)) / len(wanted) if wanted else None,
            "n_categories": len(wanted),
            "absent": absent,
        }
        wanted_total += len(wanted)
        present_total += len(wanted) - len(absent)
    return {
        "coverage": present_total / wanted_total if wanted_total else None,
        "n_categories": wanted_total,
        "n_absent": wanted_total - present_total,
        "min_share": min_share,
        "columns": columns,
    }


def _decimals(values: np.ndarray) -> int | None:
    """The fewest decimals (0 … 6) that write every value exactly; None when more are needed."""
    for decimals in range(_MAX_DECIMALS + 1):
        if _at_decimals(values, decimals).all():
            return decimals
    return None


def _at_decimals(values: np.ndarray, decimals: int) -> np.ndarray:
    scale = np.maximum(1.0, np.abs(values))
    return np.abs(values - np.round(values, decimals)) <= 1e-9 * scale


def precision_kept(train: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, Any]:
    """Whether numerical columns keep the training data's decimal precision.

    A column whose training values all have at most d ≤ 6 decimals (d = 0: integers) is checked:
    its ``kept`` is the share of synthetic values with at most d decimals. Columns needing more
    decimals are continuous and not checked. ``value_share`` is the share over all checked
    values, ``columns_kept`` the checked columns where every value keeps the precision."""
    train, synthetic = check_tables(train, synthetic)
    columns: dict[str, Any] = {}
    kept_values = total_values = 0
    for name in train.columns:
        if column_kind(train[name]) != "numerical":
            continue
        real = pd.to_numeric(train[name], errors="coerce").dropna().to_numpy(dtype=np.float64)
        decimals = _decimals(real) if len(real) else None
        if decimals is None:
            continue
        values, _ = _numbers(synthetic[name])
        values = values[~np.isnan(values)]
        kept = _at_decimals(values, decimals)
        columns[str(name)] = {
            "decimals": decimals,
            "kept": float(kept.mean()) if len(values) else None,
        }
        kept_values += int(kept.sum())
        total_values += len(values)
    return {
        "value_share": kept_values / total_values if total_values else None,
        "columns_kept": sum(c["kept"] == 1.0 for c in columns.values()),
        "n_columns_checked": len(columns),
        "columns": columns,
    }


def table_fidelity(train: pd.DataFrame, synthetic: pd.DataFrame) -> dict[str, Any]:
    """`out_of_support`, `missing_rates`, `category_coverage` and `precision_kept` of `synthetic`
    against the training rows `train`."""
    return {
        "out_of_support": out_of_support(train, synthetic),
        "missing": missing_rates(train, synthetic),
        "categories": category_coverage(train, synthetic),
        "precision": precision_kept(train, synthetic),
    }
