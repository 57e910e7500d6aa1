"""Tabular codec: DataFrame rows ↔ float32 vectors, one fitted transform per column.

Continuous columns are standardized, quantile-mapped to a standard normal, or (`bounded`) mapped
through the logit of their position in their range (fds.data.support); counts are log1p-mapped
under the first two; binary columns become 0/1, categoricals one-hot. Every decoded number is
snapped to its column's support: the range seen at fit (or declared), integers for integer
columns, the data's number of decimals. Everything fitted is stored as plain JSON so a saved model
never needs pickle.

Missing values follow a policy per column: `error` refuses them, `impute` fills them (median or
mode), `model` fills them too and encodes a missingness indicator beside the binary columns (a
Bernoulli the model learns with everything else), which decodes back to NaN where it fires; `drop`
is applied by the caller, which removes the rows before fitting (the codec then refuses NaN).

Declared `bounds` ({column: [low, high]}) and `categories` ({column: [...]}) replace the statistics
read from the data; with `declared_only` (DP training) nothing is read from the data's values:
a column without a declaration is refused, so no mean, scale, quantile or category list leaks.
Given `histogram_noise`, declared-bounds columns get their mean and scale (or quantiles) from a
DP histogram instead: counts in equal bins between the bounds plus Gaussian noise, whose scale the
caller calibrated (one record moves one count per column).
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_integer_dtype, pandas_dtype
from scipy.special import ndtr, ndtri

from fds.data.codec import Block, blocks_from_json, blocks_to_json
from fds.data.schema import KINDS, Kind, first_missing_row, infer_kind
from fds.data.support import (
    MAX_DECIMALS,
    detect_decimals,
    from_logit,
    log_scale_for,
    snap,
    to_logit,
)
from fds.data.validation import FLOAT32_MAX, first_unrepresentable, why_unrepresentable
from fds.errors import ConfigError, DataError

N_QUANTILES = 1000
_DP_BINS = 64  # histogram bins between declared bounds (DP statistics)
_DP_QUANTILES = 101
_POLICIES = ("error", "impute", "model", "drop")
_TRANSFORMS = ("standard", "quantile", "bounded")
_EPS = 1e-6


@dataclass
class ColumnSpec:
    """How one column is encoded; every field is JSON-serialisable."""

    name: str
    kind: Kind
    dtype: str
    missing: str = "error"
    fill: Any = None
    center: float = 0.0
    scale: float = 1.0
    quantiles: list[float] | None = None
    categories: list[Any] = field(default_factory=list)
    bounds: list[float] | None = None  # declared [low, high]: values are clipped to it
    support: list[float] | None = None  # [min, max] seen at fit: decoded values stay inside
    decimals: int | None = None  # decoded values are rounded to this many decimals
    bounded: bool = False  # the bounded transform (logit of the position in the range)
    log_scale: float | None = None  # bounded: log-spread first, at this scale (skewed columns)
    indicator: bool = False  # missing: model, and a missingness indicator is encoded

    @property
    def width(self) -> int:
        return len(self.categories) if self.kind == "categorical" else 1

    @property
    def range(self) -> list[float] | None:
        """The values a decoded number may take: the declared bounds, else the fitted support."""
        return self.bounds or self.support


@dataclass
class HistogramNoise:
    """Gaussian noise (std per bin count) for DP histograms, and its secret generator."""

    std: float
    rng: np.random.Generator


def plain(value: Any) -> Any:
    """numpy scalars → Python scalars, so the spec dumps to JSON."""
    return value.item() if isinstance(value, np.generic) else value


def _suggest(name: str, options: list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


class TabularCodec:
    """Fit on a DataFrame (or a 2-D array) once; encode/decode any number of batches after."""

    input_kind = "table"

    def __init__(
        self,
        columns: list[ColumnSpec],
        *,
        feature_names: list[str],
        from_array: bool,
        transform: str,
    ) -> None:
        self.columns = columns
        self.feature_names = feature_names  # the user's column order; `columns` is in block order
        self.from_array = from_array
        self.transform = transform
        self.blocks = self._layout()
        self.n_encoded = self.blocks[-1].stop if self.blocks else 0

    # ---------------------------------------------------------------- fitting
    @classmethod
    def fit(
        cls,
        data: pd.DataFrame | np.ndarray,
        *,
        kinds: dict[str, str] | None = None,
        missing: str | dict[str, str] = "error",
        transform: str = "standard",
        bounds: dict[str, Any] | None = None,
        categories: dict[str, list[Any]] | None = None,
        declared_only: bool = False,
        histogram_noise: HistogramNoise | None = None,
    ) -> TabularCodec:
        """Infer (or take) each column's kind, apply the missing-value policy, fit transforms."""
        frame, from_array = _as_frame(data)
        if len(frame) == 0 or frame.shape[1] == 0:
            raise DataError(
                f"the table is empty: {frame.shape[1]} feature(s) (shape={frame.shape}) while a "
                "minimum of 1 is required, and at least 1 row"
            )
        names = [str(c) for c in frame.columns]
        declared = {"bounds": bounds or {}, "categories": categories or {}}
        check_fit_options(
            names, kinds, missing, transform, declared, declared_only, histogram_noise
        )
        policies = policy_dict(missing)
        default_policy = missing if isinstance(missing, str) else "error"
        specs = []
        for name in names:
            column = frame[name]
            kind = (kinds or {}).get(name) or (
                declared_kind(name, declared) if declared_only else infer_kind(column)
            )
            if kind not in KINDS:
                raise DataError(
                    f"column {name!r}: unknown kind {kind!r}; valid: {', '.join(KINDS)}"
                )
            policy = policies.get(name, default_policy)
            if name in declared["bounds"] or name in declared["categories"] or declared_only:
                spec = declared_column(
                    name, column, kind, policy, declared, transform, histogram_noise
                )
            else:
                spec = _fit_column(name, column, kind, policy, transform)
            specs.append(spec)
        return cls(specs, feature_names=names, from_array=from_array, transform=transform)

    def _layout(self) -> list[Block]:
        order = {"continuous": 0, "count": 0, "binary": 1, "categorical": 2}
        self.columns.sort(key=lambda c: order[c.kind])  # stable: keeps the table's order inside
        reals = [c for c in self.columns if c.kind in ("continuous", "count")]
        binaries = [c for c in self.columns if c.kind == "binary"]
        flags = [c for c in self.columns if c.indicator]
        categoricals = [c for c in self.columns if c.kind == "categorical"]
        # what each encoded position holds, in order: (column, True) is its missingness indicator
        self._slots = [(c, False) for c in reals + binaries]
        self._slots += [(c, True) for c in flags] + [(c, False) for c in categoricals]
        blocks, start = [], 0
        if reals:
            blocks.append(Block("real", 0, len(reals), "real"))
            start = len(reals)
        if binaries or flags:
            blocks.append(Block("binary", start, start + len(binaries) + len(flags), "binary"))
            start += len(binaries) + len(flags)
        for col in categoricals:
            blocks.append(Block("categorical", start, start + col.width, col.name))
            start += col.width
        return blocks

    def part_widths(self) -> list[tuple[str, int]]:
        """Each encoded part's column name and width, in encoded order (an indicator is 1 wide)."""
        return [(spec.name, 1 if flag else spec.width) for spec, flag in self._slots]

    def indicator_positions(self) -> list[int]:
        """The encoded positions of the missingness indicators (inside the binary block)."""
        positions, start = [], 0
        for spec, flag in self._slots:
            if flag:
                positions.append(start)
            start += 1 if flag else spec.width
        return positions

    # ---------------------------------------------------------------- encode
    def encode(self, data: pd.DataFrame | np.ndarray) -> np.ndarray:
        frame, _ = _as_frame(data, expected=self.feature_names if self.from_array else None)
        known = self.feature_names
        for name in frame.columns:
            if str(name) not in known:
                raise DataError(f"unknown column {name!r}: not seen at fit{_suggest(name, known)}")
        for name in known:
            if name not in frame.columns:
                raise DataError(f"the data lacks column {name!r}, which the model was fitted on")
        # each part written into its place in one float32 array (no float64 concatenation)
        encoded = np.empty((len(frame), self.n_encoded), dtype=np.float32)
        start = 0
        for spec, flag in self._slots:
            width = 1 if flag else spec.width
            part = encoded[:, start : start + width]
            if flag:
                part[:, 0] = frame[spec.name].isna().to_numpy()
            else:
                _encode_column(spec, frame[spec.name], part)
            start += width
        return encoded

    # ---------------------------------------------------------------- decode
    def decode(self, encoded: np.ndarray) -> pd.DataFrame | np.ndarray:
        """Encoded rows (real values, probabilities or one-hots) → the user's table; a
        missingness indicator at 0.5 or more puts NaN in its column."""
        if encoded.ndim != 2 or encoded.shape[1] != self.n_encoded:
            raise DataError(f"expected encoded rows of width {self.n_encoded}, got {encoded.shape}")
        values, gaps, start = {}, {}, 0
        for spec, flag in self._slots:
            width = 1 if flag else spec.width
            part = encoded[:, start : start + width]
            if flag:
                gaps[spec.name] = part[:, 0] >= 0.5
            else:
                values[spec.name] = part
            start += width
        out = {}
        for spec in self.columns:
            out[spec.name] = _decode_column(spec, values[spec.name], gaps.get(spec.name))
        frame = pd.DataFrame({name: out[name] for name in self.feature_names})
        return frame.to_numpy(dtype=np.float64) if self.from_array else frame

    # ---------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        return {
            "input_kind": self.input_kind,
            "from_array": self.from_array,
            "transform": self.transform,
            "feature_names": self.feature_names,
            "columns": [vars(c) for c in self.columns],
            "blocks": blocks_to_json(self.blocks),
        }

    @classmethod
    def from_json(cls, state: dict[str, Any], source: str = "codec.json") -> TabularCodec:
        """Rebuild from `to_json`'s output, checking every field (the file may be corrupt)."""
        names, columns = state.get("feature_names"), state.get("columns")
        if not (
            isinstance(names, list)
            and names
            and all(isinstance(n, str) for n in names)
            and len(set(names)) == len(names)
        ):
            raise DataError(f"{source} is invalid: feature_names must be distinct strings")
        if (
            not isinstance(state.get("from_array"), bool)
            or state.get("transform") not in _TRANSFORMS
        ):
            raise DataError(f"{source} is invalid: from_array or transform is malformed")
        if not isinstance(columns, list) or sorted(map(_name_of, columns)) != sorted(names):
            raise DataError(f"{source} is invalid: its columns do not match its feature_names")
        specs = []
        for item in columns:
            problem = _spec_problem(item)
            if problem is not None:
                raise DataError(f"{source} is invalid: column {item['name']!r}: {problem}")
            specs.append(ColumnSpec(**item))
        codec = cls(
            specs,
            feature_names=names,
            from_array=state["from_array"],
            transform=state["transform"],
        )
        if codec.blocks != blocks_from_json(state.get("blocks"), source):
            raise DataError(f"{source} is inconsistent: its blocks do not match its columns")
        return codec


