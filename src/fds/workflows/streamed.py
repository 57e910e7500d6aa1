"""encode, decode and sample over tables that stay on disk: read piece by piece, written to
Parquet one row group per piece, atomically (docs/scale.md). No step holds the whole table.

Draws that take a seed (`--sample`, `--private prior`, sampling) get one seed per piece, derived
from the given seed: the output is reproducible, but not the same numbers as the command run on
the table in memory (one seed for all rows).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fds.data.files import check_parquet_output, write_parquet_pieces
from fds.data.table_stream import CHUNK_ROWS, TableSource
from fds.errors import DataError
from fds.estimator import FDS
from fds.training.progress import RowProgress

SAMPLE_STREAM_ROWS = 1_000_000  # fds sample streams above this many rows by default


def piece_seed(seed: int | None, piece: int) -> int | None:
    """The seed of piece `piece` (None: fresh randomness for every piece)."""
    if seed is None:
        return None
    return int(np.random.SeedSequence([seed, piece]).generate_state(1)[0])


def _streamed(
    pieces: Iterator[pd.DataFrame | np.ndarray],
    out: Path,
    overwrite: bool,
    progress: RowProgress,
) -> int:
    def counted() -> Iterator[pd.DataFrame | np.ndarray]:
        for piece in pieces:
            yield piece
            progress.advance(len(piece))

    check_parquet_output(out, overwrite)  # before the bar shows
    with progress:
        return write_parquet_pieces(counted(), out, overwrite=overwrite)


def _tabular(model: FDS) -> None:
    if model.input_kind_ != "table":
        raise DataError(
            f"streaming applies to tables; this model was fitted on {model.input_kind_}"
        )


def encode_streamed(
    model: FDS,
    table: TableSource,
    out: Path,
    *,
    transform: Callable[[pd.DataFrame, int | None], np.ndarray],
    seed: int | None,
    overwrite: bool,
    show_progress: bool,
) -> dict[str, Any]:
    """`transform(frame, seed)` (the model's transform with the command's options) of every
    piece of `table`, written to `out`."""
    _tabular(model)
    pieces = (transform(frame, piece_seed(seed, i)) for i, frame in enumerate(table.frames()))
    progress = RowProgress(show_progress, "encode", len(table))
    rows = _streamed(pieces, out, overwrite, progress)
    return {"out": str(out), "rows": rows, "latent_dim": model.config_.latent_dim}


def decode_streamed(
    model: FDS,
    latents: TableSource,
    out: Path,
    *,
    private: Any,
    seed: int | None,
    overwrite: bool,
    show_progress: bool,
) -> dict[str, Any]:
    """The decoded rows of every piece of the latents table `latents`, written to `out`."""
    _tabular(model)

    def pieces() -> Iterator[pd.DataFrame]:
        for i, frame in enumerate(latents.frames()):
            try:
                codes = frame.to_numpy(dtype=np.float32)
            except (TypeError, ValueError):
                raise DataError(f"{latents.path}: latents must be numeric columns") from None
            yield model.inverse_transform(codes, private=private, seed=piece_seed(seed, i))

    progress = RowProgress(show_progress, "decode", len(latents))
    return {"out": str(out), "rows": _streamed(pieces(), out, overwrite, progress)}


def sample_streamed(
    model: FDS,
    n: int,
    out: Path,
    *,
    seed: int | None,
    overwrite: bool,
    show_progress: bool,
    **options: Any,
) -> dict[str, Any]:
    """`n` rows from the prior drawn CHUNK_ROWS at a time (`options`: FDS.sample's conditions,
    max_draws, allow_fewer, applied per piece), written to `out`."""
    _tabular(model)
    if n < 1:
        raise DataError(f"n must be at least 1, got {n}")
    sizes = [min(CHUNK_ROWS, n - start) for start in range(0, n, CHUNK_ROWS)]
    pieces = (
        model.sample(size, seed=piece_seed(seed, i), **options) for i, size in enumerate(sizes)
    )
    rows = _streamed(pieces, out, overwrite, RowProgress(show_progress, "sample", n))
    return {"out": str(out), "rows": rows, "requested": n}
