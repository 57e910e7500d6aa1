"""A table's metadata file: each column's kind and support, and the constraints samples obey.

`detect_metadata(frame)` writes down what FDS sees in a table (`fds metadata detect`) for the user
to edit; `read_metadata(path)` validates a file strictly (every failure is one `ConfigError`
naming the file and the culprit); `Metadata.params()` turns it into the FDS parameters it
declares (`columns` kinds, declared `bounds` and `categories`, `constraints`), which `fds train
--metadata` lays over the config's. Format (docs/synthesis.md):

    {"format": "fds-metadata", "version": 1,
     "columns": {"age": {"kind": "integer", "missing_rate": 0.0,
                         "support": {"min": 18, "max": 90, "sign": "positive",
                                     "integer": true, "decimals": 0}},
                 "sex": {"kind": "categorical", "categories": ["female", "male"]}},
     "constraints": [{"type": "inequality", "low": "start", "high": "end"}]}

A column's `support` min and max are declared bounds (the codec clips to them and, under DP,
reads its statistics from them instead of the data); `categories` are declared categories.
`sign`, `integer`, `decimals` and `missing_rate` describe the data for the reader and are checked
for consistency; the codec reads precision and missingness from the data itself.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fds.config import make_config
from fds.data.constraints import CATEGORICAL, columns_of, role_of
from fds.data.validation import FLOAT32_MAX
from fds.errors import ConfigError, DataError

FORMAT, VERSION = "fds-metadata", 1
KINDS = ("continuous", "integer", "categorical", "boolean")
SIGNS = ("positive", "non_negative", "negative", "non_positive", "any")
_NUMERIC = ("continuous", "integer")
_TOP_KEYS = ("format", "version", "columns", "constraints")
_COLUMN_KEYS = ("kind", "support", "categories", "missing_rate")
_SUPPORT_KEYS = ("min", "max", "sign", "integer", "decimals")
_MAX_DECIMALS = 10
_MAX_BYTES = 20_000_000


@dataclass(frozen=True)
class Metadata:
    """A validated metadata document (`columns`, `constraints` as in the file)."""

    columns: dict[str, dict[str, Any]]
    constraints: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "columns": self.columns,
            "constraints": self.constraints,
        }

    def params(self) -> dict[str, Any]:
        """The FDS parameters the file declares: `columns` (FDS's kinds), `bounds`, `categories`
        and `constraints` (only the keys it sets)."""
        kinds, bounds, categories = {}, {}, {}
        for name, column in self.columns.items():
            kinds[name] = fds_kind(column)
            support = column.get("support") or {}
            low, high = support.get("min"), support.get("max")
            if low is not None and high is not None and low < high:  # constant: no range
                bounds[name] = [low, high]
            if column.get("categories") is not None:
                categories[name] = list(column["categories"])
        params: dict[str, Any] = {"columns": kinds}
        if bounds:
            params["bounds"] = bounds
        if categories:
            params["categories"] = categories
        if self.constraints:
            params["constraints"] = list(self.constraints)
        return params


def fds_kind(column: dict[str, Any]) -> str:
    """How FDS models a column of this kind: integers as counts when they cannot be negative,
    two categories as binary (as FDS's own inference does)."""
    kind = column["kind"]
    if kind == "boolean":
        return "binary"
    if kind == "categorical":
        return "binary" if len(column.get("categories") or ()) == 2 else "categorical"
    low = (column.get("support") or {}).get("min")
    return "count" if kind == "integer" and low is not None and low >= 0 else "continuous"


def with_metadata(params: dict[str, Any], metadata: Metadata) -> dict[str, Any]:
    """`params` with the metadata's declarations laid over them: per column for `columns`,
    `bounds` and `categories`, and its constraints after the params' own."""
    merged = dict(params)
    for key, value in metadata.params().items():
        if key == "constraints":
            merged[key] = list(params.get(key) or []) + value
        else:
            merged[key] = dict(params.get(key) or {}) | value
    return merged


# ----------------------------------------------------------------------------- detect
def detect_metadata(frame: pd.DataFrame) -> Metadata:
    """Each column's kind, support or categories and missing rate, as FDS reads them."""
    columns = {}
    for name in frame.columns:
        column = frame[name]
        values = column.dropna()
        if len(values) == 0:
            raise DataError(f"column {name!r} has no values (all missing): drop it or fill it")
        entry = _detect_column(str(name), column, values)
        entry["missing_rate"] = round(float(column.isna().mean()), 6)
        columns[str(name)] = entry
    return Metadata(columns, [])


def _detect_column(name: str, column: pd.Series, values: pd.Series) -> dict[str, Any]:
    if pd.api.types.is_datetime64_any_dtype(column.dtype) or pd.api.types.is_timedelta64_dtype(
        column.dtype
    ):
        raise DataError(
            f"column {name!r} holds dates or durations, which FDS does not model yet: convert "
            "them to numbers (e.g. days since a date)"
        )
    if pd.api.types.is_bool_dtype(column.dtype):
        return {"kind": "boolean", "categories": [False, True]}
    if not pd.api.types.is_numeric_dtype(column.dtype):
        levels = sorted(values.unique().tolist(), key=lambda v: (str(type(v)), v))
        return {"kind": "categorical", "categories": [_plain(v) for v in levels]}
    numbers = values.to_numpy(dtype=np.float64)
    if not np.isfinite(numbers).all():
        raise DataError(f"column {name!r} holds inf: FDS models finite numbers only")
    distinct = np.unique(numbers)
    if len(distinct) == 2 and np.isin(distinct, (0.0, 1.0)).all():
        return {"kind": "boolean", "categories": [0, 1]}
    integer = bool((np.mod(numbers, 1) == 0).all())
    low, high = float(numbers.min()), float(numbers.max())
    support = {
        "min": int(low) if integer else low,
        "max": int(high) if integer else high,
        "sign": _sign(low, high),
        "integer": integer,
        "decimals": 0 if integer else _decimals(numbers),
    }
    return {"kind": "integer" if integer else "continuous", "support": support}


def _sign(low: float, high: float) -> str:
    if low > 0:
        return "positive"
    if low >= 0:
        return "non_negative"
    if high < 0:
        return "negative"
    return "non_positive" if high <= 0 else "any"


def _decimals(numbers: np.ndarray) -> int | None:
    """The fewest decimals that write every value exactly (None: more than 10)."""
    scale = np.maximum(np.abs(numbers), 1.0)
    for places in range(_MAX_DECIMALS + 1):
        if (np.abs(np.round(numbers, places) - numbers) <= 1e-12 * scale).all():
            return places
    return None


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


# ----------------------------------------------------------------------------- read and check
def read_metadata(path: str | Path) -> Metadata:
    """Read and validate a metadata file; any problem is one `ConfigError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"metadata file not found: {path}")
    if path.stat().st_size > _MAX_BYTES:
        raise ConfigError(f"metadata {path} is larger than {_MAX_BYTES:,} bytes")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start})") from None
    try:
        document = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_no_repeats)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except (ValueError, RecursionError) as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc})") from None
    try:
        return check_metadata(document)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different (JSON readers disagree on which repeat wins)."""
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f"key {key!r:.40} appears twice in one object")
        seen[key] = value
    return seen


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def check_metadata(document: Any) -> Metadata:
    """A metadata document (parsed JSON) checked field by field."""
    if not isinstance(document, dict):
        raise ConfigError(f"expected a JSON object, got {type(document).__name__}")
    _known_keys(document, _TOP_KEYS, "the file")
    if document.get("format", FORMAT) != FORMAT:
        raise ConfigError(f"format must be {FORMAT!r}, got {document['format']!r:.40}")
    if document.get("version", VERSION) != VERSION:
        raise ConfigError(f"version {document['version']!r:.20} is not supported (only {VERSION})")
    columns = document.get("columns")
    if not isinstance(columns, dict) or not columns:
        raise ConfigError('"columns" must be a non-empty object {name: {"kind": ...}}')
    for name, column in columns.items():
        _check_column(name, column)
    constraints = document.get("constraints", [])
    if not isinstance(constraints, list):
        raise ConfigError('"constraints" must be a list')
    rules = make_config(constraints=constraints).constraints  # one line naming the bad field
    for index, rule in enumerate(rules):
        for name in columns_of(rule):
            if name not in columns:
                raise ConfigError(
                    f"constraints[{index}] ({rule.type}) names unknown column {name!r}"
                )
            kind = columns[name]["kind"]
            numeric = kind in _NUMERIC
            if numeric == (role_of(rule) == CATEGORICAL):
                needs = "categorical or boolean" if role_of(rule) == CATEGORICAL else "numeric"
                raise ConfigError(
                    f"constraints[{index}] ({rule.type}) needs {needs} columns; {name!r} is {kind}"
                )
    return Metadata(columns, constraints)


def _known_keys(mapping: dict[str, Any], valid: tuple[str, ...], where: str) -> None:
    unknown = [key for key in mapping if key not in valid]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid: {', '.join(valid)}")


def _check_column(name: str, column: Any) -> None:
    where = f"column {name!r}"
    if not isinstance(column, dict):
        raise ConfigError(f'{where}: expected an object {{"kind": ...}}, got {column!r:.40}')
    _known_keys(column, _COLUMN_KEYS, where)
    kind = column.get("kind")
    if kind not in KINDS:
        raise ConfigError(f"{where}: unknown kind {kind!r:.40}; valid: {', '.join(KINDS)}")
    rate = column.get("missing_rate", 0.0)
    if not _number(rate) or not 0 <= rate <= 1:
        raise ConfigError(f"{where}: missing_rate must be a number in [0, 1], got {rate!r:.40}")
    if "support" in column:
        if kind not in _NUMERIC:
            raise ConfigError(f"{where}: support applies to numeric kinds, not {kind}")
        _check_support(where, kind, column["support"])
    if "categories" in column:
        if kind in _NUMERIC:
            raise ConfigError(f"{where}: categories apply to categorical and boolean, not {kind}")
        _check_categories(where, kind, column["categories"])


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_support(where: str, kind: str, support: Any) -> None:
    if not isinstance(support, dict):
        raise ConfigError(f"{where}: support must be an object {{min, max, ...}}")
    _known_keys(support, _SUPPORT_KEYS, f"{where} support")
    low, high = support.get("min"), support.get("max")
    for key, value in (("min", low), ("max", high)):
        if value is not None and not (_number(value) and abs(value) <= FLOAT32_MAX):
            raise ConfigError(f"{where}: support {key} must be a finite number, got {value!r:.40}")
    if low is not None and high is not None and low > high:
        raise ConfigError(f"{where}: support min {low:g} is above max {high:g}")
    sign = support.get("sign", "any")
    if sign not in SIGNS:
        raise ConfigError(f"{where}: unknown sign {sign!r:.40}; valid: {', '.join(SIGNS)}")
    if (low is not None or high is not None) and not _sign_fits(sign, low, high):
        raise ConfigError(f"{where}: sign {sign} contradicts support [{low}, {high}]")
    integer = support.get("integer", kind == "integer")
    if not isinstance(integer, bool) or (kind == "integer") != integer:
        raise ConfigError(f"{where}: support integer must be {str(kind == 'integer').lower()}")
    decimals = support.get("decimals")
    if decimals is not None and not (
        isinstance(decimals, int) and not isinstance(decimals, bool) and decimals >= 0
    ):
        raise ConfigError(f"{where}: decimals must be a whole number ≥ 0 or null")
    if integer and decimals not in (None, 0):
        raise ConfigError(f"{where}: an integer column has 0 decimals, got {decimals}")


def _sign_fits(sign: str, low: float | None, high: float | None) -> bool:
    """Whether the declared support lies where the sign says."""
    low = -math.inf if low is None else low
    high = math.inf if high is None else high
    return {
        "positive": low > 0,
        "non_negative": low >= 0,
        "negative": high < 0,
        "non_positive": high <= 0,
        "any": True,
    }[sign]


def _check_categories(where: str, kind: str, categories: Any) -> None:
    if not isinstance(categories, list) or not categories:
        raise ConfigError(f"{where}: categories must be a non-empty list")
    bad = next((c for c in categories if not isinstance(c, str | int | float) or c != c), None)
    if bad is not None:
        raise ConfigError(f"{where}: category {bad!r:.40} is not text, a number or a boolean")
    if len({(type(c), c) for c in categories}) != len(categories):
        raise ConfigError(f"{where}: categories repeat a value")
    if kind == "boolean" and len(categories) != 2:
        raise ConfigError(f"{where}: a boolean column has exactly 2 categories")
