"""A numeric column's support (range, integers, decimal precision) and the bounded transform.

Decoded or sampled values must be values the column could hold: inside the range seen at fit (or
the declared bounds), integers where the data held integers, and with the data's number of
decimals. `snap` enforces that on any decoded value. The bounded transform goes further: it maps
[low, high] onto the whole real line (the logit of the value's position in the range, a small
margin keeping the ends finite), so whatever the decoder outputs decodes inside the range without
piling samples on the clipped ends. A right-skewed column is first spread by a log, scaled by its
median distance from the low end (so the log's effect does not depend on the column's units),
which plays the part of the log1p users apply to money columns by hand.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit

MAX_DECIMALS = 6  # past this, a float32 model cannot tell the digits apart: no rounding
MARGIN = 0.01  # the ends of the range map to logit(0.01) and logit(0.99), about ±4.6
SKEW_FOR_LOG = 1.0  # sample skewness above which a bounded column is log-spread first


def detect_decimals(values: np.ndarray) -> int | None:
    """The fewest decimals that reproduce every value (0: integers), None when more than
    MAX_DECIMALS would be needed (a measured float: no rounding)."""
    tolerance = 1e-9 * np.maximum(1.0, np.abs(values))
    for decimals in range(MAX_DECIMALS + 1):
        if (np.abs(np.round(values, decimals) - values) <= tolerance).all():
            return decimals
    return None


def log_scale_for(values: np.ndarray, low: float) -> float | None:
    """The scale of the log spread for a right-skewed column (its median distance from `low`),
    None for a column that is not skewed enough to need one."""
    if len(values) < 3 or values.std() == 0:
        return None
    centred = values - values.mean()
    skew = float((centred**3).mean() / values.std() ** 3)
    if skew <= SKEW_FOR_LOG:
        return None
    offset = values - low
    scale = float(np.median(offset)) or float(offset.mean())
    return scale if scale > 0 else None


def _spread(x: np.ndarray, low: float, log_scale: float | None) -> np.ndarray:
    offset = x - low
    return np.log1p(offset / log_scale) if log_scale else offset


def _unspread(g: np.ndarray, low: float, log_scale: float | None) -> np.ndarray:
    return low + (np.expm1(g) * log_scale if log_scale else g)


def to_logit(x: np.ndarray, bounds: list[float], log_scale: float | None) -> np.ndarray:
    """Values in [low, high] (clipped there first) → the real line, monotone."""
    low, high = bounds
    span = float(_spread(np.array([high]), low, log_scale)[0]) or 1.0  # a constant column: 0
    unit = np.clip(_spread(np.clip(x, low, high), low, log_scale) / span, 0.0, 1.0)
    return logit(MARGIN + (1 - 2 * MARGIN) * unit)


def from_logit(v: np.ndarray, bounds: list[float], log_scale: float | None) -> np.ndarray:
    """The inverse of `to_logit`; any real input lands in [low, high]."""
    low, high = bounds
    span = float(_spread(np.array([high]), low, log_scale)[0]) or 1.0
    unit = np.clip((expit(v) - MARGIN) / (1 - 2 * MARGIN), 0.0, 1.0)
    return np.clip(_unspread(unit * span, low, log_scale), low, high)


def snap(values: np.ndarray, bounds: list[float] | None, decimals: int | None) -> np.ndarray:
    """Round to the column's precision, then keep inside its range (whose ends are data values,
    or declared, so rounding first cannot step outside)."""
    if decimals is not None:
        values = np.round(values, decimals)
    if bounds is not None:
        values = np.clip(values, *bounds)
    return values
