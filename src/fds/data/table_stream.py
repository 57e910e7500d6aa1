"""A table read piece by piece, never whole: a Parquet file, a folder of Parquet files, or a CSV.

The table is cut into units, the pieces read at once: a Parquet row group, or a whole CSV file
(a CSV has no row groups, so it is one unit read front to back in chunks). Units are what a
streamed epoch shuffles and what `shard` deals out to ranks. Every Parquet file of a folder must
have the same columns with the same types; the first that differs is named, before any work.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from fds.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")
TABLE_SUFFIXES = (*PARQUET_SUFFIXES, ".csv")
STREAM_BYTES = 512 * 2**20  # tables on disk larger than this are streamed by default
CHUNK_ROWS = 65_536  # rows read (and encoded) at once


@dataclass(frozen=True)
class Unit:
    """One piece of the table: row group `row_group` of a Parquet file (None: a whole CSV)."""

    path: str
    row_group: int | None
    rows: int


def is_streamable(path: str | Path) -> bool:
    """A Parquet or CSV file, or a folder holding Parquet files."""
    path = Path(path)
    if path.is_dir():
        return any(_parquet_files(path))
    return path.is_file() and path.suffix.lower() in TABLE_SUFFIXES


def table_bytes(path: str | Path) -> int:
    """Bytes on disk of a table file, or of the Parquet files of a folder."""
    path = Path(path)
    files = _parquet_files(path) if path.is_dir() else [path]
    return sum(f.stat().st_size for f in files)


def _parquet_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in PARQUET_SUFFIXES and p.is_file()
    )


class TableSource:
    """The units of a table on disk and their rows as DataFrames, `chunk_rows` at a time."""

    def __init__(self, path: str | Path, chunk_rows: int = CHUNK_ROWS) -> None:
        self.path, self.chunk_rows = Path(path), chunk_rows
        if not self.path.exists():
            raise DataError(f"data not found: {self.path}")
        if self.path.is_dir():
            files = _parquet_files(self.path)
            if not files:
                raise DataError(f"{self.path} holds no Parquet files (.parquet, .pq)")
        elif self.path.suffix.lower() in TABLE_SUFFIXES:
            files = [self.path]
        else:
            raise DataError(
                f"{self.path}: cannot stream {self.path.suffix or '(no suffix)'}; "
                "use a .parquet or .csv file, or a folder of .parquet files"
            )
        self.csv = files[0].suffix.lower() == ".csv"
        self.units = _csv_units(files[0], chunk_rows) if self.csv else _parquet_units(files)
        self.columns = self._columns(files[0])
        self.strings = [] if self.csv else _string_columns(files[0])
        if sum(u.rows for u in self.units) == 0:
            raise DataError(f"{self.path} holds no rows")

    def __len__(self) -> int:
        return sum(u.rows for u in self.units)

    def _columns(self, first: Path) -> list[str]:
        if self.csv:
            return [str(c) for c in pd.read_csv(first, nrows=0).columns]
        return list(pq.read_schema(first).names)

    def frames(
        self, units: Sequence[Unit] | None = None, *, categorical: bool = False
    ) -> Iterator[pd.DataFrame]:
        """The rows of `units` (default: all, in order) as DataFrames of at most chunk_rows.

        `categorical`: Parquet string columns come as pandas Categoricals, each distinct value
        decoded once instead of once per row (several times faster), for readers that only
        look the values up, such as an encoder; the codec's fit needs the columns' own dtypes."""
        for unit in self.units if units is None else units:
            yield from self._read(unit, categorical)

    def _read(self, unit: Unit, categorical: bool) -> Iterator[pd.DataFrame]:
        try:
            if unit.row_group is None:
                yield from pd.read_csv(unit.path, chunksize=self.chunk_rows)
                return
            reader = pq.ParquetFile(
                unit.path, read_dictionary=self.strings if categorical else None
            )
            for batch in reader.iter_batches(self.chunk_rows, row_groups=[unit.row_group]):
                yield batch.to_pandas()
        except (OSError, ValueError, pa.ArrowException) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"{unit.path} could not be read: {reason}") from None


def _string_columns(path: Path) -> list[str]:
    """The columns of a Parquet file that hold strings."""
    schema = pq.read_schema(path)
    return [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]


def _parquet_units(files: list[Path]) -> list[Unit]:
    """The row groups of each file; a file whose schema differs from the first is refused."""
    units, first = [], None
    for path in files:
        try:
            meta = pq.ParquetFile(path).metadata
        except (OSError, pa.ArrowException) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise DataError(f"{path} is not a valid Parquet file: {reason}") from None
        schema = meta.schema.to_arrow_schema()
        if first is None:
            first = (path, schema)
        elif not schema.equals(first[1]):
            raise DataError(
                f"{path} does not match {first[0]}: {_schema_difference(first[1], schema)}"
            )
        units += [
            Unit(str(path), g, meta.row_group(g).num_rows) for g in range(meta.num_row_groups)
        ]
    return units


def _schema_difference(expected: pa.Schema, got: pa.Schema) -> str:
    """The first column whose presence or type differs, in words."""
    for field in expected:
        if field.name not in got.names:
            return f"column {field.name!r} is missing"
        if got.field(field.name).type != field.type:
            return f"column {field.name!r} is {got.field(field.name).type}, not {field.type}"
    extra = next(name for name in got.names if name not in expected.names)
    return f"column {extra!r} is extra"


def _csv_units(path: Path, chunk_rows: int) -> list[Unit]:
    """A CSV is one unit; counting its rows reads it once, a chunk at a time."""
    try:
        rows = sum(len(chunk) for chunk in pd.read_csv(path, chunksize=chunk_rows, usecols=[0]))
    except (OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path} is not a valid CSV file: {reason}") from None
    return [Unit(str(path), None, rows)]
