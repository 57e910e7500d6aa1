"""FDS: factorized stochastic autoencoders that decompose, synthesize and protect sensitive data."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fds.errors import ConfigError, DataError, FDSError, ModelFormatError, TrainingDivergedError

if TYPE_CHECKING:
    from fds.estimator import FDS

__version__ = "0.1.0"

__all__ = [
    "FDS",
    "ConfigError",
    "DataError",
    "FDSError",
    "ModelFormatError",
    "TrainingDivergedError",
]


def __getattr__(name: str) -> Any:
    """`fds.FDS` imports the estimator (and torch) on first use, so importing `fds.errors` or the
    CLI does not."""
    if name == "FDS":
        from fds.estimator import FDS

        return FDS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
