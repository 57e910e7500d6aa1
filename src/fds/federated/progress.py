"""Rich progress per round on stderr: the bar over rounds and the last round's figures beside it."""

from __future__ import annotations

import sys
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn


class RoundProgress:
    """A no-op when disabled (tests, --json)."""

    def __init__(self, enabled: bool, rounds: int) -> None:
        self.enabled, self.rounds = enabled, rounds
        self._progress: Progress | None = None

    def __enter__(self) -> RoundProgress:
        if self.enabled:
            console = Console(file=sys.stderr)
            self._progress = Progress(
                TextColumn("[bold]federated rounds"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                TextColumn("{task.fields[figures]}"),
                console=console,
            )
            self._progress.start()
            self._task = self._progress.add_task("rounds", total=self.rounds, figures="")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def update(self, record: dict[str, Any]) -> None:
        if self._progress is None:
            return
        figures = f"loss={_fmt(record.get('train_loss'))} val_elbo={_fmt(record.get('val_elbo'))}"
        figures += f" sites={record['sites_aggregated']}/{record['sites_asked']}"
        if record["rejected"] or record["failed"]:
            figures += f" rejected={len(record['rejected'])} failed={len(record['failed'])}"
        self._progress.console.print(
            f"round {record['round']}/{self.rounds}: {figures}", highlight=False
        )
        self._progress.update(self._task, advance=1, figures=figures)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"
