"""Gaussian experts and how fusion models combine them: products (precision-weighted, with or
without the prior as an expert), mixtures (one present component per record), and the KL to the
standard normal prior. Every function takes a mask (M, N) of which experts each record has."""

from __future__ import annotations

import torch

__all__ = ["draw", "kl_to_standard", "mixture_mean", "pick_present", "product_of_experts"]


def product_of_experts(
    mu: torch.Tensor, logvar: torch.Tensor, mask: torch.Tensor, *, prior: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Gaussian product of the present experts (M, N, D) → (N, D) mean and log-variance.

    `prior`: the standard normal joins as one more expert (MVAE), so a record with no expert
    gets the prior itself; without it such a record also gets N(0, I) (it has no evidence)."""
    precision = torch.exp(-logvar) * mask[..., None]
    total = precision.sum(0) + (1.0 if prior else 0.0)
    empty = total == 0
    total = torch.where(empty, torch.ones_like(total), total)
    mean = (mu * precision).sum(0) / total
    return mean, -torch.log(total)


def mixture_mean(mu: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the uniform mixture of the present experts (zeros when none is present)."""
    weights = mask / mask.sum(0, keepdim=True).clamp_min(1)
    return (mu * weights[..., None]).sum(0)


def pick_present(mask: torch.Tensor) -> torch.Tensor:
    """(N,) index of one present expert per record, uniformly (records with none get 0)."""
    weights = mask.T + (mask.sum(0) == 0)[:, None].float()  # none present: any, masked later
    return torch.multinomial(weights, 1)[:, 0]


def draw(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = μ + σ·ε (the reparameterisation: gradients reach μ and σ)."""
    return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)


def kl_to_standard(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) per record: [batch]."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(-1)
