"""Tables read piece by piece: the one-pass codec equals the in-memory one, streamed epochs see
every row once in a seeded order, shards are disjoint, Parquet output is atomic."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fds.data import stream_fit
from fds.data.datasets.big_table import BIG_TABLE_COLUMNS, MISSING, big_table_pieces
from fds.data.files import write_parquet_pieces
from fds.data.stream import Rows
from fds.data.stream_fit import fit_streamed
from fds.data.streamed_rows import StreamedRows, split_units
from fds.data.table_stream import TableSource
from fds.data.tabular import TabularCodec
from fds.errors import DataError

N = 3000


def mixed_table(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "x": rng.normal(size=n),
            "money": np.round(rng.lognormal(1.0, 1.0, n), 2),
            "visits": rng.poisson(4, n),
            "flag": rng.random(n) < 0.3,
            "zero_one": rng.integers(0, 2, n),
            "city": rng.choice(["paris", "lyon", "nice", "lille"], n),
        }
    )
    frame.loc[rng.random(n) < 0.1, "x"] = np.nan
    frame.loc[rng.random(n) < 0.05, "city"] = None
    return frame


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """The mixed table in 3 Parquet files of row groups of 250 rows."""
    frame = mixed_table()
    for i, part in enumerate(np.array_split(np.arange(N), 3)):
        frame.iloc[part].to_parquet(tmp_path / f"part{i}.parquet", row_group_size=250, index=False)
    return tmp_path


def _columns(codec: TabularCodec) -> dict[str, dict]:
    return {c["name"]: c for c in codec.to_json()["columns"]}


def _assert_same_spec(a: dict, b: dict, fields: tuple[str, ...] | None = None) -> None:
    for key in fields or tuple(a):
        if isinstance(a[key], float) or (
            isinstance(a[key], list) and a[key] and isinstance(a[key][0], float)
        ):
            np.testing.assert_allclose(a[key], b[key], rtol=1e-9, err_msg=f"{a['name']}.{key}")
        else:
            assert a[key] == b[key], f"{a['name']}.{key}: {a[key]!r} != {b[key]!r}"


@pytest.mark.parametrize("transform", ["standard", "quantile", "bounded"])
def test_streamed_codec_equals_the_in_memory_codec(folder: Path, transform: str) -> None:
    table = TableSource(folder, chunk_rows=333)  # pieces that straddle nothing in particular
    streamed, rows = fit_streamed(table.frames(), missing="model", transform=transform)
    in_memory = TabularCodec.fit(mixed_table(), missing="model", transform=transform)
    assert rows == N
    assert streamed.blocks == in_memory.blocks
    expected, got = _columns(in_memory), _columns(streamed)
    assert list(expected) == list(got)
    for name in expected:
        _assert_same_spec(expected[name], got[name])


def test_exact_statistics_stay_exact_beyond_the_sample(folder: Path, monkeypatch) -> None:
    """With a sample smaller than the table, counts, ranges, decimals, categories and the
    standard transform's mean and spread are still those of every row."""
    monkeypatch.setattr(stream_fit, "SAMPLE_ROWS", 200)
    streamed, _ = fit_streamed(TableSource(folder).frames(), missing="model")
    expected = _columns(TabularCodec.fit(mixed_table(), missing="model"))
    exact = ("kind", "dtype", "categories", "support", "decimals", "indicator", "center", "scale")
    for name, spec in _columns(streamed).items():
        _assert_same_spec(expected[name], spec, exact)


def test_a_gap_under_missing_error_is_named_by_its_row_in_the_whole_table(folder: Path) -> None:
    first_gap = int(np.flatnonzero(mixed_table()["x"].isna())[0])
    with pytest.raises(DataError, match=f"'x' has a missing value \\(NaN\\) at row {first_gap}"):
        fit_streamed(TableSource(folder, chunk_rows=100).frames(), missing={"city": "model"})


def _streamed_rows(folder: Path, **kw) -> StreamedRows:
    table = TableSource(folder)
    codec, _ = fit_streamed(table.frames(), missing="model")
    return StreamedRows(table, table.units, codec.encode, "model", **kw)


