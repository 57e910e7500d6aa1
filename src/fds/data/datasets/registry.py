"""Built-in data sets by name, so `fds train --data shapes` works without any files.

A string registry (as in disent): each name maps to a loader plus the metadata that
`fds datasets` shows. Everything is generated or read locally; nothing is downloaded.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fds.data.datasets.balls import load_balls
from fds.data.datasets.census import load_census
from fds.data.datasets.digits import load_digits
from fds.data.datasets.fashion_mm import load_fashion_mm
from fds.data.datasets.fashion_mnist import fashion_mnist_status, load_fashion_mnist
from fds.data.datasets.shapes import load_shapes
from fds.data.datasets.shapes_mm import load_shapes_mm
from fds.data.datasets.splits import Loaded
from fds.errors import DataError

__all__ = ["Dataset", "available_datasets", "is_builtin", "load_builtin"]


@dataclass(frozen=True, eq=False)
class Dataset:
    """A loaded data set; `eq=False` because arrays have no single truth value."""

    name: str
    # images (N,H,W)/(N,H,W,C) uint8, a table, or a dict of modalities (`kind` "multimodal")
    X: np.ndarray | pd.DataFrame | dict[str, Any]
    labels: np.ndarray | None  # (N,) integer class labels when the data set has them
    factors: pd.DataFrame | None  # ground-truth generative factors, one int column per factor
    sensitive: tuple[str, ...]  # names of sensitive columns/factors (for the privacy features)
    description: str


def _always_available() -> tuple[bool, str | None]:
    return True, None


@dataclass(frozen=True)
class _Entry:
    """Registry metadata: how to load a data set and what `fds datasets` says about it."""

    loader: Callable[..., Loaded]
    kind: str  # "images", "table" or "multimodal"
    description: str
    splits: tuple[str, ...] = ("train", "test")
    sensitive: tuple[str, ...] = ()
    options: tuple[str, ...] = ()
    status: Callable[[], tuple[bool, str | None]] = _always_available


_REGISTRY: dict[str, _Entry] = {
    "shapes": _Entry(
        load_shapes,
        "images",
        "32×32 binary sprites with 5 known factors (shape, scale, rotation, x, y); generated",
        sensitive=("shape",),
    ),
    "shapes-mm": _Entry(
        load_shapes_mm,
        "multimodal",
        "shapes seen as image, caption, sound and noisy measurements; generated (shape, scale)",
        sensitive=("shape",),
    ),
    "balls": _Entry(
        load_balls,
        "images",
        "32×32 RGB: a red and a cyan ball, 5 known factors (positions, red size); generated",
    ),
    "digits": _Entry(
        load_digits,
        "images",
        "scikit-learn's 1797 handwritten 8×8 digits, rescaled to 0..255; ships with sklearn",
        splits=("train", "test", "all"),
    ),
    "fashion-mnist": _Entry(
        load_fashion_mnist,
        "images",
        "70000 28×28 grayscale clothing images in 10 classes; read from local IDX files",
        status=fashion_mnist_status,
    ),
    "fashion-mm": _Entry(
        load_fashion_mm,
        "multimodal",
        "fashion-mnist images with generated captions naming the class in varied words",
        status=fashion_mnist_status,
    ),
    "census": _Entry(
        load_census,
        "table",
        "generated census-like mixed-type table; sensitive column sex, target high_income",
        sensitive=("sex",),
        options=("missing",),
    ),
}


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-")


def is_builtin(name: str) -> bool:
    """True when `name` (case and `_`/`-` insensitive) names a built-in data set."""
    return _normalize(name) in _REGISTRY


def available_datasets() -> list[dict[str, Any]]:
    """One dict per built-in data set, for `fds datasets`; `hint` says how to get a missing one."""
    rows = []
    for name, entry in _REGISTRY.items():
        available, hint = entry.status()
        rows.append(
            {
                "name": name,
                "kind": entry.kind,
                "description": entry.description,
                "available": available,
                "hint": hint,
            }
        )
    return rows


def load_builtin(
    name: str,
    *,
    n: int | None = None,
    seed: int = 0,
    split: str = "train",
    root: str | Path | None = None,
    **options: Any,
) -> Dataset:
    """Load a built-in data set; `n` keeps the first n rows, `root` only matters for files.

    Extra keyword options are data-set specific (census: `missing`).
    """
    entry = _lookup(name)
    key = _normalize(name)
    if split not in entry.splits:
        raise DataError(f"{key}: unknown split {split!r}; choose one of {', '.join(entry.splits)}")
    unknown = sorted(set(options) - set(entry.options))
    if unknown:
        valid = ", ".join(entry.options) or "none"
        raise DataError(f"{key}: unknown option(s) {', '.join(unknown)}; valid options: {valid}")
    if n is not None and (not isinstance(n, int | np.integer) or n < 1):
        raise DataError(f"{key}: n={n!r} must be a positive integer")
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise DataError(f"{key}: seed={seed!r} must be a non-negative integer")
    X, labels, factors = entry.loader(
        n, int(seed), split, None if root is None else Path(root), **options
    )
    return Dataset(key, X, labels, factors, entry.sensitive, entry.description)


def _lookup(name: str) -> _Entry:
    entry = _REGISTRY.get(_normalize(name))
    if entry is None:
        close = difflib.get_close_matches(_normalize(name), list(_REGISTRY), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise DataError(
            f"unknown built-in data set {name!r}; {hint}available: {', '.join(_REGISTRY)}"
        )
    return entry