def check_fit_options(
    names: list[str],
    kinds: dict[str, str] | None,
    missing: str | dict[str, str],
    transform: str,
    declared: dict[str, dict[str, Any]],
    declared_only: bool,
    histogram_noise: HistogramNoise | None,
) -> None:
    """Refuse an unknown transform or policy, a column option naming no column of `names`, and
    quantiles under DP without DP statistics (before any statistic is read)."""
    if transform not in _TRANSFORMS:
        raise DataError(f"unknown transform {transform!r}; valid: {', '.join(_TRANSFORMS)}")
    given = missing.items() if isinstance(missing, dict) else [(None, missing)]
    for name, policy in given:
        if policy not in _POLICIES:
            where = f" for column {name!r}" if name is not None else ""
            raise DataError(
                f"unknown missing policy {policy!r}{where}; valid: {', '.join(_POLICIES)}"
            )
    if declared_only and transform == "quantile" and histogram_noise is None:
        raise ConfigError(
            "continuous_transform quantile needs the data's quantiles, which DP training does "
            "not read; set privacy.statistics_epsilon (DP quantiles) or use standard"
        )
    for option, mapping in (
        ("columns", kinds or {}),
        ("missing", policy_dict(missing)),
        *declared.items(),
    ):
        for name in mapping:
            if name not in names:
                raise DataError(
                    f"{option} names column {name!r}, which the data lacks{_suggest(name, names)}"
                )


