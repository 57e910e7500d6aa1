"""The tracker protocol and what every backend shares: which numbers and files a run reports."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

__all__ = ["Tracker", "epoch_logger", "numeric", "run_files", "tracked_run"]

# Files of a run directory that are not worth an artifact copy: checkpoints are large and only
# serve --resume; the model directory holds the same weights.
_SKIPPED = ("checkpoints",)


class Tracker(Protocol):
    """One experiment-tracking backend; runs are started and ended one after another."""

    def start_run(self, name: str, params: Mapping[str, Any]) -> None:
        """Begin run `name` and record its parameters (nested values are flattened)."""

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """Record numbers at `step` (an epoch or round), or as the run's final figures."""

    def log_artifacts(self, paths: Sequence[Path]) -> None:
        """Keep files and folders (model directory, report, PNGs) with the run."""

    def end_run(self, status: str = "FINISHED") -> None:
        """Close the run: FINISHED, FAILED or KILLED."""


def numeric(values: Mapping[str, Any], prefix: str = "") -> dict[str, float]:
    """The finite numbers of a (nested) summary, flattened to `a.b.c` keys; booleans, strings
    and NaN are left out because trackers plot numbers."""
    flat: dict[str, float] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat |= numeric(value, f"{name}.")
        elif (
            isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
        ):
            flat[re.sub(r"[^\w\-. /]", "_", name)] = float(value)
    return flat


def flat_params(values: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Parameters as `a.b` → text (what MLflow stores and TensorBoard shows)."""
    flat: dict[str, str] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat |= flat_params(value, f"{name}.")
        else:
            flat[re.sub(r"[^\w\-. /]", "_", name)] = str(value)[:500]
    return flat


def run_files(run_dir: Path) -> list[Path]:
    """What a run directory holds worth keeping with a tracked run (all but checkpoints/)."""
    if not run_dir.is_dir():
        return []
    return [
        p
        for p in sorted(run_dir.iterdir())
        if p.name not in _SKIPPED and not p.name.startswith(".")
    ]


@contextmanager
def tracked_run(
    tracker: Tracker | None, name: str, params: Mapping[str, Any]
) -> Iterator[Tracker | None]:
    """Start a run on `tracker` (nothing without one) and end it with the status the block had:
    FINISHED, KILLED (Ctrl-C) or FAILED."""
    if tracker is None:
        yield None
        return
    tracker.start_run(name, params)
    status = "FAILED"
    try:
        yield tracker
        status = "FINISHED"
    except KeyboardInterrupt:
        status = "KILLED"
        raise
    finally:
        tracker.end_run(status)


def epoch_logger(
    tracker: Tracker | None, then: Callable[[dict[str, Any]], None] | None = None
) -> Callable[[dict[str, Any]], None] | None:
    """The Trainer's `on_epoch`: log the epoch's record at its epoch, then call `then`."""
    if tracker is None:
        return then

    def on_epoch(record: dict[str, Any]) -> None:
        tracker.log_metrics(record, step=int(record.get("epoch", 0)))
        if then is not None:
            then(record)

    return on_epoch
