"""Constraints on rows (fixed ranges, `A <= B`, fixed combinations, positive columns): checked
against the training rows at fit, and tested on every sampled row.

The rule types are options (`fds.config`'s `Constraint`); this module gives them their meaning on
a table: `fit_constraints` refuses rules that name missing or ill-typed columns or that the
training rows break, and learns the combinations a `fixed_combinations` rule allows;
`holds(rule, frame)` says which rows obey a rule. Sampling keeps only rows that obey every rule
(`fds.data.rejection`), so a sample never breaks one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from fds.config import (
    Constraint,
    FixedCombinationsConstraint,
    InequalityConstraint,
    PositiveConstraint,
    RangeConstraint,
)
from fds.errors import ConfigError, DataError

NUMERIC = "numeric"
CATEGORICAL = "categorical"


def describe(rule: Constraint) -> str:
    """The rule as a person writes it: `age in [18, 99]`, `start <= end`, …"""
    if isinstance(rule, RangeConstraint):
        low = "-inf" if rule.low is None else f"{rule.low:g}"
        high = "inf" if rule.high is None else f"{rule.high:g}"
        return f"{rule.column} in [{low}, {high}]"
    if isinstance(rule, InequalityConstraint):
        return f"{rule.low} {'<' if rule.strict else '<='} {rule.high}"
    if isinstance(rule, PositiveConstraint):
        return f"{rule.column} {'>' if rule.strict else '>='} 0"
    return f"fixed combinations of {', '.join(rule.columns)}"


def columns_of(rule: Constraint) -> tuple[str, ...]:
    """The columns a rule reads."""
    if isinstance(rule, InequalityConstraint):
        return (rule.low, rule.high)
    if isinstance(rule, FixedCombinationsConstraint):
        return rule.columns
    return (rule.column,)


def role_of(rule: Constraint) -> str:
    """What its columns must hold: numbers, or categories (fixed combinations)."""
    return CATEGORICAL if isinstance(rule, FixedCombinationsConstraint) else NUMERIC


def holds(rule: Constraint, frame: pd.DataFrame) -> np.ndarray:
    """Which rows obey `rule` (a missing value in a column it reads counts as obeying, as in SDV:
    missing values are the missing-value model's business, not the constraint's)."""
    if isinstance(rule, FixedCombinationsConstraint):
        return _allowed_combinations(rule, frame)
    if isinstance(rule, InequalityConstraint):
        low, high = _numbers(frame, rule.low), _numbers(frame, rule.high)
        with np.errstate(invalid="ignore"):
            ok = low < high if rule.strict else low <= high
        return ok | np.isnan(low) | np.isnan(high)
    values = _numbers(frame, rule.column)
    with np.errstate(invalid="ignore"):
        if isinstance(rule, PositiveConstraint):
            ok = values > 0 if rule.strict else values >= 0
        else:
            ok = np.ones(len(values), bool)
            if rule.low is not None:
                ok &= values >= rule.low
            if rule.high is not None:
                ok &= values <= rule.high
    return ok | np.isnan(values)


def fit_constraints(
    rules: Sequence[Constraint], frame: pd.DataFrame, *, private: bool
) -> tuple[Constraint, ...]:
    """The rules ready to sample with: each checked against the training table (its columns
    exist and hold numbers or categories as it needs, and every training row obeys it), and each
    `fixed_combinations` without declared combinations given the ones the rows hold. `private`
    (DP training) refuses reading combinations from the data."""
    fitted = []
    for rule in rules:
        name = describe(rule)
        for column in columns_of(rule):
            if column not in frame.columns:
                raise DataError(f"constraint {name}: the data has no column {column!r}")
            if role_of(rule) == NUMERIC and not pd.api.types.is_numeric_dtype(frame[column]):
                raise DataError(f"constraint {name}: column {column!r} must hold numbers")
        if isinstance(rule, FixedCombinationsConstraint) and rule.combinations is None:
            if private:
                raise ConfigError(
                    f"constraint {name}: DP training reads no combinations from the data; "
                    "declare them (combinations: [[...], ...])"
                )
            rule = rule.model_copy(update={"combinations": _seen(frame, rule.columns)})
        broken = ~holds(rule, frame)
        if broken.any():
            first = frame.index[int(np.argmax(broken))]
            raise DataError(
                f"constraint {name} fails on {int(broken.sum())} training row(s), the first at "
                f"row {_plain(first)!r}: fix the data or the constraint"
            )
        fitted.append(rule)
    return tuple(fitted)


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _key(value: Any) -> Any:
    """A value as a combination holds it: numbers compare by value (1 == 1.0 == True is how
    pandas sees them too), text by text."""
    value = _plain(value)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _seen(frame: pd.DataFrame, columns: tuple[str, ...]) -> tuple[tuple[Any, ...], ...]:
    rows = frame[list(columns)].dropna().drop_duplicates()
    combos = {tuple(_plain(v) for v in row) for row in rows.itertuples(index=False)}
    return tuple(sorted(combos, key=lambda c: tuple(map(str, c))))


def _allowed_combinations(rule: FixedCombinationsConstraint, frame: pd.DataFrame) -> np.ndarray:
    if rule.combinations is None:  # a model that was not fitted by FDS.fit (a federated run)
        raise ConfigError(
            f"constraint {describe(rule)} has no combinations: declare them "
            "(combinations: [[...], ...]) or fit the model on the table"
        )
    allowed = {tuple(map(_key, combo)) for combo in rule.combinations}
    part = frame[list(rule.columns)]
    missing = part.isna().any(axis=1).to_numpy()
    seen = np.fromiter(
        (tuple(map(_key, row)) in allowed for row in part.itertuples(index=False)),
        dtype=bool,
        count=len(part),
    )
    return seen | missing


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
