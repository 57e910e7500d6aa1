"""Sensitive attributes as training targets of the private block: class indices or standardized
values, fitted once and stored as plain JSON (in config.json) so loading rebuilds the heads.

Where the values come from: a table's own columns named in `sensitive` (they stay in the data and
are reconstructed too), or values given beside the data (image labels or factors).
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fds.config import FDSConfig
from fds.errors import ConfigError, DataError

# An integer attribute with at most this many distinct values is a class label (shape 0/1/2),
# not a quantity.
MAX_CLASSES = 20


@dataclass
class SensitiveColumn:
    """How one sensitive attribute is encoded; every field is JSON-serialisable."""

    name: str
    kind: str  # "categorical" | "continuous"
    classes: list[Any] = field(default_factory=list)
    center: float = 0.0
    scale: float = 1.0


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def is_categorical(column: pd.Series) -> bool:
    """Class labels (text, booleans, or integers with few distinct values), not quantities."""
    if not pd.api.types.is_numeric_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        return True
    values = column.dropna().to_numpy(dtype=np.float64)
    return bool((np.mod(values, 1) == 0).all()) and len(np.unique(values)) <= MAX_CLASSES


def fit_sensitive(frame: pd.DataFrame) -> list[SensitiveColumn]:
    """One encoder per column of `frame` (the sensitive attributes, complete)."""
    columns = []
    for name in frame.columns:
        column = frame[name]
        if column.isna().any():
            row = column.index[int(np.argmax(column.isna().to_numpy()))]
            raise DataError(f"sensitive attribute {name!r} is missing at row {_plain(row)!r}")
        if is_categorical(column):
            levels = sorted(column.unique().tolist(), key=lambda v: (str(type(v)), v))
            if len(levels) < 2:
                raise DataError(f"sensitive attribute {name!r} has a single value: nothing to hide")
            columns.append(SensitiveColumn(str(name), "categorical", [_plain(v) for v in levels]))
        else:
            values = column.to_numpy(dtype=np.float64)
            columns.append(
                SensitiveColumn(
                    str(name),
                    "continuous",
                    center=float(values.mean()),
                    scale=float(values.std()) or 1.0,
                )
            )
    return columns


def encode_sensitive(columns: list[SensitiveColumn], frame: pd.DataFrame) -> np.ndarray:
    """[n, n_attributes] float32: class indices, or standardized values."""
    out = np.empty((len(frame), len(columns)), dtype=np.float32)
    for j, col in enumerate(columns):
        values = frame[col.name]
        if col.kind == "categorical":
            codes = pd.Index(col.classes).get_indexer(values)
            if (codes < 0).any():
                bad = _plain(values.iloc[int(np.argmax(codes < 0))])
                raise DataError(
                    f"sensitive attribute {col.name!r} has unseen value {bad!r} "
                    f"(known: {', '.join(map(str, col.classes[:10]))})"
                )
            out[:, j] = codes
        else:
            out[:, j] = (values.to_numpy(dtype=np.float64) - col.center) / col.scale
    return out


def key_requested(config: FDSConfig, has_values: bool, how_to_give: str) -> bool:
    """Whether the model gets a key (a private block carrying the sensitive attributes). Refuses,
    before any training, the two halves of one: sensitive attributes without a private block,
    and a private block without them (`how_to_give` says where they may come from)."""
    if not config.private_dim:
        if config.sensitive or has_values:
            raise ConfigError(
                "sensitive attributes need a private block to carry them: set private_dim "
                "(or preset='fds'; CLI: --preset fds)"
            )
        return False
    if not config.sensitive and not has_values:
        raise ConfigError(
            f"preset {config.preset!r} with private_dim={config.private_dim} needs sensitive "
            f"attributes: {how_to_give}"
        )
    return True


def sensitive_frame(
    X: Any, names: tuple[str, ...], values: Any
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The sensitive attributes of `X` as a frame, and their names.

    `values` given (array, Series or DataFrame, one row per sample): they are the attributes,
    named by `names` (or their column names, or `sensitive`). Otherwise each name is a column
    of the table `X`."""
    if values is not None:
        frame = _values_frame(values, names)
        if len(frame) != len(X):
            raise DataError(
                f"sensitive values have {len(frame)} rows but the data has {len(X)} samples"
            )
        return frame, tuple(str(c) for c in frame.columns)
    if not isinstance(X, pd.DataFrame):
        what = "images" if np.ndim(X) > 2 else "an array"
        raise DataError(
            f"the data is {what}, so the sensitive attributes {', '.join(names)} must be passed "
            "as values: FDS.fit(X, sensitive=labels_or_factors) (CLI: --sensitive factor:NAME)"
        )
    known = [str(c) for c in X.columns]
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise DataError(
                f"unknown sensitive column {name!r}{hint}; the data has {', '.join(known)}"
            )
    return X[list(names)].reset_index(drop=True), names


def _values_frame(values: Any, names: tuple[str, ...]) -> pd.DataFrame:
    if isinstance(values, pd.DataFrame):
        frame = values.reset_index(drop=True)
        frame.columns = [str(c) for c in frame.columns]
        if not names or list(frame.columns) == list(names):
            return frame
        if all(name in frame.columns for name in names):
            return frame[list(names)]
        if len(names) == frame.shape[1]:  # positional: the names label the given columns
            return frame.set_axis(list(names), axis=1)
        raise DataError(
            f"sensitive names {', '.join(names)} are not columns of the sensitive values "
            f"({', '.join(frame.columns)})"
        )
    if isinstance(values, pd.Series):
        values = values.to_numpy()
    array = np.asarray(values)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(
            f"sensitive values must be 1-D or 2-D (one row per sample), got {array.shape}"
        )
    labels = list(names) or (
        ["sensitive"] if array.shape[1] == 1 else [f"sensitive_{j}" for j in range(array.shape[1])]
    )
    if len(labels) != array.shape[1]:
        raise DataError(
            f"sensitive names {', '.join(names)} do not match the {array.shape[1]} columns of values"
        )
    return pd.DataFrame({name: array[:, j] for j, name in enumerate(labels)})


def sensitive_to_json(columns: list[SensitiveColumn]) -> list[dict[str, Any]]:
    return [asdict(c) for c in columns]


def sensitive_from_json(items: list[dict[str, Any]]) -> list[SensitiveColumn]:
    """config.json's `fitted.sensitive`, each entry checked (the file may be corrupt)."""
    columns = []
    for index, item in enumerate(items):
        try:
            column = SensitiveColumn(**item)
        except TypeError:
            column = None
        if (
            column is None
            or not isinstance(column.name, str)
            or column.kind not in ("categorical", "continuous")
            or not isinstance(column.classes, list)
            or not all(isinstance(v, int | float) for v in (column.center, column.scale))
        ):
            raise DataError(f"config.json is invalid: fitted.sensitive entry {index} is malformed")
        columns.append(column)
    return columns
