"""Update compression on the uplink: a site sends its update Δ = local − global as float16 values
or as the top-k entries of each weight tensor, with error feedback (Seide et al. 2014; Stich et
al. 2018): what a site could not send this round is kept at the site and added to its next update,
so no part of an update is lost, only delayed.

The server expands each reply back into full weights (global + Δ̂) before the malformed-update
guard and the strategy see it, so every strategy, the guard and server-side DP work unchanged.
Spec strings: `none`, `float16`, `topk:FRACTION` (0 < FRACTION ≤ 1, the share of each tensor's
entries sent).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fds.errors import ConfigError

if TYPE_CHECKING:  # flwr is imported where records are built: settings.py reads specs without it
    from flwr.app import ArrayRecord

_INDEX, _VALUE = "::topk-index", "::topk-value"


@dataclass(frozen=True)
class Compression:
    kind: str  # "none" | "float16" | "topk"
    fraction: float = 1.0

    @property
    def lossy(self) -> bool:
        return self.kind != "none"

    def __str__(self) -> str:
        return f"topk:{self.fraction:g}" if self.kind == "topk" else self.kind


def parse_compression(spec: str) -> Compression:
    """`none` | `float16` | `topk:FRACTION` → Compression; anything else → ConfigError."""
    text = str(spec).strip().lower()
    if text in ("none", "float16"):
        return Compression(text)
    name, _, value = text.partition(":")
    if name == "topk":
        try:
            fraction = float(value)
        except ValueError:
            fraction = math.nan
        if 0 < fraction <= 1:
            return Compression("topk", fraction)
    raise ConfigError(
        f"invalid compression {spec!r}: use none, float16 or topk:FRACTION with 0 < FRACTION ≤ 1"
    )


def kept(size: int, fraction: float) -> int:
    """Entries of a tensor of `size` that top-k sends: ⌈fraction·size⌉, at least one."""
    return max(1, math.ceil(fraction * size))


def compress(
    delta: dict[str, np.ndarray], how: Compression, residual: dict[str, np.ndarray] | None
) -> tuple[ArrayRecord, dict[str, np.ndarray]]:
    """(what the site sends, the residual it keeps): the residual is (Δ + old residual) minus what
    the server will reconstruct from the message."""
    from flwr.app import Array, ArrayRecord

    sent: dict[str, Array] = {}
    new_residual: dict[str, np.ndarray] = {}
    for key, value in delta.items():
        target = value.astype(np.float32)
        if residual is not None and key in residual:
            target = target + residual[key]
        if how.kind == "topk":
            flat = target.ravel()
            index = np.argpartition(np.abs(flat), -kept(flat.size, how.fraction))
            index = np.sort(index[-kept(flat.size, how.fraction) :]).astype(np.int32)
            sent[key + _INDEX] = Array(index)
            sent[key + _VALUE] = Array(flat[index])
            rest = flat.copy()
            rest[index] = 0.0
            new_residual[key] = rest.reshape(target.shape)
        elif how.kind == "float16":
            half = target.astype(np.float16)
            sent[key] = Array(half)
            new_residual[key] = target - half.astype(np.float32)
        else:
            raise ValueError(f"compress() needs a lossy compression, not {how}")
    return ArrayRecord(sent), new_residual


def expand(record: ArrayRecord, global_arrays: ArrayRecord, how: Compression) -> ArrayRecord:
    """Full weights global + Δ̂ from a compressed reply; ValueError when it does not fit the model
    (the guard then rejects the reply as it came)."""
    from flwr.app import Array, ArrayRecord

    current = {k: a.numpy() for k, a in global_arrays.items()}
    if how.kind == "topk":
        expected = {k + s for k in current for s in (_INDEX, _VALUE)}
    else:
        expected = set(current)
    if set(record.keys()) != expected:
        raise ValueError("the compressed update does not name the model's weights")
    out: dict[str, Array] = {}
    for key, weights in current.items():
        if how.kind == "topk":
            index = record[key + _INDEX].numpy()
            values = record[key + _VALUE].numpy()
            if index.shape != values.shape or index.ndim != 1 or not index.size:
                raise ValueError(f"{key}: index and value arrays do not match")
            if not np.issubdtype(index.dtype, np.integer):
                raise ValueError(f"{key}: indices are not integers")
            if index.min() < 0 or index.max() >= weights.size:
                raise ValueError(f"{key}: an index lies outside the tensor")
            delta = np.zeros(weights.size, dtype=np.float32)
            delta[index] = values
            delta = delta.reshape(weights.shape)
        else:
            delta = record[key].numpy().astype(np.float32)
            if delta.shape != weights.shape:
                raise ValueError(f"{key} has shape {delta.shape}, expected {weights.shape}")
        out[key] = Array((weights + delta).astype(weights.dtype))
    return ArrayRecord(out)
