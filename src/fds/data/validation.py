"""Input checks shared by every layer that takes a plain numeric matrix (latents, features)."""

from __future__ import annotations

from typing import Any

import numpy as np

from fds.errors import DataError


def as_matrix(Z: Any, what: str, width: int | None = None) -> np.ndarray:
    """A finite, non-empty 2-D float64 array, or one DataError line naming `what` and the problem."""
    try:
        Z = np.asarray(Z, dtype=np.float64)
    except (TypeError, ValueError):
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
    return Z
