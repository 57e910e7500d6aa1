"""Image readers and validation: IDX (raw/gzip), PNG folders, and as_image_array."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fds.data.images import as_image_array, read_idx, read_png_folder
from fds.errors import DataError


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize(
    ("dtype", "code"),
    [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float64, 0x0E)],
)
def test_idx_round_trip(tmp_path: Path, dtype: type, code: int, compress: bool) -> None:
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4).astype(dtype)
    data = _idx_bytes(array, code)
    path = tmp_path / "data.idx"  # no .gz suffix: gzip must be detected by its magic bytes
    path.write_bytes(gzip.compress(data) if compress else data)
    out = read_idx(path)
    assert out.dtype == np.dtype(dtype) and out.dtype.isnative
    np.testing.assert_array_equal(out, array)
    out[0, 0, 0] = 1  # writable, so it can go straight to torch.from_numpy


def test_idx_bad_magic_names_file(tmp_path: Path) -> None:
    path = tmp_path / "not-idx.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(20))
    with pytest.raises(DataError, match=r"not-idx\.bin is not an IDX file: bad magic"):
        read_idx(path)


def test_idx_unknown_type_code_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "odd.idx"
    path.write_bytes(bytes([0, 0, 0x07, 1]) + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(DataError, match="bad magic"):
        read_idx(path)


@pytest.mark.parametrize("compress", [False, True])
def test_idx_truncated_payload(tmp_path: Path, compress: bool) -> None:
    data = _idx_bytes(np.zeros((5, 4), dtype=np.uint8), 0x08)[:-3]
    path = tmp_path / "short.idx.gz"
    path.write_bytes(gzip.compress(data) if compress else data)
    with pytest.raises(DataError, match=r"short\.idx\.gz .*17 bytes.*truncated"):
        read_idx(path)


def test_idx_corrupt_gzip_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.gz"
    path.write_bytes(gzip.compress(b"0" * 100)[:15])
    with pytest.raises(DataError, match=r"broken\.gz is a corrupt gzip file"):
        read_idx(path)
    with pytest.raises(DataError, match=r"nope\.idx: file not found"):
        read_idx(tmp_path / "nope.idx")


def _write_pngs(folder: Path, arrays: list[np.ndarray]) -> None:
    folder.mkdir(exist_ok=True)
    for i, array in enumerate(arrays):
        Image.fromarray(array).save(folder / f"img_{i:02d}.png")


def test_png_folder_grayscale_round_trip_sorted(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = [rng.integers(0, 256, size=(5, 7), dtype=np.uint8) for _ in range(3)]
    _write_pngs(tmp_path, arrays)
    (tmp_path / "notes.txt").write_text("ignored")
    np.testing.assert_array_equal(read_png_folder(tmp_path), np.stack(arrays))


def test_png_folder_rgb_gives_channels_last(tmp_path: Path) -> None:
    arrays = [np.full((4, 6, 3), i * 40, dtype=np.uint8) for i in range(2)]
    _write_pngs(tmp_path, arrays)
    out = read_png_folder(tmp_path)
    assert out.shape == (2, 4, 6, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, np.stack(arrays))


def test_png_folder_mismatched_size_names_file(tmp_path: Path) -> None:
    _write_pngs(tmp_path, [np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)])
    Image.fromarray(np.zeros((5, 4), np.uint8)).save(tmp_path / "img_01b.png")
    with pytest.raises(DataError, match=r"img_01b\.png: 4x5.*differs from img_00\.png"):
        read_png_folder(tmp_path)


def test_png_folder_mismatched_mode_names_file(tmp_path: Path) -> None:
    _write_pngs(tmp_path, [np.zeros((4, 4), np.uint8)])
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"rgb\.png: 4x4, 3 channel"):
        read_png_folder(tmp_path)


def test_png_folder_empty_or_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"contains no \.png files"):
        read_png_folder(tmp_path)
    with pytest.raises(DataError, match="not a directory"):
        read_png_folder(tmp_path / "absent")


def test_png_folder_unreadable_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "fake.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match=r"fake\.png: cannot read as PNG"):
        read_png_folder(tmp_path)


@pytest.mark.parametrize("shape", [(2, 5, 5), (2, 5, 5, 1), (2, 5, 5, 3), (2, 5, 5, 4)])
def test_as_image_array_accepts_valid_batches_unchanged(shape: tuple[int, ...]) -> None:
    images = np.zeros(shape, dtype=np.uint8)
    assert as_image_array(images) is images
    floats = np.full(shape, 0.5, dtype=np.float32)
    assert as_image_array(floats) is floats


def test_as_image_array_keeps_memmap(tmp_path: Path) -> None:
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.uint8, shape=(3, 4, 4))
    assert as_image_array(mm) is mm


def test_as_image_array_bool_becomes_float() -> None:
    out = as_image_array(np.array([[[True, False]]]))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[[1.0, 0.0]]])


@pytest.mark.parametrize(
    ("array", "pattern"),
    [
        (np.full((2, 3, 3), 1.5), r"must lie in \[0, 1\] but range over \[1\.5, 1\.5\]"),
        (np.full((2, 3, 3), -0.25), r"range over \[-0\.25, -0\.25\]"),
        (np.array([[[0.2, np.nan]]]), "contain NaN"),
        (np.array([[[0.2, np.inf]]]), r"range over \[0\.2, inf\]"),
        (np.zeros((4, 8), np.uint8), r"shape \(4, 8\) is not an image batch"),
        (np.zeros((2, 3, 3, 5), np.uint8), r"C in 1\.\.4"),
        (np.zeros((0, 3, 3), np.uint8), "is empty"),
        (np.zeros((2, 3, 3), np.int64), "dtype int64 is not supported"),
    ],
)
def test_as_image_array_errors(array: np.ndarray, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        as_image_array(array, name="batch.npy")
    with pytest.raises(DataError, match=r"^batch\.npy: "):
        as_image_array(array, name="batch.npy")
