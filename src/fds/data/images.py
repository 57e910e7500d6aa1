"""Image inputs: IDX files (MNIST family), folders of PNGs, and validation of image arrays.

Readers return plain numpy arrays so the rest of the package sees one representation:
(N, H, W) for grayscale, (N, H, W, C) with C in 1..4 otherwise.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fds.errors import DataError

__all__ = ["as_image_array", "read_idx", "read_png", "read_png_folder"]

_GZIP_MAGIC = b"\x1f\x8b"
# IDX type codes → big-endian numpy dtypes (http://yann.lecun.com/exdb/mnist/).
_IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
# PNG modes we read as-is; 1-bit and palette images are expanded to one of them.
_PNG_MODES = {"L", "LA", "RGB", "RGBA"}


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or gzip, detected by magic bytes) into a native-endian array."""
    path = Path(path)
    raw = _read_bytes(path)
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(f"{path} is a corrupt gzip file: {exc}") from exc
    return _parse_idx(raw, path)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise DataError(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise DataError(f"{path} is a directory, expected an IDX file") from exc


def _parse_idx(raw: bytes, path: Path) -> np.ndarray:
    """Check header and payload length, then view the payload with np.frombuffer."""
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES or raw[3] == 0:
        raise DataError(
            f"{path} is not an IDX file: bad magic {raw[:4].hex(' ') or '(empty)'} "
            "(expected 00 00 <type 08|09|0b|0c|0d|0e> <ndim ≥ 1>)"
        )
    dtype, ndim = _IDX_DTYPES[raw[2]], raw[3]
    header_len = 4 + 4 * ndim
    if len(raw) < header_len:
        raise DataError(f"{path} is not an IDX file: header truncated ({len(raw)} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    payload = len(raw) - header_len
    if payload != expected:
        raise DataError(
            f"{path} is not a valid IDX file: header says shape {shape} ({expected} bytes of "
            f"data) but the file holds {payload} bytes; it is truncated or corrupt"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header_len).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # copy: writable and native-endian


def read_png_folder(path: str | Path) -> np.ndarray:
    """Stack every *.png in a folder (sorted by name) into (N,H,W) or (N,H,W,C) uint8."""
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a directory of PNG files")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" and p.is_file())
    if not files:
        raise DataError(f"{folder} contains no .png files")
    first = _read_png(files[0])
    out = np.empty((len(files), *first.shape), dtype=np.uint8)
    out[0] = first
    for i, file in enumerate(files[1:], start=1):
        image = _read_png(file)
        if image.shape != first.shape:
            raise DataError(
                f"{file}: {_describe(image)} differs from {files[0].name} ({_describe(first)}); "
                "all images in the folder must share size and mode"
            )
        out[i] = image
    return out


def read_png(path: str | Path) -> np.ndarray:
    """One PNG file as an (H,W) or (H,W,C) uint8 array (a path column of a multimodal table)."""
    return _read_png(Path(path))


def _read_png(file: Path) -> np.ndarray:
    """One PNG as an (H,W) or (H,W,C) uint8 array; palette and 1-bit images are expanded."""
    try:
        with Image.open(file) as img:
            mode = _target_mode(img)
            if mode not in _PNG_MODES:
                raise DataError(
                    f"{file}: unsupported PNG mode {img.mode!r}; save it as 8-bit L, RGB or RGBA"
                )
            return np.asarray(img.convert(mode), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise DataError(f"{file}: cannot read as PNG ({exc})") from exc


def _target_mode(img: Image.Image) -> str:
    if img.mode == "1":
        return "L"
    if img.mode == "P":
        return "RGBA" if "transparency" in img.info else "RGB"
    return img.mode


def _describe(image: np.ndarray) -> str:
    height, width = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    return f"{width}x{height}, {channels} channel(s)"


def as_image_array(x: np.ndarray, *, name: str = "images") -> np.ndarray:
    """Validate an image batch and return it unchanged (memmaps stay memmaps).

    uint8 must be (N,H,W) or (N,H,W,C≤4); floats must be finite and in [0, 1];
    bool is the one dtype converted (to float32 0/1). `name` labels error messages.
    """
    x = x if isinstance(x, np.ndarray) else np.asarray(x)
    _check_image_shape(x, name)
    if x.dtype == np.uint8:
        return x
    if x.dtype == np.bool_:
        return x.astype(np.float32)
    if np.issubdtype(x.dtype, np.floating):
        _check_unit_range(x, name)
        return x
    raise DataError(
        f"{name}: dtype {x.dtype} is not supported; use uint8 (0..255) or float in [0, 1] "
        "(e.g. x.astype(np.uint8) for 0..255 integers)"
    )


def _check_image_shape(x: np.ndarray, name: str) -> None:
    if x.ndim not in (3, 4) or (x.ndim == 4 and not 1 <= x.shape[3] <= 4):
        raise DataError(
            f"{name}: shape {x.shape} is not an image batch; expected (N, H, W) or "
            "(N, H, W, C) with C in 1..4"
        )
    if min(x.shape[:3]) < 1:
        raise DataError(f"{name}: shape {x.shape} is empty; need at least one image of ≥ 1x1")


def _check_unit_range(x: np.ndarray, name: str) -> None:
    """Two reductions instead of an isfinite mask, so large memmaps are not duplicated."""
    lo, hi = float(x.min()), float(x.max())
    if np.isnan(lo) or np.isnan(hi):
        raise DataError(f"{name}: float images contain NaN; fill or drop those images")
    if lo < 0.0 or hi > 1.0:
        raise DataError(
            f"{name}: float images must lie in [0, 1] but range over [{lo:g}, {hi:g}]; "
            "rescale (e.g. x / 255) or pass uint8"
        )
