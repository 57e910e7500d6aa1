"""Conditions on sampled rows (`sex=female`, `age>=30`): parsed, typed by the column's kind, and
checked against what the model can produce before any row is drawn.

A condition names a column the model was fitted on, an operator (`==` or `=`, `!=`, `<`, `<=`,
`>`, `>=`) and a value: a number for a numeric column, one of the known categories for a
categorical one (ordering operators only when its categories are numbers). A value the model
never produces (an unknown category, a number outside the column's known support or a declared
range, an equality no allowed combination holds) is refused at once with `ConditionNotMetError`,
naming the condition; the rest is decided by drawing (`fds.data.rejection`).
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fds.config import Constraint, FixedCombinationsConstraint, PositiveConstraint, RangeConstraint
from fds.data.constraints import describe
from fds.data.tabular import ColumnSpec
from fds.errors import ConditionNotMetError, DataError

OPERATORS = ("==", "!=", "<", "<=", ">", ">=")
_ORDERING = ("<", "<=", ">", ">=")
_PATTERN = re.compile(r"^\s*(?P<column>.+?)\s*(?P<op>==|!=|<=|>=|=|<|>)\s*(?P<value>.*?)\s*$", re.S)
_NUMERIC_KINDS = ("continuous", "count")


@dataclass(frozen=True)
class Condition:
    """`column op value`, the value typed as the column's values are."""

    column: str
    op: str
    value: Any
    numeric: bool  # compared as numbers (numeric columns, categories that are numbers)
    text: str  # as the user wrote it, to name it in messages

    def __str__(self) -> str:
        return self.text

    def meets(self, frame: pd.DataFrame) -> np.ndarray:
        """Which rows meet the condition (a missing value meets none)."""
        column = frame[self.column]
        present = column.notna().to_numpy()
        if self.numeric:
            values = pd.to_numeric(column, errors="coerce").to_numpy(np.float64, na_value=np.nan)
            with np.errstate(invalid="ignore"):
                met = _compare(values, self.op, float(self.value))
        else:
            equal = (column.astype(object) == self.value).to_numpy(dtype=bool)
            met = equal if self.op == "==" else ~equal
        return met & present


def _compare(values: np.ndarray, op: str, value: float) -> np.ndarray:
    return {
        "==": values == value,
        "!=": values != value,
        "<": values < value,
        "<=": values <= value,
        ">": values > value,
        ">=": values >= value,
    }[op]


def parse_conditions(
    conditions: Any, columns: Mapping[str, ColumnSpec], rules: Sequence[Constraint] = ()
) -> list[Condition]:
    """`conditions` as typed `Condition`s: a mapping {column: value} (equalities), or a text
    `column OP value`, or a sequence of such texts or (column, op, value) triples. `columns`: the fitted columns'
    specs; `rules`: the model's constraints, which narrow what a condition may ask."""
    if conditions is None:
        return []
    if isinstance(conditions, str):
        conditions = [conditions]
    if isinstance(conditions, Mapping):
        items = [
            (str(column), "==", value, f"{column}={value}") for column, value in conditions.items()
        ]
    elif not isinstance(conditions, Sequence):
        raise DataError(
            "conditions must be a mapping {column: value} or a list of 'column OP value' texts, "
            f"got {type(conditions).__name__}"
        )
    else:
        items = [_split(item) for item in conditions]
    parsed = [_typed(*item, columns, rules) for item in items]
    _check_combinations(parsed, rules)
    return parsed


def _split(item: Any) -> tuple[str, str, Any, str]:
    """(column, op, value, text) of one condition given as text or as a triple."""
    if isinstance(item, str):
        match = _PATTERN.match(item)
        if match is None or not match["value"]:
            raise DataError(
                f"condition {item!r} is not COLUMN OP VALUE (OP one of "
                f"{', '.join(OPERATORS)}, or =), e.g. sex=female or age>=30"
            )
        return match["column"], match["op"], match["value"], item
    if isinstance(item, Sequence) and len(item) == 3 and isinstance(item[0], str):
        column, op, value = item
        return column, str(op), value, f"{column}{op}{value}"
    raise DataError(f"condition {item!r:.60} is neither 'column OP value' nor (column, op, value)")


