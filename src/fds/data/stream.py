"""Rows served in batches from an array that may be memory-mapped: only the rows of a batch are read
and encoded, so a data set larger than RAM can be trained on."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


class Rows:
    """A subset (`index`) of `source`'s rows, encoded batch by batch with `encode`."""

    def __init__(
        self,
        source: np.ndarray,
        index: np.ndarray,
        encode: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.source, self.index, self.encode = source, np.asarray(index, dtype=np.int64), encode

    def __len__(self) -> int:
        return len(self.index)

    def take(self, positions: np.ndarray) -> torch.Tensor:
        """Rows at `positions` (indices into this subset) as a float32 tensor."""
        rows = np.sort(self.index[positions])  # sorted reads are sequential on a memmap
        batch = self.source[rows]
        if self.encode is not None:
            batch = self.encode(batch)
        return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))

    def batches(self, batch_size: int) -> list[torch.Tensor]:
        """All rows in order, in batches (for evaluation)."""
        return [
            self.take(np.arange(start, min(start + batch_size, len(self))))
            for start in range(0, len(self), batch_size)
        ]


def split_indices(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded train/validation split; validation is empty when the fraction or n is too small."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = round(n * val_fraction)
    if n - n_val < 2:
        n_val = 0
    return np.sort(order[n_val:]), np.sort(order[:n_val])
