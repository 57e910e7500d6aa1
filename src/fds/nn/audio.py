"""Networks over log-magnitude spectrograms (`fds.data.multimodal.audio`): a 1-D convolution over
time with frequency bins as channels, and a fully connected decoder back to the spectrogram."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["SpectrogramDecoder", "SpectrogramEncoder"]

_CHANNELS = 32
_HIDDEN = 256


class SpectrogramEncoder(nn.Module):
    """(N, F·T) features → (N, F, T) → two stride-2 convolutions over time → linear head."""

    def __init__(self, bins: int, frames: int, n_out: int) -> None:
        super().__init__()
        self.bins, self.frames = bins, frames
        self.features = nn.Sequential(
            nn.Conv1d(bins, _CHANNELS, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv1d(_CHANNELS, _CHANNELS, kernel_size=3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            n_flat = self.features(torch.zeros(1, bins, frames)).shape[1]
        self.head = nn.Sequential(nn.Linear(n_flat, _HIDDEN), nn.ReLU(), nn.Linear(_HIDDEN, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x.view(-1, self.bins, self.frames)))


class SpectrogramDecoder(nn.Sequential):
    """z → two hidden layers → the (F·T) standardized log-magnitudes (a Gaussian's means)."""

    def __init__(self, latent_dim: int, n_features: int) -> None:
        super().__init__(
            nn.Linear(latent_dim, _HIDDEN),
            nn.ReLU(),
            nn.Linear(_HIDDEN, _HIDDEN),
            nn.ReLU(),
            nn.Linear(_HIDDEN, n_features),
        )
