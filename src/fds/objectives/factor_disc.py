"""FactorVAE's total-correlation estimate (Kim & Mnih 2018): a discriminator tells samples of q(z)
from samples of Π_j q(z_j) (made by permuting each dimension across the batch); its logit gap
estimates TC by the density-ratio trick."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fds.nn.mlp import mlp
from fds.objectives.base import LossTerm, Network, OptimizerGroup, TermInputs


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


DISCRIMINATOR = Network(
    "discriminator", lambda config, attributes, layout: Discriminator(config.latent_dim)
)


def _factor_tc(inputs: TermInputs, weight: float) -> torch.Tensor:
    return weight * tc_estimate(inputs.networks[DISCRIMINATOR.name], inputs.post.z)


def _discriminator_loss(inputs: TermInputs) -> torch.Tensor:
    return discriminator_loss(inputs.networks[DISCRIMINATOR.name], inputs.post.z)


TERM = LossTerm(
    name="factor_tc",
    weight="factor",
    value=_factor_tc,
    when=lambda config: bool(config.factor),  # no discriminator without the term
    per_example=False,
    network=DISCRIMINATOR,
    optimizer=OptimizerGroup(
        "discriminator",
        loss=_discriminator_loss,
        dp_refusal="factor trains its discriminator outside DP-SGD; set factor=0 for DP-SGD",
        betas=(0.5, 0.9),
    ),
)
