"""KL(q(z|x) ‖ N(0, I)) for diagonal Gaussians, with free bits and warm-up."""

from __future__ import annotations

import torch


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL per example and latent dimension: shape [batch, latent]."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Per-example KL where each dimension's batch-mean KL below `free_bits` nats is not penalised
    (Kingma et al. 2016), so a few dimensions are not pushed into posterior collapse."""
    if free_bits <= 0:
        return kl_per_dim.sum(-1)
    mean_per_dim = kl_per_dim.mean(0, keepdim=True)
    # Gradient flows only through dimensions above the floor; the value stays the true KL.
    clamp = torch.where(mean_per_dim > free_bits, kl_per_dim, kl_per_dim.detach())
    return clamp.sum(-1)


def warmup_factor(epoch_progress: float, warmup_epochs: float) -> float:
    """Linear KL annealing from 0 to 1 over the first `warmup_epochs` epochs (Bowman et al. 2016)."""
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, epoch_progress / warmup_epochs)
