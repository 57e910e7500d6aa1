"""Experiment tracking: `--log mlflow[=URI]` and `--log tensorboard[=DIR]` on every command that
trains (train, federated simulate, tune). One small protocol (`Tracker`), one backend per tool;
neither tool is a dependency of FDS (extras `fds[mlflow]`, `fds[tensorboard]`), so each backend
imports its package only when a run asks for it."""

from fds.tracking.base import Tracker, epoch_logger, numeric, run_files, tracked_run
from fds.tracking.open import KINDS, open_tracker

__all__ = [
    "KINDS",
    "Tracker",
    "epoch_logger",
    "numeric",
    "open_tracker",
    "run_files",
    "tracked_run",
]
