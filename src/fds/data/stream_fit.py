"""The tabular codec fitted in one pass over a table read piece by piece (`fds.data.table_stream`).

Each column keeps what its transform needs, merged piece by piece: exact counts (rows, gaps, the
first gap's row), the exact range and decimals, exact category counts, the exact mean and spread
of the standard transform (merged moments), and a uniform sample of `SAMPLE_ROWS` values (bottom-k
of seeded random keys: the same sample every run) for what needs the whole distribution: the
median that fills gaps, the quantile transform's quantiles, the bounded transform's log scale,
mean and spread. Below `SAMPLE_ROWS` values the sample is the whole column, so the codec equals
`TabularCodec.fit` on the table in memory (to the last bits of a sum).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from fds.data.schema import KINDS, Kind
from fds.data.support import detect_decimals, log_scale_for
from fds.data.tabular import (
    N_QUANTILES,
    ColumnSpec,
    TabularCodec,
    check_fit_options,
    check_labels,
    column_numbers,
    declared_column,
    declared_kind,
    plain,
    policy_dict,
    premap,
    rows_without_gaps,
)
from fds.errors import DataError

SAMPLE_ROWS = 100_000  # values per numeric column kept for its distribution
MAX_LEVELS = 100_000  # distinct values counted per column; a categorical with more is refused
_SAMPLE_SEED = 0


@dataclass
class _Column:
    """One column's statistics so far."""

    name: str
    dtypes: set[str] = field(default_factory=set)
    numeric: bool = True
    boolean: bool = True
    rows: int = 0
    values: int = 0
    first_gap: Any = None
    low: float = np.inf
    high: float = -np.inf
    decimals: int | None = 0
    integer: bool = True
    counts: pd.Series | None = field(default_factory=lambda: pd.Series(dtype=np.int64))
    moments: dict[str, list[float]] = field(default_factory=dict)  # premap → [n, mean, M2]
    sample: np.ndarray = field(default_factory=lambda: np.empty(0))
    keys: np.ndarray = field(default_factory=lambda: np.empty(0))

    def add(self, column: pd.Series, rng: np.random.Generator) -> None:
        self.dtypes.add(str(column.dtype))
        self.boolean &= pd.api.types.is_bool_dtype(column.dtype)
        self.numeric &= pd.api.types.is_numeric_dtype(column.dtype)
        self.rows += len(column)
        present = column.dropna()
        if self.first_gap is None and len(present) < len(column):
            self.first_gap = plain(column.index[int(np.argmax(column.isna().to_numpy()))])
        self.values += len(present)
        if self.counts is not None:
            self.counts = self.counts.add(present.value_counts(), fill_value=0)
            if len(self.counts) > MAX_LEVELS:
                self.counts = None
        if self.numeric and len(present):
            self._add_numbers(column_numbers(self.name, present), rng)

    def _add_numbers(self, numbers: np.ndarray, rng: np.random.Generator) -> None:
        self.low, self.high = min(self.low, numbers.min()), max(self.high, numbers.max())
        self.integer &= bool((np.mod(numbers, 1) == 0).all())
        chunk_decimals = detect_decimals(numbers)
        self.decimals = (
            None
            if self.decimals is None or chunk_decimals is None
            else max(self.decimals, chunk_decimals)
        )
        for name, mapped in (("identity", numbers), ("log1p", np.log1p(np.maximum(numbers, 0)))):
            self.moments[name] = _merge_moments(self.moments.get(name), mapped)
        keys = rng.random(len(numbers))
        self.sample = np.concatenate([self.sample, numbers])
        self.keys = np.concatenate([self.keys, keys])
        if len(self.sample) > SAMPLE_ROWS:
            kept = np.argpartition(self.keys, SAMPLE_ROWS)[:SAMPLE_ROWS]
            self.sample, self.keys = self.sample[kept], self.keys[kept]

    @property
    def dtype(self) -> str:
        """One dtype for the whole column: the pieces' own, or float64 when numeric pieces
        disagree (a CSV piece with a gap reads as float), else object."""
        if len(self.dtypes) == 1:
            return next(iter(self.dtypes))
        return "float64" if self.numeric else "object"


def _merge_moments(state: list[float] | None, values: np.ndarray) -> list[float]:
    """[n, mean, M2] of the values so far merged with `values` (Chan et al.)."""
    n2, mean2 = len(values), float(values.mean())
    m2_2 = float(((values - mean2) ** 2).sum())
    if state is None:
        return [n2, mean2, m2_2]
    n1, mean1, m2_1 = state
    n = n1 + n2
    delta = mean2 - mean1
    return [n, mean1 + delta * n2 / n, m2_1 + m2_2 + delta**2 * n1 * n2 / n]


