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
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fds.errors import ConditionNotMetError

DRAWS_PER_ROW = 200  # the default budget: this many draws per requested row …
MIN_DRAWS = 100_000  # … and never fewer than this in all
_MIN_BATCH, _MAX_BATCH = 1024, 65_536
_QUIET_SECONDS = 1.0  # a bar appears only once sampling has run this long


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
    progress: bool = False,
) -> Accepted:
    """Up to `n` rows of `draw(size, batch_number)` (a DataFrame or an array) that pass every rule
    (`as_frame` gives a batch column names to test on), drawing at most `max_draws` rows.
    `progress`: a bar on stderr once sampling takes more than a second."""
    budget = default_budget(n) if max_draws is None else int(max_draws)
    if budget < n:
        raise ConditionNotMetError(f"max_draws={budget} is below the {n} rows asked for")
    with _Bar(progress, n) as bar:
        kept, n_kept, drawn, passed = _draw_batches(draw, as_frame, rules, n, budget, bar)
    out = np.concatenate(kept) if isinstance(kept[0], np.ndarray) else pd.concat(kept)
    out = out[:n] if isinstance(out, np.ndarray) else out.iloc[:n].reset_index(drop=True)
    if n_kept == 0 or (n_kept < n and not allow_fewer):
        raise ConditionNotMetError(_shortfall(rules, passed, min(n_kept, n), n, drawn))
    return Accepted(out, drawn)


def _draw_batches(
    draw: Callable[[int, int], Any],
    as_frame: Callable[[Any], pd.DataFrame],
    rules: Sequence[Rule],
    n: int,
    budget: int,
    bar: _Bar,
) -> tuple[list[Any], int, int, np.ndarray]:
    """(the batches' kept rows, how many, rows drawn, how many passed each rule)."""
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
        bar.update(n_kept, drawn)
    return kept, n_kept, drawn, passed


class _Bar:
    """Rows kept of `n` and rows drawn, on stderr, once sampling has run a second (a fast sample
    prints nothing); a no-op when disabled (tests, --quiet)."""

    def __init__(self, enabled: bool, n: int) -> None:
        self.enabled, self.n = enabled, n
        self._started = time.monotonic()
        self._progress: Progress | None = None
        self._task: Any = None

    def __enter__(self) -> _Bar:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, kept: int, drawn: int) -> None:
        if not self.enabled or time.monotonic() - self._started < _QUIET_SECONDS:
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[bold]sampling"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("rows kept, {task.fields[drawn]} drawn"),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("sampling", total=self.n, drawn="0")
        self._progress.update(self._task, completed=min(kept, self.n), drawn=f"{drawn:,}")


def _shortfall(rules: Sequence[Rule], passed: np.ndarray, kept: int, n: int, drawn: int) -> str:
    """One line: how many rows were kept, and the rules that held least often."""
    order = np.argsort(passed, kind="stable")[:3]
    held = "; ".join(f"{rules[i].name} held in {passed[i]:,}" for i in order)
    if kept == 0:
        head = f"no sampled row met {_names(rules, passed)} in {drawn:,} draws ({held})"
        return f"{head}; nothing was sampled: relax them or raise max_draws (--max-draws)"
    needed = math.ceil(1.1 * n * drawn / kept)
    return (
        f"only {kept:,} of {n:,} rows met {_names(rules, passed)} in {drawn:,} draws ({held}); pass "
        f"allow_fewer (--allow-fewer) to keep them, or raise max_draws (--max-draws) to about "
        f"{needed:,}"
    )


def _names(rules: Sequence[Rule], passed: np.ndarray) -> str:
    """The rule that held least often first: it is the likely culprit."""
    worst = rules[int(np.argmin(passed))].name
    return worst if len(rules) == 1 else f"{worst} with {len(rules) - 1} other rule(s)"
