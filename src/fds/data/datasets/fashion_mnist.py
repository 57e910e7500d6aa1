"""`fashion-mnist`: 70000 28×28 clothing images in 10 classes, read from local IDX files.

Nothing is downloaded: the files come from the Debian package `dataset-fashion-mnist`
(`/usr/share/datasets/fashion-mnist`), `$FDS_FASHION_MNIST`, or a root the caller gives.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from fds.data.datasets.splits import Loaded, first_n
from fds.data.images import read_idx
from fds.errors import DataError

__all__ = [
    "FASHION_MNIST_DEFAULT_ROOT",
    "fashion_mnist_root",
    "fashion_mnist_status",
    "load_fashion_mnist",
]

FASHION_MNIST_DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
_FASHION_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def fashion_mnist_root(root: str | Path | None = None) -> Path:
    """Where fashion-mnist is looked for: `root`, else $FDS_FASHION_MNIST, else the Debian path."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get("FDS_FASHION_MNIST") or FASHION_MNIST_DEFAULT_ROOT)


def _find_idx(root: Path, stem: str) -> Path:
    for candidate in (root / stem, root / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise DataError(
        f"fashion-mnist not found in {root} (no {stem}[.gz]): install it with "
        "`apt-get install dataset-fashion-mnist` (Debian) or pass root=/--data-root "
        "pointing at the IDX files"
    )


def load_fashion_mnist(n: int | None, seed: int, split: str, root: Path | None) -> Loaded:
    """The registry's loader: the first `n` images of a split, checked against their labels."""
    directory = fashion_mnist_root(root)
    image_file, label_file = (_find_idx(directory, stem) for stem in _FASHION_FILES[split])
    images, labels = read_idx(image_file), read_idx(label_file)
    if images.ndim != 3 or images.dtype != np.uint8 or labels.shape != images.shape[:1]:
        raise DataError(
            f"{image_file} and {label_file} do not match: images {images.shape} {images.dtype}, "
            f"labels {labels.shape}; expected (N, 28, 28) uint8 images and N labels"
        )
    index = first_n(np.arange(len(labels)), n, f"fashion-mnist {split} split")
    return images[index], labels[index].astype(np.int64), None


def fashion_mnist_status() -> tuple[bool, str | None]:
    """(installed, how to get it) for `fds datasets`."""
    try:
        for stems in _FASHION_FILES.values():
            for stem in stems:
                _find_idx(fashion_mnist_root(), stem)
    except DataError as exc:
        return False, str(exc)
    return True, None
