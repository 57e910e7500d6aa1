"""Column kinds: inferred from a column's values, overridable by the user, checked against the data."""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

Kind = Literal["continuous", "categorical", "binary", "count"]
KINDS: tuple[Kind, ...] = ("continuous", "categorical", "binary", "count")


def infer_kind(column: pd.Series) -> Kind:
    """Guess how a column should be modelled, the way a careful analyst would at first sight."""
    values = column.dropna()
    if pd.api.types.is_bool_dtype(column.dtype):
        return "binary"
    if not pd.api.types.is_numeric_dtype(column.dtype):
        return "binary" if values.nunique() == 2 else "categorical"
    as_float = values.to_numpy(dtype=np.float64)
    distinct = np.unique(as_float)
    if len(distinct) == 2 and np.isin(distinct, (0.0, 1.0)).all():
        return "binary"
    if (
        len(distinct) > 2
        and np.isfinite(as_float).all()
        and (as_float >= 0).all()
        and (np.mod(as_float, 1) == 0).all()
    ):
        return "count"
    return "continuous"


def first_missing_row(column: pd.Series) -> object | None:
    """Index label of the first missing value, to name it in an error; None when complete."""
    mask = column.isna().to_numpy()
    if not mask.any():
        return None
    label = column.index[int(np.argmax(mask))]
    return label.item() if isinstance(label, np.generic) else label
