"""One codec per modality of aligned records, and which modalities each record has.

A modality is named by its kind: `image` (ImageCodec), `text` (TextCodec), `audio` (AudioCodec)
or `table` (TabularCodec). A record lacks a modality when its entry is None or NaN: a None/NaN
caption or clip, an all-NaN image or table row. Absent rows are encoded as zeros and flagged in
the mask, so batches keep one shape and the models skip them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from fds.data.image_codec import ImageCodec
from fds.data.multimodal.audio import AudioCodec
from fds.data.multimodal.text import TextCodec
from fds.data.tabular import TabularCodec
from fds.errors import DataError

__all__ = [
    "DEFAULT_SAMPLE_RATE",
    "MODALITY_KINDS",
    "MultimodalCodec",
    "check_aligned",
    "hide_at_random",
    "present_mask",
    "subsets",
]

MODALITY_KINDS = ("image", "text", "audio", "table")
DEFAULT_SAMPLE_RATE = 16000
_CODECS: dict[str, type] = {
    "image": ImageCodec,
    "text": TextCodec,
    "audio": AudioCodec,
    "table": TabularCodec,
}


def _absent(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float):
        return bool(np.isnan(value))
    return False


def present_mask(kind: str, values: Any) -> np.ndarray:
    """(N,) bool: which records have this modality."""
    if kind == "table":
        frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(np.asarray(values))
        return ~frame.isna().all(axis=1).to_numpy()
    if isinstance(values, np.ndarray) and values.dtype.kind == "f" and values.ndim >= 2:
        return ~np.isnan(values.reshape(len(values), -1)).all(axis=1)
    if isinstance(values, np.ndarray) and values.dtype.kind != "O":
        return np.ones(len(values), dtype=bool)
    return np.array([not _absent(v) for v in values], dtype=bool)


def _rows(kind: str, values: Any, keep: np.ndarray) -> Any:
    """The present records, in the shape the modality's codec reads."""
    if kind == "table":
        frame = values if isinstance(values, pd.DataFrame) else pd.DataFrame(np.asarray(values))
        return frame.iloc[np.flatnonzero(keep)]
    if kind == "image" and not isinstance(values, np.ndarray):
        kept = [values[i] for i in np.flatnonzero(keep)]
        return np.stack(kept) if kept else np.zeros((0, 1, 1), dtype=np.uint8)
    if isinstance(values, np.ndarray):
        return values[keep]
    return [values[i] for i in np.flatnonzero(keep)]


class MultimodalCodec:
    """The codecs of the modalities, in the order first seen at fit."""

    input_kind = "multimodal"

    def __init__(self, codecs: dict[str, Any]) -> None:
        self.codecs = codecs

    @property
    def modalities(self) -> list[str]:
        return list(self.codecs)

    @classmethod
    def fit(
        cls,
        data: Mapping[str, Any],
        *,
        table_options: Mapping[str, Any] | None = None,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
    ) -> MultimodalCodec:
        n = check_aligned(data)
        data = _positional(data)
        codecs: dict[str, Any] = {}
        for kind, values in data.items():
            keep = present_mask(kind, values)
            if not keep.any():
                raise DataError(f"modality {kind!r}: every record lacks it ({n} rows)")
            rows = _rows(kind, values, keep)
            if kind == "table":
                codecs[kind] = TabularCodec.fit(rows, **dict(table_options or {}))
            elif kind == "audio":
                codecs[kind] = AudioCodec.fit(rows, sample_rate)
            else:
                codecs[kind] = _CODECS[kind].fit(rows)
        return cls(codecs)

    def width(self, kind: str) -> int:
        codec = self.codecs[kind]
        return codec.length if kind == "text" else codec.n_encoded

    def encode(
        self, data: Mapping[str, Any]
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """({modality: (N, width) encoded rows, zeros where absent}, {modality: (N,) present}).

        A modality the codec knows but `data` lacks is absent from every record."""
        n = check_aligned(data)
        data = _positional(data)
        unknown = sorted(set(data) - set(self.codecs))
        if unknown:
            raise DataError(
                f"unknown modality {unknown[0]!r}: the model knows {', '.join(self.codecs)}"
            )
        encoded, present = {}, {}
        for kind, codec in self.codecs.items():
            dtype = np.int64 if kind == "text" else np.float32
            encoded[kind] = np.zeros((n, self.width(kind)), dtype=dtype)
            present[kind] = np.zeros(n, dtype=bool)
            if kind not in data:
                continue
            keep = present_mask(kind, data[kind])
            if keep.any():
                encoded[kind][keep] = codec.encode(_rows(kind, data[kind], keep))
            present[kind] = keep
        return encoded, present

    def decode(self, kind: str, encoded: np.ndarray) -> Any:
        return self.codecs[self.check(kind)].decode(encoded)

    def check(self, kind: str) -> str:
        if kind not in self.codecs:
            raise DataError(f"unknown modality {kind!r}: the model knows {', '.join(self.codecs)}")
        return kind

    def to_json(self) -> dict[str, Any]:
        return {
            "input_kind": self.input_kind,
            "modalities": {kind: codec.to_json() for kind, codec in self.codecs.items()},
        }

    @classmethod
    def from_json(cls, state: dict[str, Any], source: str = "codec.json") -> MultimodalCodec:
        items = state.get("modalities")
        if not isinstance(items, dict) or not items:
            raise DataError(f"{source} is invalid: modalities must be a non-empty object")
        codecs = {}
        for kind, item in items.items():
            if kind not in _CODECS or not isinstance(item, dict):
                raise DataError(f"{source} is invalid: unknown modality {kind!r}")
            if item.get("input_kind") != _CODECS[kind].input_kind:
                raise DataError(f"{source} is invalid: modality {kind!r} has the wrong codec")
            codecs[kind] = _CODECS[kind].from_json(item, source)
        return cls(codecs)


def _positional(data: Mapping[str, Any]) -> dict[str, Any]:
    """Series (a DataFrame's text or path column) as lists, so records are taken by position."""
    return {k: list(v) if isinstance(v, pd.Series) else v for k, v in data.items()}


def check_aligned(data: Mapping[str, Any]) -> int:
    """The common number of records; unknown kinds or unequal lengths are one DataError."""
    if not isinstance(data, Mapping) or not data:
        raise DataError("multimodal data must be a non-empty dict {modality: values}")
    for kind in data:
        if kind not in MODALITY_KINDS:
            raise DataError(
                f"unknown modality {kind!r}; name each modality by its kind: "
                f"{', '.join(MODALITY_KINDS)}"
            )
    lengths = {kind: len(values) for kind, values in data.items()}
    if len(set(lengths.values())) != 1:
        shown = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise DataError(f"modalities must hold aligned rows, got lengths {shown}")
    return next(iter(lengths.values()))


def subsets(modalities: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset, smallest first, each in the given order."""
    out = []
    for mask in range(1, 2 ** len(modalities)):
        out.append(tuple(m for i, m in enumerate(modalities) if mask >> i & 1))
    return sorted(out, key=len)


def hide_at_random(present: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """(M, N) mask with each present modality hidden with probability `rate`, every record
    keeping at least one (a record left with none gets one of its own back, at random)."""
    rng = np.random.default_rng([seed, 1])
    kept = present & (rng.random(present.shape) >= rate)
    for n in np.flatnonzero(~kept.any(0) & present.any(0)):
        kept[rng.choice(np.flatnonzero(present[:, n])), n] = True
    return kept
