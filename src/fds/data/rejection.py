"""Rejection sampling with a bounded budget: draw rows in batches, keep those every rule accepts,
stop at `n` kept rows or `max_draws` drawn rows, whichever comes first.

Exact, whatever the model: a kept row is a draw from the model's distribution given that it obeys
the rules. Batches grow with the observed acceptance rate, so a rare condition costs a few large
batches and an impossible one ends at the budget. Too few rows kept is an error
(`ConditionNotMetError`, naming the rules that held least often) unless `allow_fewer`; no row
kept always is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from fds.errors import ConditionNotMetError

DRAWS_PER_ROW = 100  # the default budget: this many draws per requested row …
MIN_DRAWS = 10_000  # … and never fewer than this in all
_MIN_BATCH, _MAX_BATCH = 1024, 65_536


@dataclass(frozen=True)
class Rule:
    """A test rows must pass: its name (for messages) and which rows of a frame pass it."""

    name: str
    test: Callable[[pd.DataFrame], np.ndarray]


@dataclass
class Accepted:
    """The rows kept and how many were drawn to get them."""

    rows: Any
    draws: int


def default_budget(n: int) -> int:
    return max(DRAWS_PER_ROW * n, MIN_DRAWS)


def draw_accepted(
    draw: Callable[[int, int], Any],
    as_frame: Callable[[Any], pd.DataFrame],
    rules: Sequence[Rule],
    n: int,
    *,
    max_draws: int | None = None,
    allow_fewer: bool = False,
) -> Accepted:
    """Up to `n` rows of `draw(size, batch_number)` (a DataFrame or an array) that pass every rule
    (`as_frame` gives a batch column names to test on), drawing at most `max_draws` rows."""
    budget = default_budget(n) if max_draws is None else int(max_draws)
    if budget < n:
        raise ConditionNotMetError(f"max_draws={budget} is below the {n} rows asked for")
    kept: list[Any] = []
    n_kept, drawn, batch = 0, 0, 0
    passed = np.zeros(len(rules), np.int64)
    while n_kept < n and drawn < budget:
        rate = (n_kept + 1) / (drawn + 1)  # smoothed: the first batch assumes every row passes
        size = math.ceil(1.1 * (n - n_kept) / rate)
        size = min(budget - drawn, _MAX_BATCH, max(_MIN_BATCH, size))
        rows = draw(size, batch)
        frame = as_frame(rows)
        ok = np.ones(size, bool)
        for i, rule in enumerate(rules):
            test = np.asarray(rule.test(frame), dtype=bool)
            passed[i] += int(test.sum())
            ok &= test
        kept.append(rows[ok] if isinstance(rows, np.ndarray) else rows[ok].reset_index(drop=True))
        n_kept += int(ok.sum())
        drawn, batch = drawn + size, batch + 1
    out = np.concatenate(kept) if isinstance(kept[0], np.ndarray) else pd.concat(kept)
    out = out[:n] if isinstance(out, np.ndarray) else out.iloc[:n].reset_index(drop=True)
    if n_kept == 0 or (n_kept < n and not allow_fewer):
        raise ConditionNotMetError(_shortfall(rules, passed, min(n_kept, n), n, drawn))
    return Accepted(out, drawn)


def _shortfall(rules: Sequence[Rule], passed: np.ndarray, kept: int, n: int, drawn: int) -> str:
    """One line: how many rows were kept, and the rules that held least often."""
    order = np.argsort(passed, kind="stable")[:3]
    held = "; ".join(f"{rules[i].name} held in {passed[i]:,}" for i in order)
    if kept == 0:
        head = f"no sampled row met {_names(rules, passed)} in {drawn:,} draws ({held})"
        return f"{head}; nothing was sampled: relax them or raise max_draws (--max-draws)"
    return (
        f"only {kept:,} of {n:,} rows met {_names(rules, passed)} in {drawn:,} draws ({held}); pass "
        "allow_fewer (--allow-fewer) to keep them, or raise max_draws (--max-draws)"
    )


def _names(rules: Sequence[Rule], passed: np.ndarray) -> str:
    """The rule that held least often first: it is the likely culprit."""
    worst = rules[int(np.argmin(passed))].name
    return worst if len(rules) == 1 else f"{worst} with {len(rules) - 1} other rule(s)"
