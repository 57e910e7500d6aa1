"""Sparsity penalties on codes: L1, and KL to a target mean activation ρ (Ng's sparse autoencoder)."""

from __future__ import annotations

import torch


def l1(z: torch.Tensor) -> torch.Tensor:
    """Mean absolute activation, summed over dimensions: per example, shape [batch]."""
    return z.abs().sum(-1)


def kl_to_target(z: torch.Tensor, target: float) -> torch.Tensor:
    """Σ_j KL(ρ ‖ ρ̂_j) where ρ̂_j is the batch mean of sigmoid(z_j): a batch-level scalar."""
    rho_hat = torch.sigmoid(z).mean(0).clamp(1e-6, 1 - 1e-6)
    rho = torch.as_tensor(target, dtype=z.dtype)
    return (rho * (rho / rho_hat).log() + (1 - rho) * ((1 - rho) / (1 - rho_hat)).log()).sum()
