"""`balls`: 32×32 RGB images of a red and a cyan ball, generated from 5 known, independent factors.

The red ball's x, y and size, and the cyan ball's x and y. The balls are soft-edged discs added
channel-wise (red in R, cyan in G and B), so neither ever hides the other and every factor stays
visible in every image: a second ground truth for the disentanglement metrics, in colour, whose
factors (two positions, a size) differ from `shapes`' (one sprite's shape, scale and rotation).

Why it is a fair disentanglement benchmark, whichever model scores well on it:
- identifiable: the colours tell the balls apart, so "red x" is always defined (two balls of one
  colour would make "ball 1" arbitrary); each centre is its channel's centroid and the red size
  its channel's ink, so the image alone fixes all 5 codes (tests/unit/data/test_balls.py);
- independent: every code is drawn uniformly and independently (`factor_codes`);
- visible: one step of any factor changes 30 (red size) to 91 (cyan x, y) pixel-channels on
  average, more than one step of `shapes`' factors (16–28), and no combination is clipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from fds.data.datasets.splits import Loaded, factor_codes
from fds.errors import DataError

__all__ = ["BALLS_FACTORS", "BALLS_SIZE", "load_balls", "make_balls", "render_balls"]

BALLS_SIZE = 32
BALLS_FACTORS = {"red_x": 8, "red_y": 8, "red_size": 4, "cyan_x": 8, "cyan_y": 8}
_RADII = np.linspace(3.0, 6.0, BALLS_FACTORS["red_size"])
_CYAN_RADIUS = 4.5
_EDGE = 1.0  # width in pixels of the linear ramp from inside (1) to outside (0)
_CHUNK = 2048


def make_balls(n: int, seed: int = 0, split: str = "train") -> tuple[np.ndarray, pd.DataFrame]:
    """Draw `n` images with uniform, independent factor codes; returns (images, factors)."""
    factors = factor_codes(BALLS_FACTORS, n, seed, split)
    return render_balls(factors), factors


def render_balls(factors: pd.DataFrame) -> np.ndarray:
    """Render chosen factor codes to (N, 32, 32, 3) uint8 images.

    Centres run over 7..25 px, so the largest ball (radius 6 + the soft edge) never leaves the
    frame: no factor combination is clipped.
    """
    _check_codes(factors)
    images = np.empty((len(factors), BALLS_SIZE, BALLS_SIZE, 3), dtype=np.uint8)
    for start in range(0, len(factors), _CHUNK):  # chunks bound the float temporaries
        chunk = factors.iloc[start : start + _CHUNK]
        red = _disc(chunk["red_x"], chunk["red_y"], _RADII[chunk["red_size"].to_numpy()])
        cyan = _disc(chunk["cyan_x"], chunk["cyan_y"], np.full(len(chunk), _CYAN_RADIUS))
        rgb = np.stack([red, cyan, cyan], axis=-1)
        images[start : start + len(chunk)] = np.round(255 * rgb).astype(np.uint8)
    return images


def _disc(x: pd.Series, y: pd.Series, radius: np.ndarray) -> np.ndarray:
    """Soft discs, 1 inside and 0 outside with a one-pixel linear ramp: (N, 32, 32) in [0, 1]."""
    positions = np.linspace(7.0, BALLS_SIZE - 7.0, BALLS_FACTORS["red_x"])
    centres = np.arange(BALLS_SIZE) + 0.5
    dx = centres[None, None, :] - positions[x.to_numpy()][:, None, None]
    dy = centres[None, :, None] - positions[y.to_numpy()][:, None, None]
    distance = np.sqrt(dx**2 + dy**2)
    return np.clip((radius[:, None, None] + 0.5 * _EDGE - distance) / _EDGE, 0.0, 1.0)


def _check_codes(factors: pd.DataFrame) -> None:
    for name, levels in BALLS_FACTORS.items():
        if name not in factors:
            raise DataError(f"balls factors lack column {name!r}; need {', '.join(BALLS_FACTORS)}")
        codes = factors[name].to_numpy()
        if len(codes) and (codes.min() < 0 or codes.max() >= levels):
            raise DataError(
                f"balls factor {name!r} has codes in [{codes.min()}, {codes.max()}]; "
                f"valid codes are 0..{levels - 1}"
            )


def load_balls(n: int | None, seed: int, split: str, root: Path | None) -> Loaded:
    """The registry's loader: `n` images (default 10 000), labelled by the red ball's size."""
    images, factors = make_balls(10_000 if n is None else n, seed, split)
    return images, factors["red_size"].to_numpy(), factors
