"""Rows served in batches from an array that may be memory-mapped: only the rows of a batch are read
and encoded, so a data set larger than RAM can be trained on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import pandas as pd
import torch

# Encoded rows up to this size are held in memory for training (Rows.in_memory).
IN_MEMORY_BYTES = 2**30


Batch = tuple[torch.Tensor, torch.Tensor | None]  # encoded rows and their attributes (or None)


class BatchSource(Protocol):
    """What the Trainer reads training rows from: `Rows` (random access) or a streamed table
    (`fds.data.streamed_rows.StreamedRows`)."""

    def __len__(self) -> int: ...

    def epoch_batches(self, batch_size: int, seed: int, epoch: int, start: int) -> Iterator[Batch]:
        """The full batches of epoch `epoch` in a seeded order (len // batch_size of them),
        from batch `start` on (a resumed epoch)."""
        ...

    def head(self, n: int) -> Rows:
        """The first `n` rows, in memory."""
        ...

    def shard(self, rank: int, world_size: int) -> BatchSource:
        """Rank `rank`'s disjoint share of the rows, of the same length on every rank."""
        ...


class Rows:
    """A subset (`index`) of `source`'s rows, encoded batch by batch with `encode`.

    `attributes` (optional, one row per row of `source`) are the sensitive attributes a model
    with a private block is trained on; they are batched alongside the rows."""

    def __init__(
        self,
        source: np.ndarray,
        index: np.ndarray,
        encode: Callable[[np.ndarray], np.ndarray] | None = None,
        attributes: np.ndarray | None = None,
    ) -> None:
        self.source, self.index, self.encode = source, np.asarray(index, dtype=np.int64), encode
        self.attributes = attributes

    def __len__(self) -> int:
        return len(self.index)

    def take(self, positions: np.ndarray) -> torch.Tensor:
        """Rows at `positions` (indices into this subset) as a float32 tensor."""
        rows = np.sort(self.index[positions])  # sorted reads are sequential on a memmap
        batch = self.source[rows]
        if self.encode is not None:
            batch = self.encode(batch)
        return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))

    def in_memory(self, max_bytes: int = IN_MEMORY_BYTES) -> Rows:
        """These rows encoded once, as float32 in memory, so that a batch is a slice instead of
        a read and an encode per step; self when the source is memory-mapped (data larger than
        RAM stays streamed), the index unsorted, or the encoded rows would exceed `max_bytes`.
        Batches are the same rows in the same order, so training is unchanged."""
        if (
            self.encode is None
            or isinstance(self.source, np.memmap)
            or len(self) == 0
            or np.any(np.diff(self.index) <= 0)
        ):
            return self
        width = int(np.prod(self.take(np.arange(1)).shape[1:]))
        if 4 * width * len(self) > max_bytes:
            return self
        encoded = np.ascontiguousarray(self.encode(self.source[self.index]), dtype=np.float32)
        attributes = None if self.attributes is None else self.attributes[self.index]
        return Rows(encoded, np.arange(len(self)), None, attributes)

    def epoch_batches(self, batch_size: int, seed: int, epoch: int, start: int) -> Iterator[Batch]:
        """A permutation drawn from (seed, epoch), cut into full batches (the rest is left out)."""
        order = np.random.default_rng((seed, epoch)).permutation(len(self))
        for b in range(start, len(self) // batch_size):
            positions = order[b * batch_size : (b + 1) * batch_size]
            yield self.take(positions), self.attributes_at(positions)

    def head(self, n: int) -> Rows:
        return Rows(self.source, self.index[:n], self.encode, self.attributes)

    def shard(self, rank: int, world_size: int) -> Rows:
        """Every `world_size`-th row from `rank` on, cut to the shortest rank's length."""
        length = len(self) // world_size
        return Rows(
            self.source, self.index[rank::world_size][:length], self.encode, self.attributes
        )

    def attributes_at(self, positions: np.ndarray) -> torch.Tensor | None:
        """The sensitive attributes of the rows `take(positions)` returns, in the same order."""
        if self.attributes is None:
            return None
        rows = np.sort(self.index[positions])
        return torch.from_numpy(np.ascontiguousarray(self.attributes[rows], dtype=np.float32))

    def batches_with_attributes(
        self, batch_size: int
    ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """All rows in order with their attributes (None without attributes), in batches."""
        spans = [
            np.arange(start, min(start + batch_size, len(self)))
            for start in range(0, len(self), batch_size)
        ]
        return [(self.take(p), self.attributes_at(p)) for p in spans]

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


def take_rows(X: Any, rows: np.ndarray) -> Any:
    """Rows `rows` of a table (a DataFrame, its index kept) or an array (of a memory-mapped one,
    only those rows are read)."""
    return X.iloc[rows] if isinstance(X, pd.DataFrame) else X[rows]
