"""Typed exceptions: the CLI turns every `FDSError` into one line on stderr and exit code 2.

No imports beyond the standard library: the CLI imports this module before it knows which
command runs, and `fds --help` must stay fast.
"""

from __future__ import annotations

__all__ = [
    "ConditionNotMetError",
    "ConfigError",
    "DataError",
    "DataTypeError",
    "FDSError",
    "KeyMismatchError",
    "ModelFormatError",
    "PrivacyBudgetError",
    "TrainingDivergedError",
]


class FDSError(Exception):
    """Base class for errors caused by what the user gave us (not bugs)."""


class DataError(FDSError, ValueError):
    """Input data is missing, malformed, or inconsistent with a fitted codec."""


class ConditionNotMetError(DataError):
    """Sampling could not return the rows asked for: a condition (or constraint) names a value
    the model never produces, or too few draws met it within the budget."""


class DataTypeError(DataError, TypeError):
    """Input of a type FDS cannot read (e.g. an object array holding non-numbers)."""


class ConfigError(FDSError, ValueError):
    """An option, preset or YAML key is unknown or out of range."""


class ModelFormatError(FDSError):
    """A model directory is missing files, tampered with, or from a newer format."""


class TrainingDivergedError(FDSError, RuntimeError):
    """A loss term, a validation figure or the weights became NaN or infinite.

    `reason` says which and when, `on_disk` what the run directory keeps; the message is both."""

    def __init__(self, reason: str, on_disk: str = "") -> None:
        super().__init__(f"{reason}; {on_disk}" if on_disk else reason)
        self.reason, self.on_disk = reason, on_disk


class KeyMismatchError(DataError):
    """Ciphertexts were encrypted under another key than the context they are used with."""


class PrivacyBudgetError(FDSError):
    """A DP release or training run would spend more than the ledger's configured budget."""
