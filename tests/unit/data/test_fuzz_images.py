"""Property-based: any array, IDX file or folder of "PNG" files either loads as an image batch the
image codec round-trips, or is refused with one DataError line. Never another exception."""

from __future__ import annotations

import io
import struct
import tempfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from fds.data.image_codec import ImageCodec
from fds.data.images import as_image_array, read_idx, read_png_folder
from fds.errors import DataError

DTYPES = st.one_of(
    hnp.integer_dtypes(),
    hnp.unsigned_integer_dtypes(),
    hnp.floating_dtypes(),
    hnp.boolean_dtypes(),
    hnp.complex_number_dtypes(),
    st.just(np.dtype(object)),
    st.just(np.dtype("U3")),
    st.just(np.dtype("datetime64[s]")),
)
SHAPES = hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=5)
IDX_TYPES = [0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]
PNG_MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "I;16"]  # what PNG can hold


def _accepted(images: np.ndarray) -> None:
    """What a loaded batch promises: the codec fits it, encodes to [0, 1] and decodes back."""
    codec = ImageCodec.fit(images)
    encoded = codec.encode(images)
    assert encoded.dtype == np.float32 and ((encoded >= 0) & (encoded <= 1)).all()
    assert codec.decode(encoded).shape == images.shape


def _refused(exc: DataError) -> None:
    assert "\n" not in str(exc), str(exc)
    event("refused")


IMAGE_SHAPES = st.one_of(
    hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=6),
    hnp.array_shapes(min_dims=4, max_dims=4, min_side=1, max_side=6),
)
ARRAYS = st.one_of(
    hnp.arrays(DTYPES, SHAPES),
    hnp.arrays(st.sampled_from([np.uint8, np.float32, np.float64, np.bool_]), IMAGE_SHAPES),
)


@given(ARRAYS)
def test_any_array_is_an_image_batch_or_one_data_error(array: np.ndarray) -> None:
    try:
        images = as_image_array(array)
    except DataError as exc:
        _refused(exc)
        return
    event("accepted")
    _accepted(images)


@st.composite
def idx_files(draw) -> bytes:
    """Random bytes, or a well-formed IDX header whose payload may be truncated or padded."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=64))
    code = draw(st.sampled_from([*IDX_TYPES, 0x00, 0xFF]))
    shape = draw(st.lists(st.integers(0, 6), min_size=1, max_size=4))
    itemsize = {0x08: 1, 0x09: 1, 0x0B: 2, 0x0C: 4, 0x0D: 4, 0x0E: 8}.get(code, 1)
    size = int(np.prod(shape)) * itemsize + draw(st.sampled_from([0, 0, 0, -1, 1]))
    if draw(st.integers(0, 9)) == 0:
        shape[0] = 2**32 - 1  # a header that claims far more data than there is
    header = bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
    return header + draw(st.binary(min_size=max(size, 0), max_size=max(size, 0)))


@given(idx_files(), st.booleans())
def test_any_idx_file_loads_or_is_one_data_error(raw: bytes, gzipped: bool) -> None:
    import gzip

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "x-idx3-ubyte"
        path.write_bytes(gzip.compress(raw) if gzipped else raw)
        try:
            array = read_idx(path)
        except DataError as exc:
            _refused(exc)
            return
    event("loaded")
    assert isinstance(array, np.ndarray) and array.flags.writeable


@st.composite
def png_bytes(draw) -> bytes:
    """A PNG of a random mode and size, random bytes, or a PNG cut short."""
    choice = draw(st.sampled_from(["png", "png", "garbage", "truncated"]))
    if choice == "garbage":
        return draw(st.binary(max_size=100))
    mode = draw(st.sampled_from(PNG_MODES))
    size = (draw(st.integers(1, 6)), draw(st.integers(1, 6)))
    seed = draw(st.integers(0, 2**32 - 1))
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 4), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGBA").convert(mode)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **({"transparency": 0} if mode == "P" else {}))
    data = buffer.getvalue()
    return data[: draw(st.integers(0, len(data) - 1))] if choice == "truncated" else data


@given(st.lists(png_bytes(), min_size=0, max_size=4))
def test_any_folder_of_pngs_loads_or_is_one_data_error(files: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        for i, content in enumerate(files):
            (Path(folder) / f"{i}.png").write_bytes(content)
        try:
            images = read_png_folder(folder)
        except DataError as exc:
            _refused(exc)
            return
    event("loaded")
    assert images.dtype == np.uint8 and len(images) == len(files)
    _accepted(images)


def test_a_png_claiming_ten_billion_pixels_is_refused(tmp_path: Path) -> None:
    """A decompression bomb: PIL refuses to open it, and so does FDS, in one line."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    ihdr = struct.pack(">II", 100_000, 100_000) + bytes(data[24:29])  # width, height, the rest
    data[16:29] = ihdr
    data[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"bomb\.png"):
        read_png_folder(tmp_path)
