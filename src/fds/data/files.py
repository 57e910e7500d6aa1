"""Reading user data from a path or a built-in name, and writing results without half-written files.

Inputs: CSV, Parquet, .npy (memory-mapped), IDX (raw or gzip), a folder of PNG files, or a built-in
data set name. Outputs are written to a temporary sibling and renamed, so a failure leaves nothing.
Sealed latents (`.fdsz`) are not plain arrays: `fds.privacy.he.SealedLatents` reads and writes
them, and the readers here name that instead of failing on the suffix.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fds.data.datasets import available_datasets, is_builtin, load_builtin
from fds.data.images import read_idx, read_png_folder
from fds.data.table_stream import (
    PARQUET_SUFFIXES,
    STREAM_BYTES,
    TableSource,
    is_streamable,
    table_bytes,
)
from fds.errors import DataError
from fds.rundir import atomic_write

SEALED_SUFFIX = ".fdsz"


@dataclass
class LoadedData:
    """What a data argument resolved to: the samples, plus labels/factors when known."""

    X: pd.DataFrame | np.ndarray
    source: str
    labels: np.ndarray | None = None
    factors: pd.DataFrame | None = None
    sensitive: tuple[str, ...] = ()
    table: TableSource | None = None  # a table streamed from disk (X then holds none of it)


def _is_idx(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith((".idx", "-ubyte")) or "-idx" in name


def read_data(
    spec: str | Path, *, n: int | None = None, seed: int = 0, root: str | None = None
) -> LoadedData:
    """Resolve `spec` as a file, a folder of PNGs, or a built-in data set name."""
    path = Path(spec)
    if not path.exists() and is_builtin(str(spec)):
        data = load_builtin(str(spec), n=n, seed=seed, root=root)
        return LoadedData(data.X, data.name, data.labels, data.factors, tuple(data.sensitive))
    if not path.exists():
        names = ", ".join(d["name"] for d in available_datasets())
        raise DataError(
            f"data not found: {spec} is neither a file, a folder nor a built-in data set ({names})"
        )
    if path.is_dir():
        X: Any = read_png_folder(path)
    else:
        X = _read_file(path)
    if (isinstance(X, np.ndarray) and len(X) == 0) or (isinstance(X, pd.DataFrame) and X.empty):
        raise DataError(f"{path} holds no rows")
    if n is not None:
        X = X.iloc[:n] if isinstance(X, pd.DataFrame) else X[:n]
    return LoadedData(X, str(path))


def open_data(spec: str | Path, *, stream: bool | None = None, **kwargs: Any) -> LoadedData:
    """`read_data`, or with `stream` a table opened to be read piece by piece (`table`). By
    default (None) a Parquet or CSV file larger than STREAM_BYTES, or a folder of Parquet files,
    is streamed; False reads it whole."""
    path = Path(spec)
    auto = is_streamable(path) and (path.is_dir() or table_bytes(path) > STREAM_BYTES)
    if stream or (stream is None and auto):
        return LoadedData(pd.DataFrame(), str(path), table=TableSource(path))
    return read_data(spec, **kwargs)


def _read_file(path: Path) -> pd.DataFrame | np.ndarray:
    suffix = path.suffix.lower()
    readers: dict[str, tuple[str, Callable[[Path], Any]]] = {
        ".csv": ("CSV", pd.read_csv),
        ".parquet": ("Parquet", pd.read_parquet),
        ".pq": ("Parquet", pd.read_parquet),
        ".npy": ("NumPy .npy", lambda p: np.load(p, mmap_mode="r", allow_pickle=False)),
    }
    if _is_idx(path):
        return read_idx(path)
    if suffix == SEALED_SUFFIX:
        raise DataError(
            f"{path} holds sealed latents (the private block encrypted): decode it with "
            "`fds decode --latents FILE [--keys KEYS]` (API: SealedLatents.load)"
        )
    if suffix not in readers:
        raise DataError(
            f"{path}: unsupported file type {suffix or '(none)'}; use .csv, .parquet, .npy, IDX or a PNG folder"
        )
    kind, reader = readers[suffix]
    try:
        return reader(path)
    except Exception as exc:  # each reader raises its own types; the user needs one line
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path} is not a valid {kind} file: {reason}") from None


def read_latents(path: str | Path) -> np.ndarray:
    """Latent codes from .npy, .parquet or .csv (numeric columns only)."""
    X = _read_file(Path(path)) if Path(path).is_file() else None
    if X is None:
        raise DataError(f"latents file not found: {path}")
    if isinstance(X, pd.DataFrame):
        try:
            X = X.to_numpy(dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError(f"{path}: latents must be numeric columns") from None
    return np.asarray(X, dtype=np.float32)


def check_creatable(path: Path) -> None:
    """Refuse a path below a file (`notes.txt/out.csv`): its folder can never be created."""
    blocker = next((p for p in path.parents if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        raise DataError(f"cannot create {path}: {blocker} is a file, not a folder")


def check_output(path: str | Path, overwrite: bool) -> Path:
    """Refuse, before any work, an output path that is a folder, of an unknown type, already
    there (without `overwrite`) or under a file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if path.is_dir():
        raise DataError(
            f"{path} is a folder; name a file in it, e.g. {path / ('out' + (suffix or '.npy'))}"
        )
    if suffix == SEALED_SUFFIX:
        raise DataError(f"{path}: sealed latents are written by `fds encode --seal KEYS`")
    if suffix not in (".csv", ".parquet", ".pq", ".npy"):
        raise DataError(
            f"{path}: unsupported output type {suffix or '(none)'}; use .npy, .parquet or .csv"
        )
    if path.exists() and not overwrite:
        raise DataError(f"{path} exists; pass --overwrite to replace it")
    check_creatable(path)
    return path


