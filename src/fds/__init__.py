"""FDS: factorized stochastic autoencoders that decompose, synthesize and protect sensitive data."""

from __future__ import annotations

__version__ = "0.1.0"

from fds.errors import ConfigError, DataError, FDSError, ModelFormatError, TrainingDivergedError
from fds.estimator import FDS

__all__ = [
    "FDS",
    "ConfigError",
    "DataError",
    "FDSError",
    "ModelFormatError",
    "TrainingDivergedError",
]
