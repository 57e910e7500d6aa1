"""`shapes`: 32×32 binary sprites generated from 5 known, independent factors.

Shape (square, ellipse, triangle), scale, rotation, x and y; the factors are the ground truth the
disentanglement metrics score against.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fds.data.datasets.splits import Loaded, factor_codes
from fds.errors import DataError

__all__ = ["SHAPES_FACTORS", "SHAPES_SIZE", "load_shapes", "make_shapes", "render_shapes"]

SHAPES_SIZE = 32
SHAPES_FACTORS = {"shape": 3, "scale": 6, "rotation": 8, "x": 16, "y": 16}
_SHAPES_MAX_RADIUS = 7.5  # circumscribed radius of the largest sprite, in pixels
_SHAPES_CHUNK = 2048
_ELLIPSE_ASPECT = 0.5


def make_shapes(n: int, seed: int = 0, split: str = "train") -> tuple[np.ndarray, pd.DataFrame]:
    """Draw `n` sprites with uniform, independent factor codes; returns (images, factors)."""
    factors = factor_codes(SHAPES_FACTORS, n, seed, split)
    return render_shapes(factors), factors


def render_shapes(factors: pd.DataFrame) -> np.ndarray:
    """Render chosen factor codes to (N, 32, 32) uint8 sprites (0/255), e.g. for metrics.

    Every shape fits in a circle of radius scale·7.5 px and centres run over 8.5..23.5 px,
    so no factor combination touches the border rows or columns.
    """
    _check_shape_codes(factors)
    images = np.empty((len(factors), SHAPES_SIZE, SHAPES_SIZE), dtype=np.uint8)
    for start in range(0, len(factors), _SHAPES_CHUNK):  # chunks bound the float temporaries
        chunk = factors.iloc[start : start + _SHAPES_CHUNK]
        images[start : start + len(chunk)] = _rasterize(chunk)
    return images


def _check_shape_codes(factors: pd.DataFrame) -> None:
    for name, levels in SHAPES_FACTORS.items():
        if name not in factors:
            raise DataError(
                f"shapes factors lack column {name!r}; need {', '.join(SHAPES_FACTORS)}"
            )
        codes = factors[name].to_numpy()
        if len(codes) and (codes.min() < 0 or codes.max() >= levels):
            raise DataError(
                f"shapes factor {name!r} has codes in [{codes.min()}, {codes.max()}]; "
                f"valid codes are 0..{levels - 1}"
            )


def _rasterize(codes: pd.DataFrame) -> np.ndarray:
    """Inside-tests at pixel centres, in each sprite's own (rotated, unit-radius) frame."""
    margin = _SHAPES_MAX_RADIUS + 1.0
    positions = np.linspace(margin, SHAPES_SIZE - margin, SHAPES_FACTORS["x"])
    radius = _SHAPES_MAX_RADIUS * np.linspace(0.5, 1.0, SHAPES_FACTORS["scale"])
    angles = np.arange(SHAPES_FACTORS["rotation"]) * (2 * np.pi / SHAPES_FACTORS["rotation"])
    r = radius[codes["scale"].to_numpy()][:, None, None]
    theta = angles[codes["rotation"].to_numpy()][:, None, None]
    centres = np.arange(SHAPES_SIZE) + 0.5
    dx = (centres[None, None, :] - positions[codes["x"].to_numpy()][:, None, None]) / r
    dy = (centres[None, :, None] - positions[codes["y"].to_numpy()][:, None, None]) / r
    u = np.cos(theta) * dx + np.sin(theta) * dy
    v = -np.sin(theta) * dx + np.cos(theta) * dy
    shape = codes["shape"].to_numpy()
    inside = np.zeros(u.shape, dtype=bool)
    for code, test in enumerate((_in_square, _in_ellipse, _in_triangle)):
        rows = shape == code
        inside[rows] = test(u[rows], v[rows])
    return inside.astype(np.uint8) * 255


def _in_square(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(u), np.abs(v)) <= np.sqrt(0.5)  # corners on the unit circle


def _in_ellipse(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u**2 + (v / _ELLIPSE_ASPECT) ** 2 <= 1.0


def _in_triangle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Equilateral triangle inscribed in the unit circle: inradius 1/2 from each edge."""
    inside = np.ones(u.shape, dtype=bool)
    for phi in (-np.pi / 2, np.pi / 6, 5 * np.pi / 6):  # outward edge normals
        inside &= np.cos(phi) * u + np.sin(phi) * v <= 0.5
    return inside


def load_shapes(n: int | None, seed: int, split: str, root: Path | None) -> Loaded:
    """The registry's loader: `n` sprites (default 10 000), labelled by their shape."""
    images, factors = make_shapes(10_000 if n is None else n, seed, split)
    return images, factors["shape"].to_numpy(), factors