_SPEC_FIELDS = frozenset(ColumnSpec.__dataclass_fields__)


def _name_of(item: Any) -> str:
    return str(item.get("name")) if isinstance(item, dict) else ""


def _finite(*values: Any) -> bool:
    """Plain JSON numbers (not bools), each finite and within float32's range."""
    return all(
        isinstance(v, int | float) and not isinstance(v, bool) and abs(v) <= FLOAT32_MAX
        for v in values
    )


def _is_label(value: Any) -> bool:
    """A category JSON holds exactly: text, a bool, an integer or a finite float (or None)."""
    return value is None or isinstance(value, str | int) or _is_finite_float(value)


def _is_finite_float(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def check_labels(name: str, levels: list[Any]) -> None:
    bad = next((v for v in levels if not _is_label(v)), None)
    if bad is not None:
        raise DataError(
            f"column {name!r}: the {type(bad).__name__} value {bad!r:.40} cannot be a category "
            "(text, integers or finite numbers only); convert the column"
        )


def _spec_problem(item: dict[str, Any]) -> str | None:
    """What is wrong with one column of codec.json, None when nothing is."""
    kind = item.get("kind")
    if set(item) - _SPEC_FIELDS or not isinstance(item.get("dtype"), str):
        return f"its fields must be {', '.join(sorted(_SPEC_FIELDS))}"
    if kind not in KINDS or item.get("missing", "error") not in _POLICIES:
        return "kind or missing is unknown"
    if not isinstance(item.get("indicator", False), bool) or (
        item.get("indicator") and item.get("missing") != "model"
    ):
        return "indicator must be a bool, true only with missing: model"
    if kind in ("continuous", "count"):
        problem = _support_problem(item)
        if problem is not None:
            return problem
        quantiles, bounds = item.get("quantiles"), item.get("bounds")
        if not _finite(item.get("center", 0.0), item.get("scale", 1.0), item.get("fill")):
            return "center, scale and fill must be finite numbers"
        if not item.get("scale", 1.0) > 0:
            return "scale must be positive"
        if quantiles is not None and not (
            isinstance(quantiles, list)
            and len(quantiles) >= 2
            and _finite(*quantiles)
            and (np.diff(quantiles) >= 0).all()
        ):
            return "quantiles must be at least 2 finite increasing numbers"
        if bounds is not None and not (
            isinstance(bounds, list)
            and len(bounds) == 2
            and _finite(*bounds)
            and bounds[0] < bounds[1]
        ):
            return "bounds must be [low, high] finite numbers with low < high"
        return None
    levels = item.get("categories")
    if not (isinstance(levels, list) and levels and all(map(_is_label, levels))):
        return "categories must be a non-empty list of plain values"
    if not pd.Index(levels).is_unique or (kind == "binary" and len(levels) > 2):
        return "categories must be distinct (at most 2 for a binary column)"
    if not _is_label(item.get("fill")):
        return "fill must be a plain value"
    return None


def _support_problem(item: dict[str, Any]) -> str | None:
    """What is wrong with a numeric column's support fields, None when nothing is."""
    support, decimals, log_scale = item.get("support"), item.get("decimals"), item.get("log_scale")
    if support is not None and not (
        isinstance(support, list)
        and len(support) == 2
        and _finite(*support)
        and support[0] <= support[1]
    ):
        return "support must be [min, max] finite numbers with min <= max"
    if decimals is not None and not (
        isinstance(decimals, int)
        and not isinstance(decimals, bool)
        and 0 <= decimals <= MAX_DECIMALS
    ):
        return f"decimals must be an integer from 0 to {MAX_DECIMALS}"
    if not isinstance(item.get("bounded", False), bool) or (
        item.get("bounded") and item.get("bounds") is None and support is None
    ):
        return "bounded must be a bool, true only with bounds or a support"
    if log_scale is not None and not (_finite(log_scale) and log_scale > 0):
        return "log_scale must be a positive finite number"
    return None


def rows_kept(data: pd.DataFrame | np.ndarray, missing: str | dict[str, str]) -> np.ndarray | None:
    """Which rows a table keeps under missing: drop (those without a gap in a drop column),
    None when no column's policy is drop."""
    frame, _ = _as_frame(data)
    keep = rows_without_gaps(frame, missing)
    if keep is not None and not keep.any():
        raise DataError(
            f"missing: drop leaves no rows: every row has a gap in {_drop_columns(frame, missing)[0]!r}"
        )
    return keep


def rows_without_gaps(frame: pd.DataFrame, missing: str | dict[str, str]) -> np.ndarray | None:
    """The rows of `frame` without a gap in a column whose policy is drop (None: no such column);
    a piece of a streamed table may keep none."""
    names = _drop_columns(frame, missing)
    if not names:
        return None
    return ~frame[names].isna().any(axis=1).to_numpy()


def _drop_columns(frame: pd.DataFrame, missing: str | dict[str, str]) -> list[str]:
    if isinstance(missing, str):
        return list(frame.columns) if missing == "drop" else []
    return [name for name, policy in missing.items() if policy == "drop" and name in frame.columns]


def policy_dict(missing: str | dict[str, str]) -> dict[str, str]:
    return missing if isinstance(missing, dict) else {}


def column_numbers(name: str, column: pd.Series, fill: float | None = None) -> np.ndarray:
    """A numeric column's values as float64, missing ones set to `fill`; NaN, inf and magnitudes
    float32 cannot hold are refused."""
    try:
        numbers = column.to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"column {name!r} must be numeric") from None
    if fill is not None:  # on the float array: a nullable Int64 column cannot hold a median of 0.5
        numbers = numbers.copy()  # to_numpy may return the caller's own float64 data
        numbers[np.isnan(numbers)] = fill
    bad = first_unrepresentable(numbers)
    if bad is not None:
        raise DataError(
            f"column {name!r} holds {numbers[bad]:g} at row {plain(column.index[bad])!r}; "
            + why_unrepresentable(numbers[bad])
        )
    return numbers


