"""Sparsity penalties on codes: L1, and KL to a target mean activation ρ (Ng's sparse autoencoder)."""

from __future__ import annotations

import torch

from fds.objectives.base import LossTerm, TermInputs


def l1(z: torch.Tensor) -> torch.Tensor:
    """Mean absolute activation, summed over dimensions: per example, shape [batch]."""
    return z.abs().sum(-1)


def kl_to_target(z: torch.Tensor, target: float) -> torch.Tensor:
    """Σ_j KL(ρ ‖ ρ̂_j) where ρ̂_j is the batch mean of sigmoid(z_j): a batch-level scalar."""
    rho_hat = torch.sigmoid(z).mean(0).clamp(1e-6, 1 - 1e-6)
    rho = torch.as_tensor(target, dtype=z.dtype)
    return (rho * (rho / rho_hat).log() + (1 - rho) * ((1 - rho) / (1 - rho_hat)).log()).sum()


def _l1(inputs: TermInputs, weight: float) -> torch.Tensor:
    return weight * l1(inputs.post.z)


def _kl_to_target(inputs: TermInputs, weight: float) -> torch.Tensor:
    return weight * kl_to_target(inputs.post.z, inputs.config.sparsity_target)


L1 = LossTerm(name="sparsity_l1", weight="sparsity_l1", value=_l1)
KL_TO_TARGET = LossTerm(
    name="sparsity_kl",
    weight="sparsity_kl",
    value=_kl_to_target,
    reads=("sparsity_target",),
    per_example=False,
)
