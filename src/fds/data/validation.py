"""Input checks shared by every layer that takes numbers from the user (latents, features, columns).

The model computes in float32, so a value beyond float32's largest magnitude cannot be represented
however it is scaled afterwards: such values are refused like NaN, with a line naming where.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fds.errors import DataError

FLOAT32_MAX = float(np.finfo(np.float32).max)


def first_unrepresentable(values: np.ndarray) -> int | None:
    """Position of the first NaN, inf or |value| > FLOAT32_MAX in a 1-D array; None if all fit."""
    bad = ~(np.abs(values) <= FLOAT32_MAX)  # NaN compares False, so it is caught here too
    return int(np.argmax(bad)) if bad.any() else None


def why_unrepresentable(value: float) -> str:
    """The reason a value was refused, for a one-line error."""
    if np.isfinite(value):
        return (
            f"beyond ±{FLOAT32_MAX:.3g}, the largest magnitude FDS models (float32); "
            "rescale the column (e.g. other units) or drop the row"
        )
    return "replace it or drop the row"


def as_matrix(Z: Any, what: str, width: int | None = None) -> np.ndarray:
    """A finite, non-empty 2-D float64 array, or one DataError line naming `what` and the problem."""
    try:
        Z = np.asarray(Z, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise DataError(f"{what} must be numeric") from None
    if Z.ndim != 2:
        raise DataError(f"{what} must be a 2-D array (rows × features), got shape {Z.shape}")
    if Z.shape[0] == 0 or Z.shape[1] == 0:
        raise DataError(f"{what} is empty (shape {Z.shape})")
    if width is not None and Z.shape[1] != width:
        raise DataError(f"{what} has {Z.shape[1]} features, expected {width}")
    bad = ~np.isfinite(Z)
    if bad.any():
        raise DataError(f"{what} holds {int(bad.sum())} NaN or inf value(s)")
    huge = np.abs(Z) > FLOAT32_MAX
    if huge.any():
        raise DataError(
            f"{what} holds {int(huge.sum())} value(s) beyond ±{FLOAT32_MAX:.3g} (float32's range)"
        )
    return Z