def _as_frame(data: Any, expected: list[str] | None = None) -> tuple[pd.DataFrame, bool]:
    if isinstance(data, pd.DataFrame):
        frame = data.copy(deep=False)
        frame.columns = [str(c) for c in frame.columns]
        if frame.columns.duplicated().any():
            dup = frame.columns[frame.columns.duplicated()][0]
            raise DataError(f"column {dup!r} appears more than once")
        return frame, False
    array = np.asarray(data)
    if array.ndim != 2:
        raise DataError(f"expected a 2-D array (rows × features), got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) and array.dtype != bool:
        raise DataError(f"expected a numeric array, got dtype {array.dtype}; pass a DataFrame")
    if expected is not None and array.shape[1] != len(expected):
        raise DataError(f"expected {len(expected)} features per row, got {array.shape[1]}")
    names = expected or [f"x{i}" for i in range(array.shape[1])]
    return pd.DataFrame(array, columns=names), True


def declared_kind(name: str, declared: dict[str, dict[str, Any]]) -> Kind:
    """Under DP a column's kind comes from the user, not from looking at its values."""
    if name in declared["bounds"]:
        return "continuous"
    if name in declared["categories"]:
        return "categorical"
    raise ConfigError(
        f"privacy is set, so column {name!r} needs declared bounds (bounds: {{{name!r}: [low, high]}}) "
        f"or categories (categories: {{{name!r}: [...]}}): FDS does not read statistics from the "
        "raw data under DP"
    )


def declared_column(
    name: str,
    column: pd.Series,
    kind: Kind,
    policy: str,
    declared: dict[str, dict[str, Any]],
    transform: str = "standard",
    noise: HistogramNoise | None = None,
) -> ColumnSpec:
    """A column spec built from declared bounds or categories only (no statistic of the data):
    under missing: model it gets an indicator whether or not it has gaps (not read either)."""
    spec = ColumnSpec(name=name, kind=kind, dtype=str(column.dtype), missing=policy)
    spec.indicator = policy == "model"
    if kind in ("continuous", "count"):
        if name not in declared["bounds"]:
            raise ConfigError(
                f"column {name!r} is {kind} and needs declared bounds: {{{name!r}: [low, high]}}"
            )
        lo, hi = (float(v) for v in declared["bounds"][name])
        if not -FLOAT32_MAX <= lo < hi <= FLOAT32_MAX:
            raise ConfigError(
                f"bounds of column {name!r} must be finite, low < high, within ±{FLOAT32_MAX:.3g}"
                f" (float32), got [{lo:g}, {hi:g}]"
            )
        if kind == "count" and lo < 0:
            raise ConfigError(f"bounds of count column {name!r} must not be negative")
        spec.bounds, spec.fill = [lo, hi], (lo + hi) / 2
        spec.bounded = transform == "bounded"
        # the dtype is the schema, not a statistic: integer columns decode to integers
        spec.decimals = 0 if kind == "count" or is_integer_dtype(column.dtype) else None
        mapped = premap(spec, np.array([lo, hi]))
        spec.center = float(mapped.mean())
        spec.scale = float(mapped[1] - mapped[0]) / 2
        if noise is not None:
            if not pd.api.types.is_numeric_dtype(column.dtype):
                raise DataError(f"column {name!r} is declared {kind} but holds non-numeric values")
            values = premap(spec, np.clip(column.dropna().to_numpy(dtype=np.float64), lo, hi))
            edges = np.linspace(mapped[0], mapped[1], _DP_BINS + 1)
            counts = np.histogram(values, edges)[0] + noise.rng.normal(0, noise.std, _DP_BINS)
            quantile = transform == "quantile" and kind == "continuous"
            # counts below 2σ are mostly noise (post-processing: no extra privacy cost); kept,
            # the clamped noise of empty bins would spread spurious mass over the whole range
            counts[counts < 2 * noise.std] = 0.0
            spec.center, spec.scale, spec.quantiles = _histogram_statistics(counts, edges, quantile)
        return spec
    if name not in declared["categories"]:
        raise ConfigError(
            f"column {name!r} is {kind} and needs declared categories: {{{name!r}: [...]}}"
        )
    levels = list(declared["categories"][name])
    check_labels(name, levels)
    if len(levels) != len(set(map(repr, levels))) or not levels:
        raise ConfigError(f"categories of column {name!r} must be a non-empty list without repeats")
    if kind == "binary" and len(levels) != 2:
        raise ConfigError(f"column {name!r} is binary: declare exactly 2 categories")
    spec.categories, spec.fill = levels, levels[0]
    return spec


def _histogram_statistics(
    counts: np.ndarray, edges: np.ndarray, quantile: bool
) -> tuple[float, float, list[float] | None]:
    """Mean, standard deviation and (optionally) quantiles of a (noisy, non-negative) histogram."""
    if counts.sum() <= 0:  # all noise: fall back to a uniform spread over the bounds
        counts = np.ones_like(counts)
    weights = counts / counts.sum()
    mids = (edges[:-1] + edges[1:]) / 2
    mean = float(weights @ mids)
    std = float(np.sqrt(weights @ (mids - mean) ** 2)) or float(edges[-1] - edges[0]) / 2
    quantiles = None
    if quantile:
        cdf = np.concatenate([[0.0], np.cumsum(weights)])
        quantiles = np.interp(np.linspace(0, 1, _DP_QUANTILES), cdf, edges).tolist()
    return mean, std, quantiles


def _fit_column(
    name: str, column: pd.Series, kind: Kind, policy: str, transform: str
) -> ColumnSpec:
    spec = ColumnSpec(name=name, kind=kind, dtype=str(column.dtype), missing=policy)
    values = column.dropna()
    if len(values) == 0:
        raise DataError(f"column {name!r} has no values (all missing)")
    row = first_missing_row(column)
    if row is not None and policy in ("error", "drop"):
        raise DataError(
            f"column {name!r} has a missing value (NaN) at row {row!r}; set missing: model or "
            f"impute (or missing: {{{name!r}: model}}), or drop the rows first"
        )
    spec.indicator = policy == "model" and row is not None
    if kind in ("continuous", "count"):
        if not pd.api.types.is_numeric_dtype(column.dtype):
            raise DataError(f"column {name!r} is declared {kind} but holds non-numeric values")
        numbers = column_numbers(name, values)
        if kind == "count" and ((numbers < 0).any() or (np.mod(numbers, 1) != 0).any()):
            raise DataError(
                f"column {name!r} is declared count but holds negative or fractional values"
            )
        spec.fill = float(np.median(numbers))
        spec.support = [float(numbers.min()), float(numbers.max())]
        spec.decimals = detect_decimals(numbers)
        if transform == "bounded":
            spec.bounded = True
            spec.log_scale = log_scale_for(numbers, spec.support[0])
        mapped = premap(spec, numbers)
        if transform == "quantile" and kind == "continuous":
            levels = np.linspace(0, 1, min(N_QUANTILES, max(len(mapped), 2)))  # 1 row: [q, q]
            spec.quantiles = np.quantile(mapped, levels).tolist()
        else:
            spec.center = float(mapped.mean())
            spec.scale = float(mapped.std()) or 1.0
    else:
        levels = sorted(values.unique().tolist(), key=lambda v: (str(type(v)), v))
        if kind == "binary" and len(levels) > 2:
            raise DataError(
                f"column {name!r} is declared binary but has {len(levels)} distinct values"
            )
        spec.categories = [plain(v) for v in levels]
        check_labels(name, spec.categories)
        spec.fill = plain(values.mode().iloc[0])
    return spec


def premap(spec: ColumnSpec, numbers: np.ndarray) -> np.ndarray:
    """A numeric column's values before standardizing: the bounded logit, log1p for counts."""
    if spec.bounded:
        return to_logit(numbers, spec.range, spec.log_scale)
    return np.log1p(np.maximum(numbers, 0)) if spec.kind == "count" else numbers


def _unmap(spec: ColumnSpec, mapped: np.ndarray) -> np.ndarray:
    """The inverse of `premap`, for any real input."""
    if spec.bounded:
        return from_logit(mapped, spec.range, spec.log_scale)
    if spec.kind == "count":  # expm1 overflows past log1p(FLOAT32_MAX) ≈ 88.7
        return np.expm1(np.clip(mapped, 0.0, np.log1p(FLOAT32_MAX)))
    return np.clip(mapped, -FLOAT32_MAX, FLOAT32_MAX)


def _encode_column(spec: ColumnSpec, column: pd.Series, out: np.ndarray) -> None:
    """Write `column` encoded into `out` (its rows × the spec's width)."""
    row = first_missing_row(column)
    if row is not None and spec.missing in ("error", "drop"):
        raise DataError(
            f"column {spec.name!r} has a missing value (NaN) at row {row!r}; "
            f"the model was fitted with missing: {spec.missing}"
        )
    if spec.kind in ("continuous", "count"):
        numbers = column_numbers(spec.name, column, spec.fill if row is not None else None)
        limits = spec.range if spec.bounded else spec.bounds
        if limits is not None:
            numbers = np.clip(numbers, *limits)
        mapped = premap(spec, numbers)
        if spec.quantiles is not None:
            ranks = np.interp(mapped, spec.quantiles, np.linspace(0, 1, len(spec.quantiles)))
            out[:, 0] = ndtri(np.clip(ranks, _EPS, 1 - _EPS))
            return
        scaled = (mapped - spec.center) / spec.scale
        bad = first_unrepresentable(scaled)
        if bad is not None:
            raise DataError(
                f"column {spec.name!r} holds {numbers[bad]:g} at row "
                f"{plain(column.index[bad])!r}, {abs(scaled[bad]):.3g} standard deviations from "
                "the data the model was fitted on: too far to model (float32)"
            )
        out[:, 0] = scaled
        return
    if row is not None:
        if isinstance(column.dtype, pd.CategoricalDtype) and spec.fill not in column.cat.categories:
            column = column.cat.add_categories([spec.fill])  # a Categorical fills known values
        column = column.fillna(spec.fill)
    if column.dtype == np.float16:  # pandas has no float16 index; the upcast is exact
        column = column.astype(np.float64)
    codes = pd.Index(spec.categories).get_indexer(column)
    if (codes < 0).any():
        bad = int(np.argmax(codes < 0))
        raise DataError(
            f"column {spec.name!r} has unseen category {plain(column.iloc[bad])!r} at row "
            f"{plain(column.index[bad])!r} (known: {', '.join(map(str, spec.categories[:10]))})"
        )
    if spec.kind == "binary":
        out[:, 0] = codes == len(spec.categories) - 1
        return
    out[:] = 0  # one-hot
    out[np.arange(len(codes)), codes] = 1


def _decode_column(spec: ColumnSpec, values: np.ndarray, gaps: np.ndarray | None) -> pd.Series:
    """One column's decoded values in its fitted dtype; NaN (None) where `gaps` is True."""
    if spec.kind in ("continuous", "count"):
        z = values[:, 0].astype(np.float64)
        if spec.quantiles is not None:
            mapped = np.interp(ndtr(z), np.linspace(0, 1, len(spec.quantiles)), spec.quantiles)
        else:
            mapped = z * spec.scale + spec.center
        decimals = 0 if spec.kind == "count" else spec.decimals
        return _restore_dtype(spec, snap(_unmap(spec, mapped), spec.range, decimals), gaps)
    if spec.kind == "binary":
        index = (
            (values[:, 0] >= 0.5).astype(int)
            if len(spec.categories) == 2
            else np.zeros(len(values), int)
        )
    else:
        index = values.argmax(axis=1)
    return _restore_dtype(spec, np.asarray(spec.categories, dtype=object)[index], gaps)


def _restore_dtype(spec: ColumnSpec, values: np.ndarray, gaps: np.ndarray | None) -> pd.Series:
    """Decoded values in the column's fitted dtype (numpy, nullable, `str`, object or category);
    with gaps, a numpy integer column becomes float64 and a bool one `boolean`, as pandas does."""
    holes = gaps is not None and bool(gaps.any())
    if holes:
        values = values.astype(np.float64 if values.dtype.kind == "f" else object)
        values[gaps] = np.nan if values.dtype.kind == "f" else None
    if spec.dtype == "category":
        return pd.Series(pd.Categorical(values, categories=spec.categories))
    try:
        dtype = pandas_dtype(spec.dtype)
    except TypeError:
        return pd.Series(values)
    if is_integer_dtype(dtype) and values.dtype.kind == "f":
        values = np.rint(values)  # an integer column modelled as continuous decodes to integers
    if holes and isinstance(dtype, np.dtype) and dtype.kind in "iub":
        dtype = np.dtype(np.float64) if dtype.kind in "iu" else pd.BooleanDtype()
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        limit = float(np.finfo(dtype).max)  # float16 holds ±65504: decoded values stay finite
        values = np.clip(values, -limit, limit)
    try:
        return pd.Series(values, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        return pd.Series(values)
