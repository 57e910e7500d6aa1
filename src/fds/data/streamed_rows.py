"""Training rows streamed from a table on disk (`fds.data.table_stream`), never held whole.

An epoch reads the units (Parquet row groups) in an order drawn from (seed, epoch), encodes each
piece (strings read as Categoricals, the piece encoded at once into one float32 array) and mixes
rows in a shuffle buffer of `buffer_rows`, all in a background thread that keeps batches ready
while the model trains: the training thread only takes them. The buffer is not a full
permutation: a row can only meet rows of the units read near it, so a table sorted by some
column should be written in row groups of mixed rows (or with many small row groups).
`shard(rank, world_size)` deals the units out round-robin: each rank reads its own, and every
rank runs the same number of batches per epoch.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd
import torch

from fds.data.stream import Batch, Rows
from fds.data.table_stream import TableSource, Unit
from fds.data.tabular import rows_without_gaps
from fds.errors import DataError

BUFFER_ROWS = 131_072  # rows mixed by the shuffle buffer
READ_AHEAD_ROWS = 65_536  # rows of ready batches the background thread may hold


class StreamedRows:
    """The rows of `units` of `table`, encoded piece by piece with `encode`; rows with a gap in
    a column whose missing policy is drop are left out (each unit's `rows` counts those kept)."""

    def __init__(
        self,
        table: TableSource,
        units: Sequence[Unit],
        encode: Callable[[pd.DataFrame], np.ndarray],
        missing: str | dict[str, str] = "error",
        buffer_rows: int = BUFFER_ROWS,
        length: int | None = None,
    ) -> None:
        self.table, self.units, self.encode = table, list(units), encode
        self.missing, self.buffer_rows = missing, buffer_rows
        self._length = sum(u.rows for u in self.units) if length is None else length

    def __len__(self) -> int:
        return self._length

    def encoded(self, units: Sequence[Unit] | None = None) -> Iterator[np.ndarray]:
        """The encoded rows of `units` (default: all of this source's), piece by piece."""
        for frame in self.table.frames(self.units if units is None else units, categorical=True):
            keep = rows_without_gaps(frame, self.missing)
            if keep is not None:
                frame = frame.iloc[keep]
            if len(frame):
                yield self.encode(frame)

    def epoch_batches(self, batch_size: int, seed: int, epoch: int, start: int) -> Iterator[Batch]:
        """len // batch_size full batches: units in a seeded order, rows mixed in the buffer.
        Reading, encoding and mixing run in a background thread, up to READ_AHEAD_ROWS rows
        ahead of training."""
        rng = np.random.default_rng((seed, epoch))
        order = [self.units[i] for i in rng.permutation(len(self.units))]
        wanted = len(self) // batch_size
        batches = _shuffled_batches(self.encoded(order), batch_size, self.buffer_rows, rng)
        ahead = read_ahead(islice(batches, wanted), max(1, READ_AHEAD_ROWS // batch_size))
        try:
            for b, batch in enumerate(ahead):
                if b >= start:
                    yield torch.from_numpy(batch), None
        finally:
            ahead.close()

    def head(self, n: int) -> Rows:
        """The first `n` rows (in unit order), encoded, in memory."""
        parts, count = [], 0
        for piece in self.encoded():
            parts.append(piece[: n - count])
            count += len(parts[-1])
            if count >= n:
                break
        rows = np.concatenate(parts)
        return Rows(rows, np.arange(len(rows)))

    def shard(self, rank: int, world_size: int) -> StreamedRows:
        """Units rank, rank + world_size, …; the length is the shortest shard's, so that every
        rank runs the same number of batches."""
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is outside a world of {world_size}")
        if len(self.units) < world_size:
            raise DataError(
                f"{self.table.path} has {len(self.units)} row group(s) for {world_size} ranks: "
                "write it with smaller row groups or in more files"
            )
        shards = [self.units[r::world_size] for r in range(world_size)]
        length = min(sum(u.rows for u in s) for s in shards)
        return StreamedRows(
            self.table, shards[rank], self.encode, self.missing, self.buffer_rows, length
        )


def _shuffled_batches(
    pieces: Iterator[np.ndarray], batch_size: int, buffer_rows: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Full batches of rows mixed in a buffer: once it holds `buffer_rows`, it is shuffled and
    its front handed out until half remains; the last rows are shuffled and handed out too.
    The buffer shuffles slot numbers (`_Slots`), not rows: a row is copied into its slot and
    into its batch, never moved in between."""
    slots = _Slots()
    pool = np.empty(0, dtype=np.int64)  # the buffer's rows, as slot numbers, in buffer order
    for piece in pieces:
        pool = np.concatenate([pool, slots.put(piece)])
        if len(pool) < buffer_rows:
            continue
        pool = pool[rng.permutation(len(pool))]
        n = (len(pool) - buffer_rows // 2) // batch_size
        for b in range(n):
            yield slots.take(pool[b * batch_size : (b + 1) * batch_size])
        slots.free(pool[: n * batch_size])
        pool = pool[n * batch_size :]
    pool = pool[rng.permutation(len(pool))]
    for b in range(len(pool) // batch_size):
        yield slots.take(pool[b * batch_size : (b + 1) * batch_size])


class _Slots:
    """Encoded rows in the numbered slots of one array that grows to the most rows held at
    once; a freed slot is reused by a later piece."""

    def __init__(self) -> None:
        self.rows = np.empty((0, 0), dtype=np.float32)
        self.vacant = np.empty(0, dtype=np.int64)  # ascending: pieces are written in order

    def put(self, piece: np.ndarray) -> np.ndarray:
        """Store `piece`'s rows; their slot numbers, in the piece's order."""
        missing = len(piece) - len(self.vacant)
        if missing > 0:
            grown = np.empty((len(self.rows) + missing, *piece.shape[1:]), dtype=piece.dtype)
            if len(self.rows):
                grown[: len(self.rows)] = self.rows
            self.vacant = np.concatenate([self.vacant, np.arange(len(self.rows), len(grown))])
            self.rows = grown
        where, self.vacant = self.vacant[: len(piece)], self.vacant[len(piece) :]
        self.rows[where] = piece
        return where

    def take(self, where: np.ndarray) -> np.ndarray:
        """A copy of the rows in slots `where` (a slot may be reused once freed)."""
        return self.rows[where]

    def free(self, where: np.ndarray) -> None:
        self.vacant = np.sort(np.concatenate([self.vacant, where]))


def read_ahead(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """`items` produced in a background thread, up to `depth` ahead of the consumer (reading
    and encoding overlap training); an error there is raised here, and closing this generator
    stops the thread."""
    box: queue.Queue[tuple[str, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def put(message: tuple[str, Any]) -> bool:
        while not stop.is_set():
            try:
                box.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(("item", item)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put(("error", exc))

    thread = threading.Thread(target=work, name="fds-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            kind, item = box.get()
            if kind == "end":
                return
            if kind == "error":
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def split_units(
    units: Sequence[Unit], val_fraction: float, seed: int, max_rows: int
) -> tuple[list[Unit], list[Unit]]:
    """(training units, validation units): whole units drawn in a seeded order until they hold
    val_fraction of the rows or `max_rows`; no validation with one unit or too few rows left."""
    total = sum(u.rows for u in units)
    wanted = min(round(total * val_fraction), max_rows)
    if wanted == 0 or len(units) < 2:
        return list(units), []
    held, rows = set(), 0
    for i in np.random.default_rng(seed).permutation(len(units)):
        if rows >= wanted:
            break
        held.add(int(i))
        rows += units[i].rows
    if total - rows < 2:
        return list(units), []
    return [u for i, u in enumerate(units) if i not in held], [units[i] for i in sorted(held)]


def counted_frames(
    table: TableSource, missing: str | dict[str, str], kept: dict[Unit, int]
) -> Iterator[pd.DataFrame]:
    """Every piece of `table`, counting in `kept` each unit's rows that missing: drop keeps."""
    for unit in table.units:
        for frame in table.frames([unit]):
            keep = rows_without_gaps(frame, missing)
            kept[unit] = kept.get(unit, 0) + (len(frame) if keep is None else int(keep.sum()))
            yield frame