def check_parquet_output(path: str | Path, overwrite: bool) -> Path:
    """`check_output`, and a streamed table is written as Parquet."""
    path = check_output(path, overwrite)
    if path.suffix.lower() not in PARQUET_SUFFIXES:
        raise DataError(f"{path}: a streamed table is written as .parquet, not {path.suffix}")
    return path


def write_parquet_pieces(
    pieces: Iterable[pd.DataFrame | np.ndarray], path: str | Path, *, overwrite: bool = False
) -> int:
    """Write a table given piece by piece to Parquet, one row group per piece, so that it is
    never whole in memory; atomically (nothing is left at `path` when a piece fails). Arrays
    become columns z0, z1, …; every piece must have the first one's columns. Returns the rows."""
    path = check_parquet_output(path, overwrite)
    rows = 0

    def write(tmp: Path) -> None:
        nonlocal rows
        writer: pq.ParquetWriter | None = None
        try:
            for piece in pieces:
                if isinstance(piece, np.ndarray):
                    piece = pd.DataFrame(piece, columns=[f"z{i}" for i in range(piece.shape[1])])
                schema = None if writer is None else writer.schema
                try:
                    table = pa.Table.from_pandas(piece, schema=schema, preserve_index=False)
                except (pa.ArrowException, ValueError, KeyError) as exc:
                    raise DataError(f"{path}: a piece does not fit the first one: {exc}") from None
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                rows += len(piece)
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise DataError(f"{path}: nothing to write (no rows)")

    atomic_write(path, write)
    return rows


def write_output(
    obj: pd.DataFrame | np.ndarray, path: str | Path, *, overwrite: bool = False
) -> Path:
    """Write a table (.csv/.parquet) or an array (.npy/.parquet/.csv) atomically."""
    path = check_output(path, overwrite)
    suffix = path.suffix.lower()
    if isinstance(obj, np.ndarray) and suffix != ".npy":
        if obj.ndim != 2:
            raise DataError(f"{path}: arrays of shape {obj.shape} can only be written as .npy")
        obj = pd.DataFrame(obj, columns=[f"z{i}" for i in range(obj.shape[1])])
    if isinstance(obj, pd.DataFrame) and suffix == ".npy":
        try:
            obj = obj.to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise DataError(
                f"{path}: a table with text columns cannot be .npy; use .csv or .parquet"
            ) from None

    def write(tmp: Path) -> None:
        if suffix == ".npy":
            np.save(tmp, np.asarray(obj), allow_pickle=False)
        elif suffix == ".csv":
            obj.to_csv(tmp, index=False)
        else:
            obj.to_parquet(tmp, index=False)

    return atomic_write(path, write)