def test_an_epoch_serves_every_row_once_in_a_seeded_order(folder: Path) -> None:
    rows = _streamed_rows(folder, buffer_rows=600)
    every = Counter(tuple(r) for r in rows.head(N).source)
    epoch0 = [x.numpy() for x, _ in rows.epoch_batches(64, seed=1, epoch=0, start=0)]
    assert len(epoch0) == N // 64 and all(len(b) == 64 for b in epoch0)
    seen = Counter(tuple(r) for b in epoch0 for r in b)
    assert sum(seen.values()) == (N // 64) * 64
    assert not seen - every  # no row served more often than the table holds it
    in_order = rows.head(64).source
    assert not np.array_equal(epoch0[0], in_order)  # shuffled
    again = [x.numpy() for x, _ in rows.epoch_batches(64, seed=1, epoch=0, start=0)]
    assert all(np.array_equal(a, b) for a, b in zip(epoch0, again, strict=True))
    other = next(rows.epoch_batches(64, seed=1, epoch=1, start=0))[0].numpy()
    assert not np.array_equal(other, epoch0[0])
    resumed = next(rows.epoch_batches(64, seed=1, epoch=0, start=5))[0].numpy()
    assert np.array_equal(resumed, epoch0[5])  # a resumed epoch goes on where it stopped


@pytest.mark.parametrize(("chunk_rows", "buffer_rows"), [(37, 100), (1000, 50), (250, 3000)])
def test_batches_straddle_pieces_and_the_last_partial_batch_is_left_out(
    folder: Path, chunk_rows: int, buffer_rows: int
) -> None:
    """Pieces smaller than a batch, a buffer smaller than a piece or larger than the table: full
    batches only, each row of the table at most once, none changed by the rows read after it."""
    table = TableSource(folder, chunk_rows=chunk_rows)
    codec, _ = fit_streamed(table.frames(), missing="model")
    rows = StreamedRows(table, table.units, codec.encode, "model", buffer_rows=buffer_rows)
    every = Counter(tuple(r) for r in codec.encode(mixed_table()))
    held = [x for x, _ in rows.epoch_batches(64, seed=0, epoch=0, start=0)]  # kept, not copied
    assert len(held) == N // 64 and all(x.shape == (64, codec.n_encoded) for x in held)
    seen = Counter(tuple(r) for x in held for r in x.numpy())
    assert sum(seen.values()) == N - N % 64 and not seen - every


def test_closing_an_epoch_early_stops_its_reader(folder: Path) -> None:
    rows = _streamed_rows(folder, buffer_rows=600)
    before = threading.active_count()
    batches = rows.epoch_batches(64, seed=0, epoch=0, start=0)
    next(batches)
    batches.close()
    assert threading.active_count() == before


def test_strings_read_as_categoricals_encode_as_read_plainly(folder: Path) -> None:
    """Training reads Parquet strings as Categoricals (each distinct value decoded once): the
    encoded rows are those of the plain read, also where a gap is filled with a value that
    the piece itself lacks."""
    table = TableSource(folder, chunk_rows=100)
    codec, _ = fit_streamed(table.frames(), missing="model")
    plain_read = list(table.frames())
    categorical = list(table.frames(categorical=True))
    assert [str(f["city"].dtype) for f in categorical[:1]] == ["category"]
    assert categorical[0]["x"].dtype == plain_read[0]["x"].dtype
    for a, b in zip(plain_read, categorical, strict=True):
        np.testing.assert_array_equal(codec.encode(a), codec.encode(b))
    fill = next(c for c in codec.columns if c.name == "city").fill
    other = next(v for v in ("paris", "lyon", "nice") if v != fill)
    piece = mixed_table(3).assign(city=pd.Categorical([other, None, other]))
    np.testing.assert_array_equal(codec.encode(piece), codec.encode(piece.astype({"city": object})))


def test_shards_are_disjoint_and_run_the_same_number_of_batches(folder: Path) -> None:
    rows = _streamed_rows(folder)
    shards = [rows.shard(r, 3) for r in range(3)]
    units = [set(s.units) for s in shards]
    assert set.union(*units) == set(rows.units)
    assert sum(len(u) for u in units) == len(rows.units)
    assert len({len(s) for s in shards}) == 1
    counts = [sum(1 for _ in s.epoch_batches(50, 0, 0, 0)) for s in shards]
    assert counts == [len(shards[0]) // 50] * 3
    with pytest.raises(DataError, match="row group"):
        rows.shard(0, len(rows.units) + 1)


def test_validation_holds_out_whole_row_groups(folder: Path) -> None:
    table = TableSource(folder)
    train, val = split_units(table.units, 0.1, seed=0, max_rows=10_000)
    assert val and not set(train) & set(val)
    assert sum(u.rows for u in val) >= 0.1 * N
    assert split_units(table.units[:1], 0.1, 0, 10_000) == (table.units[:1], [])


def test_files_whose_columns_differ_are_refused_naming_the_file(folder: Path) -> None:
    odd = mixed_table(10).rename(columns={"city": "town"})
    odd.to_parquet(folder / "part9.parquet", index=False)
    with pytest.raises(DataError, match=r"part9.parquet does not match .*'city' is missing"):
        TableSource(folder)
    retyped = mixed_table(10).astype({"visits": "float64"})
    retyped.to_parquet(folder / "part9.parquet", index=False)
    with pytest.raises(DataError, match="'visits' is double, not int64"):
        TableSource(folder)


def test_parquet_pieces_are_row_groups_and_a_failure_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    pieces = [mixed_table(100, seed) for seed in range(3)]
    assert write_parquet_pieces(iter(pieces), out) == 300
    assert pq.ParquetFile(out).metadata.num_row_groups == 3
    pd.testing.assert_frame_equal(pd.read_parquet(out), pd.concat(pieces, ignore_index=True))
    with pytest.raises(DataError, match="exists"):
        write_parquet_pieces(iter(pieces), out)

    def failing():
        yield pieces[0]
        raise DataError("piece 2 is bad")

    broken = tmp_path / "broken.parquet"
    with pytest.raises(DataError, match="piece 2 is bad"):
        write_parquet_pieces(failing(), broken)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]


def test_big_table_is_20_mixed_columns_with_gaps_the_same_for_any_run() -> None:
    pieces = list(big_table_pieces(70_000, seed=3))
    assert [len(p) for p in pieces] == [65_536, 70_000 - 65_536]
    frame = pd.concat(pieces)
    assert frame.shape[1] == BIG_TABLE_COLUMNS
    assert {c for c in frame.columns if frame[c].isna().any()} == set(MISSING)
    kinds = {str(frame[c].dtype) for c in frame.columns}
    assert {"float64", "int64", "bool", "object"} <= kinds
    # a table of 65,536 rows is the first piece of any larger one
    pd.testing.assert_frame_equal(next(big_table_pieces(65_536, seed=3)), pieces[0])


def test_in_memory_rows_shard_the_same_way() -> None:
    rows = Rows(np.arange(103, dtype=np.float32)[:, None], np.arange(103))
    shards = [rows.shard(r, 4) for r in range(4)]
    assert {len(s) for s in shards} == {25}
    served = np.concatenate([s.source[s.index] for s in shards]).ravel()
    assert len(set(served.tolist())) == 100  # disjoint
