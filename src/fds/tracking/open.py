"""`--log KIND[=WHERE]` → a tracker; a missing package is one line saying how to install it."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fds.errors import ConfigError
from fds.tracking.base import Tracker

__all__ = ["KINDS", "open_tracker"]

# kind → (the package it needs, where its runs go by default)
KINDS = {"mlflow": ("mlflow", "mlruns"), "tensorboard": ("tensorboard", "tensorboard")}


def open_tracker(specs: Sequence[str] | str | None, experiment: str = "fds") -> Tracker | None:
    """Trackers for `--log` values such as `mlflow`, `mlflow=http://host:5000`,
    `tensorboard=logs/` (several fan out to all); None for none. Checks every package is
    installed before anything trains."""
    if not specs:
        return None
    specs = [specs] if isinstance(specs, str) else list(specs)
    trackers = [_one(spec, experiment) for spec in specs]
    return trackers[0] if len(trackers) == 1 else _FanOut(trackers)


def _one(spec: str, experiment: str) -> Tracker:
    kind, _, where = spec.partition("=")
    kind = kind.strip().lower()
    if kind not in KINDS:
        raise ConfigError(
            f"--log {spec}: unknown tracker {kind!r}; use {' or '.join(KINDS)} (KIND[=WHERE])"
        )
    package, default = KINDS[kind]
    if importlib.util.find_spec(package) is None:
        raise ConfigError(
            f"--log {kind} needs the {package} package: pip install 'fds[{kind}]' "
            f"(or pip install {package})"
        )
    if kind == "mlflow":
        from fds.tracking.mlflow_backend import MLflowTracker

        return MLflowTracker(where or default, experiment)
    from fds.tracking.tensorboard_backend import TensorBoardTracker

    return TensorBoardTracker(Path(where or default) / experiment)


class _FanOut:
    """Several trackers at once (`--log mlflow --log tensorboard`)."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers

    def start_run(self, name: str, params: Mapping[str, Any]) -> None:
        for tracker in self.trackers:
            tracker.start_run(name, params)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        for tracker in self.trackers:
            tracker.log_metrics(metrics, step)

    def log_artifacts(self, paths: Sequence[Path]) -> None:
        for tracker in self.trackers:
            tracker.log_artifacts(paths)

    def end_run(self, status: str = "FINISHED") -> None:
        for tracker in self.trackers:
            tracker.end_run(status)
