"""Image codec: (N,H,W[,C]) arrays ↔ float32 vectors in [0, 1], channel-first like torch's convolutions.

Encoding is cheap and done per batch, so a memory-mapped uint8 array is never loaded whole.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fds.data.codec import Block, blocks_from_json, blocks_to_json
from fds.data.images import as_image_array
from fds.errors import DataError


class ImageCodec:
    """Remembers the image shape and dtype seen at fit, so decoding gives back the same kind."""

    input_kind = "images"

    def __init__(
        self, height: int, width: int, channels: int, *, has_channel_axis: bool, dtype: str
    ):
        self.height, self.width, self.channels = height, width, channels
        self.has_channel_axis = has_channel_axis
        self.dtype = dtype
        self.n_encoded = channels * height * width
        self.blocks = [Block("real", 0, self.n_encoded, "pixels")]

    @property
    def chw(self) -> tuple[int, int, int]:
        return self.channels, self.height, self.width

    @classmethod
    def fit(cls, images: np.ndarray) -> ImageCodec:
        images = as_image_array(images)
        channels = images.shape[3] if images.ndim == 4 else 1
        dtype = "uint8" if images.dtype == np.uint8 else "float32"
        return cls(
            images.shape[1],
            images.shape[2],
            channels,
            has_channel_axis=images.ndim == 4,
            dtype=dtype,
        )

    def encode(self, images: np.ndarray) -> np.ndarray:
        images = as_image_array(images)
        shape = images.shape[1:] if self.has_channel_axis else images.shape[1:3]
        expected = (
            (self.height, self.width, self.channels)
            if self.has_channel_axis
            else (self.height, self.width)
        )
        if images.ndim != (4 if self.has_channel_axis else 3) or tuple(shape) != expected:
            raise DataError(
                f"expected images of shape (N, {', '.join(map(str, expected))}), got {images.shape}"
            )
        pixels = images.astype(np.float32)
        if images.dtype == np.uint8:
            pixels /= 255.0
        if self.has_channel_axis:
            pixels = pixels.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(pixels.reshape(len(pixels), -1))

    def decode(self, encoded: np.ndarray) -> np.ndarray:
        if encoded.ndim != 2 or encoded.shape[1] != self.n_encoded:
            raise DataError(f"expected encoded rows of width {self.n_encoded}, got {encoded.shape}")
        pixels = np.clip(encoded, 0.0, 1.0).reshape(-1, *self.chw)
        pixels = pixels.transpose(0, 2, 3, 1) if self.has_channel_axis else pixels[:, 0]
        if self.dtype == "uint8":
            return np.rint(pixels * 255).astype(np.uint8)
        return pixels.astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {
            "input_kind": self.input_kind,
            "height": self.height,
            "width": self.width,
            "channels": self.channels,
            "has_channel_axis": self.has_channel_axis,
            "dtype": self.dtype,
            "blocks": blocks_to_json(self.blocks),
        }

    @classmethod
    def from_json(cls, state: dict[str, Any], source: str = "codec.json") -> ImageCodec:
        sizes = [state.get(k) for k in ("height", "width", "channels")]
        if not (
            all(type(v) is int and v >= 1 for v in sizes)
            and sizes[2] <= 4
            and isinstance(state.get("has_channel_axis"), bool)
            and state.get("dtype") in ("uint8", "float32")
        ):
            raise DataError(f"{source} is invalid: image height, width, channels or dtype")
        codec = cls(
            state["height"],
            state["width"],
            state["channels"],
            has_channel_axis=state["has_channel_axis"],
            dtype=state["dtype"],
        )
        if codec.blocks != blocks_from_json(state.get("blocks"), source):
            raise DataError(f"{source} is inconsistent: its blocks do not match the image shape")
        return codec
