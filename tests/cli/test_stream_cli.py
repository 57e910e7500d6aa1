"""Streamed tables through the CLI: train on a folder of Parquet files, encode / decode / sample
to Parquet in row groups, one-line errors and nothing written on failure."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from fds.data.datasets.big_table import big_table_pieces
from fds.estimator import FDS
from tests.cli_helpers import fds, one_line_error

FAST_YAML = "latent_dim: 3\nhidden_dims: [32]\nepochs: 1\nbatch_size: 128\nmissing: model\n"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """4 Parquet files of the big-table generator (row groups of 500 rows), and a fast config."""
    root = tmp_path_factory.mktemp("stream")
    frame = next(big_table_pieces(4000, seed=0))
    parts = root / "parts"
    parts.mkdir()
    for i in range(4):
        frame.iloc[i * 1000 : (i + 1) * 1000].to_parquet(
            parts / f"p{i}.parquet", row_group_size=500, index=False
        )
    (root / "fast.yaml").write_text(FAST_YAML)
    return root


@pytest.fixture(scope="module")
def run(workspace: Path) -> Path:
    out = workspace / "run"
    result = fds(
        "train", "--data", workspace / "parts", "--config", workspace / "fast.yaml",
        "--out", out, "--quiet", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out


def test_training_on_a_folder_of_parquet_streams_and_the_model_loads(run: Path) -> None:
    assert "stream: true" in (run / "config.yaml").read_text()  # --resume streams again
    model = FDS.load(run)
    assert list(model.feature_names_in_) == list(next(big_table_pieces(1)).columns)
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    assert "val_loss" in record  # held-out row groups
    drawn = model.sample(50, seed=0)
    assert drawn.shape == (50, 20)


def test_encode_decode_sample_write_parquet_in_row_groups(workspace: Path, run: Path) -> None:
    z, rows, drawn = (workspace / name for name in ("z.parquet", "rows.parquet", "s.parquet"))
    args = ["--model", run, "--stream", "--quiet", "--json"]
    result = fds("encode", *args, "--data", workspace / "parts", "--out", z)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"out": str(z), "rows": 4000, "latent_dim": 3}
    assert pq.ParquetFile(z).metadata.num_row_groups == 8  # one per row group read
    codes = pd.read_parquet(z)
    model = FDS.load(run)
    expected = model.transform(pd.read_parquet(workspace / "parts" / "p0.parquet"))
    pd.testing.assert_frame_equal(
        codes.iloc[:1000].reset_index(drop=True),
        pd.DataFrame(expected, columns=codes.columns),
        check_dtype=False,
    )
    assert fds("decode", *args, "--latents", z, "--out", rows).exit_code == 0
    assert pd.read_parquet(rows).shape == (4000, 20)
    result = fds("sample", *args, "-n", 70_000, "--seed", "1", "--out", drawn)
    assert result.exit_code == 0, result.output
    assert pq.ParquetFile(drawn).metadata.num_row_groups == 2  # 65,536 rows at a time
    again = workspace / "s2.parquet"
    fds("sample", *args, "-n", 70_000, "--seed", "1", "--out", again)
    pd.testing.assert_frame_equal(pd.read_parquet(drawn), pd.read_parquet(again))


def test_a_failing_encode_writes_nothing(workspace: Path, run: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    frame = next(big_table_pieces(1000, seed=1))
    frame.iloc[:600].to_parquet(wrong / "a.parquet", index=False)
    frame.iloc[600:].assign(cat4="unseen").to_parquet(wrong / "b.parquet", index=False)
    out = tmp_path / "z.parquet"
    result = fds("encode", "--model", run, "--data", wrong, "--out", out, "--quiet")
    one_line_error(result, "cat4", "unseen")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wrong"]  # no file, no temp sibling


def test_bad_paths_and_mismatched_files_are_one_line_errors(
    workspace: Path, tmp_path: Path
) -> None:
    config = workspace / "fast.yaml"
    missing = tmp_path / "nowhere.parquet"
    result = fds(
        "train", "--data", missing, "--stream", "--config", config, "--out", tmp_path / "r"
    )
    one_line_error(result, "nowhere.parquet")
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    frame = next(big_table_pieces(100))
    frame.to_parquet(mixed / "a.parquet", index=False)
    frame.drop(columns="c3").to_parquet(mixed / "b.parquet", index=False)
    result = fds("train", "--data", mixed, "--config", config, "--out", tmp_path / "r")
    one_line_error(result, "b.parquet", "'c3' is missing")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet at all")
    result = fds("train", "--data", broken, "--stream", "--config", config, "--out", tmp_path / "r")
    one_line_error(result, "broken.parquet")
    assert not (tmp_path / "r").exists()


def test_streamed_training_refuses_dp_sgd_before_reading(workspace: Path, tmp_path: Path) -> None:
    config = tmp_path / "dp.yaml"
    config.write_text(FAST_YAML + "privacy: {epsilon: 1.0}\n")
    result = fds(
        "train", "--data", workspace / "parts", "--config", config, "--out", tmp_path / "r"
    )
    one_line_error(result, "DP-SGD", "random access")


def test_datasets_make_big_table(tmp_path: Path) -> None:
    out = tmp_path / "big.parquet"
    result = fds("datasets", "make", "big-table", "--rows", 70_000, "--out", out, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["rows"] == 70_000
    meta = pq.ParquetFile(out).metadata
    assert (meta.num_rows, meta.num_columns, meta.num_row_groups) == (70_000, 20, 2)
    again = fds("datasets", "make", "big-table", "--rows", 10, "--out", out)
    one_line_error(again, "exists")
