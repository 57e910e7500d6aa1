"""Audio as standardized log-magnitude STFT frames (`torch.stft`), and back: features →
magnitudes → a waveform by Griffin-Lim (written with torch.stft/istft: torchaudio is not a
dependency).

Every clip is cut or zero-padded to the length seen at fit, so all records share one (F, T) grid;
the log-magnitude's mean and standard deviation (one scalar each) are fitted on the training clips.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fds.errors import DataError

__all__ = ["AudioCodec", "griffin_lim"]

_FLOOR = 1e-3  # magnitude floor inside the log: silence stays finite
_GRIFFIN_LIM_ITERATIONS = 32
_MOMENTUM = 0.99  # fast Griffin-Lim (Perraudin et al. 2013), as torchaudio's default


class AudioCodec:
    """Fit on training clips once; encode waveforms to (N, F·T) features, decode back to clips."""

    input_kind = "audio"

    def __init__(
        self, length: int, sample_rate: int, n_fft: int, hop: int, mean: float, std: float
    ) -> None:
        self.length, self.sample_rate, self.n_fft, self.hop = length, sample_rate, n_fft, hop
        self.mean, self.std = mean, std
        self.bins = n_fft // 2 + 1
        self.frames = length // hop + 1  # torch.stft with center=True
        self.n_encoded = self.bins * self.frames

    @classmethod
    def fit(
        cls, clips: Sequence[np.ndarray] | np.ndarray, sample_rate: int, n_fft: int = 256
    ) -> AudioCodec:
        """The longest clip sets the length; the log-magnitude's mean and std are fitted."""
        clips = [_check_clip(c, i) for i, c in enumerate(clips)]
        if not clips:
            raise DataError("audio: no clips to fit on")
        if not isinstance(sample_rate, int) or sample_rate < 1:
            raise DataError(f"audio: sample_rate={sample_rate!r} must be a positive integer")
        length = max(len(c) for c in clips)
        if length < n_fft:
            raise DataError(f"audio: clips of {length} samples are shorter than n_fft={n_fft}")
        probe = cls(length, sample_rate, n_fft, n_fft // 2, 0.0, 1.0)
        logs = probe.log_magnitude(probe.stack(clips))
        return cls(length, sample_rate, n_fft, n_fft // 2, float(logs.mean()), float(logs.std()))

    def stack(self, clips: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """(N, length) float32: each clip cut or zero-padded to the fitted length."""
        out = np.zeros((len(clips), self.length), dtype=np.float32)
        for row, clip in enumerate(clips):
            clip = _check_clip(clip, row)[: self.length]
            out[row, : len(clip)] = clip
        return out

    def log_magnitude(self, waves: np.ndarray) -> torch.Tensor:
        spectrum = torch.stft(
            torch.from_numpy(waves),
            self.n_fft,
            self.hop,
            window=torch.hann_window(self.n_fft),
            return_complex=True,
        )
        return torch.log(spectrum.abs() + _FLOOR)

    def encode(self, clips: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        logs = self.log_magnitude(self.stack(clips))
        return ((logs - self.mean) / self.std).flatten(1).numpy().astype(np.float32)

    def magnitudes(self, encoded: np.ndarray) -> np.ndarray:
        """(N, F, T) magnitude spectrograms of features, e.g. to draw them."""
        if encoded.ndim != 2 or encoded.shape[1] != self.n_encoded:
            raise DataError(
                f"expected audio features of width {self.n_encoded}, got {encoded.shape}"
            )
        logs = encoded.reshape(-1, self.bins, self.frames) * self.std + self.mean
        return np.maximum(np.exp(logs) - _FLOOR, 0.0).astype(np.float32)

    def decode(self, encoded: np.ndarray, seed: int = 0) -> np.ndarray:
        """(N, length) float32 waveforms in [-1, 1] by Griffin-Lim (phases seeded by `seed`)."""
        mags = torch.from_numpy(self.magnitudes(encoded))
        waves = griffin_lim(mags, self.n_fft, self.hop, self.length, seed=seed)
        return waves.clamp(-1, 1).numpy()

    def to_json(self) -> dict[str, Any]:
        return {
            "input_kind": self.input_kind,
            "length": self.length,
            "sample_rate": self.sample_rate,
            "n_fft": self.n_fft,
            "hop": self.hop,
            "mean": self.mean,
            "std": self.std,
        }

    @classmethod
    def from_json(cls, state: dict[str, Any], source: str = "codec.json") -> AudioCodec:
        ints = [state.get(k) for k in ("length", "sample_rate", "n_fft", "hop")]
        floats = [state.get(k) for k in ("mean", "std")]
        if not (
            all(type(v) is int and v >= 1 for v in ints)
            and all(isinstance(v, float | int) and np.isfinite(v) for v in floats)
            and floats[1] > 0
            and ints[3] == ints[2] // 2
        ):
            raise DataError(f"{source} is invalid: audio length, sample_rate, n_fft, hop or scale")
        return cls(*ints, float(floats[0]), float(floats[1]))


def griffin_lim(
    magnitudes: torch.Tensor,
    n_fft: int,
    hop: int,
    length: int,
    n_iter: int = _GRIFFIN_LIM_ITERATIONS,
    seed: int = 0,
) -> torch.Tensor:
    """Waveforms (N, length) whose STFT magnitudes approach `magnitudes` (N, F, T): alternate
    projections between consistent spectrograms and the given magnitudes, with momentum."""
    window = torch.hann_window(n_fft)
    generator = torch.Generator().manual_seed(seed)
    phase = torch.rand(magnitudes.shape, generator=generator) * 2 * torch.pi
    angles = torch.polar(torch.ones_like(magnitudes), phase)
    previous = torch.zeros_like(angles)
    for _ in range(n_iter):
        wave = torch.istft(magnitudes * angles, n_fft, hop, window=window, length=length)
        rebuilt = torch.stft(wave, n_fft, hop, window=window, return_complex=True)
        angles = rebuilt - previous * (_MOMENTUM / (1 + _MOMENTUM))
        angles = angles / angles.abs().clamp_min(1e-16)
        previous = rebuilt
    return torch.istft(magnitudes * angles, n_fft, hop, window=window, length=length)


def _check_clip(clip: Any, row: int) -> np.ndarray:
    clip = np.asarray(clip, dtype=np.float32)
    if clip.ndim != 1 or not len(clip):
        raise DataError(f"audio: clip {row} has shape {clip.shape}, expected a 1-D waveform")
    if not np.isfinite(clip).all():
        raise DataError(f"audio: clip {row} holds NaN or inf")
    return clip
