"""Encoder heads q(z|x): a deterministic code, a diagonal Gaussian (reparameterized), or noise injection."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class PosteriorSample:
    z: torch.Tensor
    mean: torch.Tensor
    logvar: torch.Tensor | None  # None for codes without a density


class DeterministicPosterior(nn.Module):
    n_params_per_dim = 1

    def forward(self, h: torch.Tensor, sample: bool) -> PosteriorSample:
        return PosteriorSample(z=h, mean=h, logvar=None)


class NoisyPosterior(nn.Module):
    """z = h + σε while sampling: a cheap regulariser that keeps codes robust to perturbation."""

    n_params_per_dim = 1

    def __init__(self, noise_std: float) -> None:
        super().__init__()
        self.noise_std = noise_std

    def forward(self, h: torch.Tensor, sample: bool) -> PosteriorSample:
        z = h + self.noise_std * torch.randn_like(h) if sample else h
        return PosteriorSample(z=z, mean=h, logvar=None)


class GaussianPosterior(nn.Module):
    """q(z|x) = N(μ, diag σ²) with the reparameterization trick, so gradients flow through samples."""

    n_params_per_dim = 2

    def forward(self, h: torch.Tensor, sample: bool) -> PosteriorSample:
        mean, logvar = h.chunk(2, dim=-1)
        logvar = logvar.clamp(-12.0, 8.0)  # keeps exp() finite without touching the useful range
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if sample else mean
        return PosteriorSample(z=z, mean=mean, logvar=logvar)


def make_posterior(kind: str, noise_std: float) -> nn.Module:
    if kind == "gaussian":
        return GaussianPosterior()
    if kind == "noisy":
        return NoisyPosterior(noise_std)
    return DeterministicPosterior()