def fit_streamed(
    frames: Iterable[pd.DataFrame],
    *,
    kinds: dict[str, str] | None = None,
    missing: str | dict[str, str] = "error",
    transform: str = "standard",
    bounds: dict[str, Any] | None = None,
    categories: dict[str, list[Any]] | None = None,
    declared_only: bool = False,
) -> tuple[TabularCodec, int]:
    """The codec of the table whose pieces `frames` yields, and its row count (after missing:
    drop), in one pass. Options as `TabularCodec.fit` (DP histogram statistics excepted)."""
    declared = {"bounds": bounds or {}, "categories": categories or {}}
    rng = np.random.default_rng(_SAMPLE_SEED)
    columns: dict[str, _Column] = {}
    offset = 0
    for frame in frames:
        frame = frame.set_axis(pd.RangeIndex(offset, offset + len(frame)))  # rows named globally
        frame.columns = [str(c) for c in frame.columns]
        offset += len(frame)
        if not columns:
            names = list(frame.columns)
            check_fit_options(names, kinds, missing, transform, declared, declared_only, None)
            columns = {name: _Column(name) for name in names}
        keep = rows_without_gaps(frame, missing)
        if keep is not None:
            frame = frame.iloc[keep]
        for name, stats in columns.items():
            stats.add(frame[name], rng)
    if not columns or not next(iter(columns.values())).rows:
        raise DataError("the table is empty: at least 1 row is required")
    policies, default = policy_dict(missing), missing if isinstance(missing, str) else "error"
    specs = []
    for name, stats in columns.items():
        kind = (kinds or {}).get(name) or (
            declared_kind(name, declared) if declared_only else _infer_kind(stats)
        )
        if kind not in KINDS:
            raise DataError(f"column {name!r}: unknown kind {kind!r}; valid: {', '.join(KINDS)}")
        policy = policies.get(name, default)
        if name in declared["bounds"] or name in declared["categories"] or declared_only:
            empty = pd.Series([], dtype=stats.dtype)  # the declared spec reads the dtype only
            specs.append(declared_column(name, empty, kind, policy, declared, transform))
        else:
            specs.append(_spec(stats, kind, policy, transform))
    codec = TabularCodec(specs, feature_names=list(columns), from_array=False, transform=transform)
    return codec, next(iter(columns.values())).rows


def _infer_kind(stats: _Column) -> Kind:
    """`fds.data.schema.infer_kind` from the column's statistics."""
    if stats.boolean:
        return "binary"
    distinct = None if stats.counts is None else len(stats.counts)
    if not stats.numeric:
        return "binary" if distinct == 2 else "categorical"
    if distinct == 2 and set(stats.counts.index.astype(float)) <= {0.0, 1.0}:
        return "binary"
    if (distinct is None or distinct > 2) and stats.low >= 0 and stats.integer:
        return "count"
    return "continuous"


def _spec(stats: _Column, kind: Kind, policy: str, transform: str) -> ColumnSpec:
    name = stats.name
    spec = ColumnSpec(name=name, kind=kind, dtype=stats.dtype, missing=policy)
    if stats.values == 0:
        raise DataError(f"column {name!r} has no values (all missing)")
    if stats.first_gap is not None and policy in ("error", "drop"):
        raise DataError(
            f"column {name!r} has a missing value (NaN) at row {stats.first_gap!r}; set missing: "
            f"model or impute (or missing: {{{name!r}: model}}), or drop the rows first"
        )
    spec.indicator = policy == "model" and stats.first_gap is not None
    if kind in ("continuous", "count"):
        return _numeric_spec(stats, spec, transform)
    if stats.counts is None:
        raise DataError(
            f"column {name!r} has more than {MAX_LEVELS:,} distinct values: too many categories; "
            "declare it continuous (columns: {name: continuous}) or leave it out"
        )
    levels = sorted(stats.counts.index.tolist(), key=lambda v: (str(type(v)), v))
    if kind == "binary" and len(levels) > 2:
        raise DataError(f"column {name!r} is declared binary but has {len(levels)} distinct values")
    spec.categories = [plain(v) for v in levels]
    check_labels(name, spec.categories)
    top = stats.counts.max()
    spec.fill = next(plain(v) for v in levels if stats.counts[v] == top)  # pandas' mode
    return spec


def _numeric_spec(stats: _Column, spec: ColumnSpec, transform: str) -> ColumnSpec:
    if not stats.numeric:
        raise DataError(
            f"column {spec.name!r} is declared {spec.kind} but holds non-numeric values"
        )
    if spec.kind == "count" and (stats.low < 0 or not stats.integer):
        raise DataError(
            f"column {spec.name!r} is declared count but holds negative or fractional values"
        )
    sample = stats.sample
    spec.fill = float(np.median(sample))
    spec.support = [float(stats.low), float(stats.high)]
    spec.decimals = stats.decimals
    if transform == "bounded":
        spec.bounded = True
        spec.log_scale = log_scale_for(sample, spec.support[0])
    if transform == "quantile" and spec.kind == "continuous":
        levels = np.linspace(0, 1, min(N_QUANTILES, max(stats.values, 2)))
        spec.quantiles = np.quantile(premap(spec, sample), levels).tolist()
    elif spec.bounded:  # the logit of the position in the range needs the range first
        mapped = premap(spec, sample)
        spec.center, spec.scale = float(mapped.mean()), float(mapped.std()) or 1.0
    else:
        n, mean, m2 = stats.moments["log1p" if spec.kind == "count" else "identity"]
        spec.center, spec.scale = float(mean), float(np.sqrt(m2 / n)) or 1.0
    return spec
