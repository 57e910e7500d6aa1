"""`shapes-mm`: each `shapes` sprite seen four ways — an image, a caption, a sound and a table of
noisy measurements — generated from the same factors, so cross-modal coherence can be scored
against the ground truth.

What each modality carries (and the nuisance that is its own):
- image: every factor (the `shapes` sprite: shape, scale, rotation, x, y);
- caption: shape, scale and a coarse position (3×3 cells), in one of several templates with
  synonyms for every word (wording is the caption's own nuisance);
- sound: a tone whose pitch encodes the shape and whose loudness and length encode the scale,
  with a random phase, a slight detuning and white noise (the sound's own nuisance);
- table: noisy measurements of position and size, and a corner count that is sometimes wrong.
Rotation reaches only the image; position reaches the sound not at all.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fds.data.datasets.shapes import SHAPES_FACTORS, render_shapes
from fds.data.datasets.splits import Loaded, split_rng

__all__ = [
    "SAMPLE_RATE",
    "SHAPES_MM_MODALITIES",
    "caption",
    "load_shapes_mm",
    "make_shapes_mm",
    "shape_sounds",
]

SHAPES_MM_MODALITIES = ("image", "text", "audio", "table")
SAMPLE_RATE = 8000  # Hz
SOUND_SECONDS = 0.256  # 2048 samples: 16 STFT frames of 128 hop
_PITCH_HZ = (330.0, 660.0, 1320.0)  # square, ellipse, triangle: an octave apart
_DETUNE = 0.02  # relative pitch jitter
_NOISE_STD = 0.03
_CORNERS = (4, 0, 3)
_CORNER_ERROR = 0.05  # share of rows whose corner count is misread

_SHAPE_WORDS = (("square", "box", "block"), ("ellipse", "oval"), ("triangle", "wedge"))
_SIZE_WORDS = (
    ("tiny", "minute"),
    ("small", "little"),
    ("smallish", "modest"),
    ("medium", "mid-sized"),
    ("large", "big"),
    ("huge", "giant"),
)
_VERTICAL = (("top", "upper"), ("middle", "centre"), ("bottom", "lower"))
_HORIZONTAL = (("left",), ("centre", "middle"), ("right",))
_TEMPLATES = (
    "a {size} {shape} near the {v} {h}",
    "{size} {shape}, {v}-{h}",
    "there is a {size} {shape} at the {v} {h}",
    "{v} {h}: one {size} {shape}",
)


def make_shapes_mm(
    n: int, seed: int = 0, split: str = "train"
) -> tuple[dict[str, Any], pd.DataFrame]:
    """`n` records: ({"image", "text", "audio", "table"}, factors), all drawn from one stream
    seeded by (seed, split). Images (n, 32, 32) uint8, captions a list of str, sounds
    (n, 2048) float32 at 8 kHz in [-1, 1], the table a DataFrame."""
    rng = split_rng(seed, split)
    codes = {k: rng.integers(0, levels, size=n) for k, levels in SHAPES_FACTORS.items()}
    factors = pd.DataFrame(codes).astype(np.int64)
    data = {
        "image": render_shapes(factors),
        "text": [caption(row, rng) for row in factors.itertuples(index=False)],
        "audio": shape_sounds(factors, rng),
        "table": _measurements(factors, rng),
    }
    return data, factors


def caption(row: Any, rng: np.random.Generator) -> str:
    """One caption of a factor row: a random template, a random synonym for every word."""
    cells = SHAPES_FACTORS["x"] / 3
    words = {
        "size": _pick(_SIZE_WORDS[row.scale], rng),
        "shape": _pick(_SHAPE_WORDS[row.shape], rng),
        "v": _pick(_VERTICAL[int(row.y // cells)], rng),
        "h": _pick(_HORIZONTAL[int(row.x // cells)], rng),
    }
    return _TEMPLATES[rng.integers(len(_TEMPLATES))].format(**words)


def _pick(options: tuple[str, ...], rng: np.random.Generator) -> str:
    return options[rng.integers(len(options))]


def shape_sounds(factors: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    """A tone per row: pitch from the shape, loudness and length from the scale, plus noise."""
    n, length = len(factors), round(SAMPLE_RATE * SOUND_SECONDS)
    scale = factors["scale"].to_numpy() / (SHAPES_FACTORS["scale"] - 1)  # 0..1
    pitch = np.asarray(_PITCH_HZ)[factors["shape"].to_numpy()]
    pitch = pitch * (1 + _DETUNE * rng.uniform(-1, 1, size=n))
    t = np.arange(length) / SAMPLE_RATE
    phase = rng.uniform(0, 2 * np.pi, size=n)
    tone = np.sin(2 * np.pi * pitch[:, None] * t[None, :] + phase[:, None])
    amplitude = 0.15 + 0.6 * scale
    duration = (0.35 + 0.6 * scale) * SOUND_SECONDS
    envelope = np.clip((duration[:, None] - t[None, :]) * 200, 0, 1)  # 5 ms release
    noise = rng.normal(0, _NOISE_STD, size=(n, length))
    return np.clip(amplitude[:, None] * envelope * tone + noise, -1, 1).astype(np.float32)


def _measurements(factors: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Position and size in pixels with measurement noise; a corner count sometimes misread."""
    n = len(factors)
    x = 8.5 + factors["x"].to_numpy() * (15 / (SHAPES_FACTORS["x"] - 1))
    y = 8.5 + factors["y"].to_numpy() * (15 / (SHAPES_FACTORS["y"] - 1))
    radius = 7.5 * (0.5 + 0.1 * factors["scale"].to_numpy())
    corners = np.asarray(_CORNERS)[factors["shape"].to_numpy()]
    wrong = rng.random(n) < _CORNER_ERROR
    corners = np.where(wrong, rng.choice(_CORNERS, size=n), corners)
    return pd.DataFrame(
        {
            "x_px": np.round(x + rng.normal(0, 0.5, n), 2),
            "y_px": np.round(y + rng.normal(0, 0.5, n), 2),
            "radius_px": np.round(radius * (1 + rng.normal(0, 0.03, n)), 2),
            "corners": pd.Categorical(corners, categories=sorted(set(_CORNERS))),
        }
    )


def load_shapes_mm(n: int | None, seed: int, split: str, root: Path | None) -> Loaded:
    """The registry's loader: `n` records (default 5000), labelled by their shape."""
    data, factors = make_shapes_mm(5000 if n is None else n, seed, split)
    return data, factors["shape"].to_numpy(), factors