def _typed(
    column: str,
    op: str,
    value: Any,
    text: str,
    columns: Mapping[str, ColumnSpec],
    rules: Sequence[Constraint],
) -> Condition:
    op = "==" if op == "=" else op
    if op not in OPERATORS:
        raise DataError(f"condition {text}: unknown operator {op!r}; valid: {', '.join(OPERATORS)}")
    spec = columns.get(column)
    if spec is None:
        close = difflib.get_close_matches(column, list(columns), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise DataError(f"condition {text}: the model has no column {column!r}{hint}")
    if spec.kind in _NUMERIC_KINDS:
        condition = Condition(column, op, _number(value, text, column), True, text)
        _check_support(condition, spec, rules, text)
        return condition
    return _categorical(column, op, value, text, spec)


def _number(value: Any, text: str, column: str) -> float:
    if isinstance(value, bool) or not isinstance(value, str | int | float | np.number):
        raise DataError(f"condition {text}: column {column!r} holds numbers, got {value!r:.40}")
    try:
        number = float(value)
    except ValueError:
        raise DataError(
            f"condition {text}: column {column!r} holds numbers, {value!r:.40} is not one"
        ) from None
    if not math.isfinite(number):
        raise DataError(f"condition {text}: the value must be a finite number")
    return number


def _categorical(column: str, op: str, value: Any, text: str, spec: ColumnSpec) -> Condition:
    categories = list(spec.categories)
    numbers = all(isinstance(c, int | float) and not isinstance(c, bool) for c in categories)
    if op in _ORDERING:
        if not numbers:
            raise DataError(
                f"condition {text}: {op} needs numbers, and column {column!r} holds categories "
                "(use = or !=)"
            )
        return Condition(column, op, _number(value, text, column), True, text)
    found = (
        [c for c in categories if type(c) is type(value) and c == value]
        or [c for c in categories if str(c) == str(value)]
        or [c for c in categories if _same_label(c, value)]
    )
    if not found:
        shown = ", ".join(map(str, categories[:10])) + (", …" if len(categories) > 10 else "")
        close = difflib.get_close_matches(str(value), list(map(str, categories)), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConditionNotMetError(
            f"condition {text}: {value!r:.40} is not a category of column {column!r}{hint}; "
            f"known: {shown}"
        )
    return Condition(column, op, found[0], False, text)


def _same_label(category: Any, value: Any) -> bool:
    """Text typed for a category that is not text: `true` for True, `2.0` for 2."""
    text = str(value).strip().lower()
    if isinstance(category, bool):
        return text == str(category).lower()
    if isinstance(category, int | float):
        try:
            return float(text) == category
        except ValueError:
            return False
    return False


def _check_support(
    condition: Condition, spec: ColumnSpec, rules: Sequence[Constraint], text: str
) -> None:
    """Refuse a numeric condition no value of the column's known support meets: its declared
    bounds or training range (quantiles), a count's non-negative integers, and its constraints."""
    low, high = (-math.inf, ""), (math.inf, "")
    if spec.bounds is not None:
        low, high = (spec.bounds[0], "its declared bounds"), (spec.bounds[1], "its declared bounds")
    elif spec.quantiles is not None:
        low = (spec.quantiles[0], "the training range")
        high = (spec.quantiles[-1], "the training range")
    if spec.kind == "count" and low[0] < 0:
        low = (0.0, "a count")
    for rule in rules:
        if isinstance(rule, RangeConstraint) and rule.column == condition.column:
            if rule.low is not None and rule.low > low[0]:
                low = (rule.low, f"constraint {describe(rule)}")
            if rule.high is not None and rule.high < high[0]:
                high = (rule.high, f"constraint {describe(rule)}")
        if isinstance(rule, PositiveConstraint) and rule.column == condition.column and low[0] < 0:
            low = (0.0, f"constraint {describe(rule)}")
    value, op = float(condition.value), condition.op
    if op in ("==", ">", ">=") and (value > high[0] or (op == ">" and value >= high[0])):
        raise ConditionNotMetError(
            f"condition {text} cannot be met: {condition.column} is at most {high[0]:g} ({high[1]})"
        )
    if op in ("==", "<", "<=") and (value < low[0] or (op == "<" and value <= low[0])):
        raise ConditionNotMetError(
            f"condition {text} cannot be met: {condition.column} is at least {low[0]:g} ({low[1]})"
        )
    if op == "==" and spec.kind == "count" and not value.is_integer():
        raise ConditionNotMetError(
            f"condition {text} cannot be met: {condition.column} is a count (whole numbers)"
        )


def _check_combinations(conditions: list[Condition], rules: Sequence[Constraint]) -> None:
    """Refuse conditions that no combination a `fixed_combinations` rule allows meets together."""
    for rule in rules:
        if not isinstance(rule, FixedCombinationsConstraint) or rule.combinations is None:
            continue
        mine = [c for c in conditions if c.column in rule.columns]
        if not mine:
            continue
        table = pd.DataFrame(list(rule.combinations), columns=list(rule.columns), dtype=object)
        met = np.ones(len(table), bool)
        for condition in mine:
            met &= condition.meets(table)
        if not met.any():
            shown = ", ".join(map(str, mine))
            raise ConditionNotMetError(
                f"condition {shown} cannot be met: constraint {describe(rule)} allows no "
                "combination that meets it"
            )
