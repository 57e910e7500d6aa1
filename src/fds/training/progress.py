"""Rich progress bars: training (one bar per epoch, rows/s, ETA and the running loss terms beside
it), and `RowProgress` for commands that stream a table (rows done, rows/s, ETA)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

_REFRESH_SECONDS = 0.25


class RowsPerSecond(ProgressColumn):
    """The task's speed in rows per second (a task counting steps sets field rows_per_step)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        if speed is None:
            return Text("")
        return Text(f"{speed * task.fields.get('rows_per_step', 1):,.0f} rows/s")


class TrainingProgress:
    """Shows progress on stderr when enabled; a no-op otherwise (tests, --quiet, --json)."""

    def __init__(self, enabled: bool, epochs: int, rows_per_step: int = 1) -> None:
        self.enabled, self.epochs, self.rows_per_step = enabled, epochs, rows_per_step
        self._progress: Progress | None = None
        self._task: Any = None
        self._sums: dict[str, float] = {}
        self._count = 0
        self._last = 0.0

    def __enter__(self) -> TrainingProgress:
        if self.enabled:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                RowsPerSecond(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[terms]}"),
                console=Console(file=sys.stderr),
            )
            self._progress.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            if exc is not None and self._task is not None:  # the error line replaces its bar
                self._progress.remove_task(self._task)
            self._progress.stop()

    def start_epoch(self, epoch: int, steps: int, done: int) -> None:
        self._sums, self._count = {}, 0
        if self._progress is not None:
            description = f"epoch {epoch + 1}/{self.epochs}"
            self._task = self._progress.add_task(
                description, total=steps, completed=done, terms="", rows_per_step=self.rows_per_step
            )

    def advance(self, terms: dict[str, float]) -> None:
        if self._progress is None:
            return
        for name, value in terms.items():
            self._sums[name] = self._sums.get(name, 0.0) + value
        self._count += 1
        now = time.monotonic()
        if now - self._last >= _REFRESH_SECONDS:
            self._last = now
            shown = " ".join(f"{k}={v / self._count:.3g}" for k, v in self._sums.items())
            self._progress.update(self._task, advance=0, completed=None, terms=shown)
        self._progress.advance(self._task)

    def end_epoch(self, record: dict[str, Any]) -> None:
        if self._progress is None:
            return
        shown = f"loss={record.get('train_loss', float('nan')):.4g}"
        if "val_loss" in record:
            shown += f" val_loss={record['val_loss']:.4g} val_elbo={record['val_elbo']:.4g}"
        self._progress.update(self._task, terms=shown)


class RowProgress:
    """One bar over `total` rows (rows/s, ETA) on stderr when enabled; a no-op otherwise."""

    def __init__(self, enabled: bool, description: str, total: int | None) -> None:
        self._progress = (
            Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                RowsPerSecond(),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
            )
            if enabled
            else None
        )
        self.description, self.total = description, total

    def __enter__(self) -> RowProgress:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def advance(self, rows: int) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, rows)
