"""`digits`: scikit-learn's 1797 handwritten 8×8 digits, split by a seeded permutation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fds.data.datasets.splits import Loaded, first_n

__all__ = ["load_digits"]

_DIGITS_TRAIN_FRACTION = 0.8


def load_digits(n: int | None, seed: int, split: str, root: Path | None) -> Loaded:
    """scikit-learn's 8×8 digits, rescaled 0..16 → 0..255, split by a seeded permutation."""
    from sklearn.datasets import load_digits as sklearn_digits  # local: sklearn import is slow

    bunch = sklearn_digits()
    order = np.random.default_rng(seed).permutation(len(bunch.target))
    cut = int(_DIGITS_TRAIN_FRACTION * len(order))
    index = {"train": order[:cut], "test": order[cut:], "all": order}[split]
    index = first_n(index, n, f"digits {split} split")
    images = np.rint(bunch.images[index] * (255 / 16)).astype(np.uint8)
    return images, bunch.target[index].astype(np.int64), None
