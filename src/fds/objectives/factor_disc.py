"""FactorVAE's total-correlation estimate (Kim & Mnih 2018): a discriminator tells samples of q(z)
from samples of Π_j q(z_j) (made by permuting each dimension across the batch); its logit gap
estimates TC by the density-ratio trick."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fds.nn.mlp import mlp


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Shuffle each latent dimension independently across the batch: a sample of Π_j q(z_j)."""
    index = torch.argsort(torch.rand_like(z), dim=0)
    return z.gather(0, index)


class Discriminator(nn.Module):
    def __init__(self, latent_dim: int, hidden: int = 256, layers: int = 3) -> None:
        super().__init__()
        self.net = mlp(latent_dim, [hidden] * layers, 2)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def tc_estimate(discriminator: Discriminator, z: torch.Tensor) -> torch.Tensor:
    """log D(z)/(1 − D(z)) averaged: the TC term the autoencoder minimises (scalar)."""
    logits = discriminator(z)
    return (logits[:, 0] - logits[:, 1]).mean()


def discriminator_loss(discriminator: Discriminator, z: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the discriminator on real (class 0) vs. permuted (class 1) codes.

    `z` is detached so this loss only trains the discriminator."""
    z = z.detach()
    real, fake = discriminator(z), discriminator(permute_dims(z))
    zeros = torch.zeros(len(z), dtype=torch.long, device=z.device)
    return 0.5 * (F.cross_entropy(real, zeros) + F.cross_entropy(fake, zeros + 1))
