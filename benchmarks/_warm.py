"""The warm-start arm of benchmarks/federated.py (issue 17): a random public share of the training
rows is set aside, a central model trains on it, the federation over the other rows starts from it.

Two pooled baselines, both `R` epochs at batch 128 like the benchmark's centralized run:
(a) from scratch on all the training rows (what a user who could pool everything gets; the
benchmark's usual centralized run), and (b) on the private rows only, starting from the same warm
model (like for like with the warm-started federation).

The private rows are written as Fashion-MNIST IDX files (images and labels) into a folder the
federation reads as `data_root`, so the sites split them as they split the full set, Dirichlet
label skew included.
"""

from __future__ import annotations

import struct
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

# (images, labels) file stems of the train split, as fds.data.datasets.fashion_mnist reads them
_TRAIN_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte")


def split_public(n: int, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(public rows, private rows) of `n` training rows: a seeded random `share` is public."""
    order = np.random.default_rng(seed).permutation(n)
    k = round(share * n)
    return np.sort(order[:k]), np.sort(order[k:])


def _write_idx(path: Path, array: np.ndarray) -> None:
    """A uint8 IDX file: magic 00 00 08 ndim, the sizes as big-endian int32, the bytes."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    path.write_bytes(header + array.tobytes())


def write_private(data: str, rows: np.ndarray, folder: Path) -> Path:
    """The private rows of `data`'s train split as IDX files in `folder` (its `data_root`)."""
    from fds.data.datasets import load_builtin

    if data != "fashion-mnist":
        raise SystemExit("--warm-share needs --data fashion-mnist (its rows are written as IDX)")
    full = load_builtin(data, split="train")
    folder.mkdir(parents=True, exist_ok=True)
    _write_idx(folder / _TRAIN_FILES[0], np.asarray(full.X)[rows])
    _write_idx(folder / _TRAIN_FILES[1], np.asarray(full.labels)[rows])
    return folder


def train_warm(
    params: dict[str, Any], X_public: np.ndarray, epochs: int, out: Path
) -> tuple[Path, float]:
    """The central warm model: `epochs` epochs on the public rows, saved to `out`; its seconds."""
    from fds.estimator import FDS

    started = time.perf_counter()
    model = FDS(**params, epochs=epochs, verbose=False).fit(X_public)
    model.save(out)
    return out, time.perf_counter() - started


def pooled_from_warm(
    params: dict[str, Any], warm: Path, X_private: np.ndarray, epochs: int, X_test: Any
) -> dict[str, Any]:
    """Baseline (b): pooled training of the private rows for `epochs`, starting from `warm`'s
    weights, checked and loaded by the same code as the federation's warm start."""
    from fds.estimator import FDS
    from fds.federated.warm import check_codec, load_init_model, load_into

    class WarmFDS(FDS):
        def _build(self, config: Any, codec: Any) -> torch.nn.Module:
            model = super()._build(config, codec)
            init = load_init_model(warm, config)
            check_codec(init, codec)
            load_into(init, model)
            return model

    started = time.perf_counter()
    model = WarmFDS(**params, epochs=epochs, verbose=False).fit(X_private)
    return {"elbo": model.score(X_test), "seconds": time.perf_counter() - started}
