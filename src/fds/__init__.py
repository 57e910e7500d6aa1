"""FDS: factorized stochastic autoencoders that decompose, synthesize and protect sensitive data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fds._version import __version__
from fds.errors import ConfigError, DataError, FDSError, ModelFormatError, TrainingDivergedError

if TYPE_CHECKING:
    from fds.estimator import FDS
    from fds.workflows.tune import tune

__all__ = [
    "FDS",
    "ConfigError",
    "DataError",
    "FDSError",
    "ModelFormatError",
    "TrainingDivergedError",
    "__version__",
    "tune",
]


def __getattr__(name: str) -> Any:
    """`fds.FDS` imports the estimator (and torch) on first use, `fds.tune` the tuning workflow
    (and Optuna), so importing `fds.errors` or the CLI does not."""
    if name == "FDS":
        from fds.estimator import FDS

        return FDS
    if name == "tune":  # fds.tune(...): an Optuna study over FDS options (fds.workflows.tune)
        from fds.workflows.tune import tune

        return tune
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
