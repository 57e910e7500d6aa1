"""KL(q(z|x) ‖ N(0, I)) for diagonal Gaussians, with free bits; its warm-up is `kl_warmup_epochs`."""

from __future__ import annotations

import torch

from fds.objectives.base import LossTerm, TermInputs


def gaussian_kl(mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Closed-form KL per example and latent dimension: shape [batch, latent]."""
    return 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar)


def free_bits_kl(kl_per_dim: torch.Tensor, free_bits: float) -> torch.Tensor:
    """Per-example KL where each dimension's batch-mean KL below `free_bits` nats is not penalised
    (Kingma et al. 2016), so a few dimensions are not pushed into posterior collapse.

    The value is the objective, Σ_d max(KL_d, free_bits): a dimension under the floor counts as
    the floor. Counting its true KL instead would make the loss rise while training lowers what
    it minimises (the free KL grows towards the floor), and the best validation epoch would be the
    collapsed first one. The true KL stays in the ELBO (`val_elbo`)."""
    if free_bits <= 0:
        return kl_per_dim.sum(-1)
    mean_per_dim = kl_per_dim.mean(0, keepdim=True)
    # Gradient flows only through dimensions above the floor.
    clamp = torch.where(
        mean_per_dim > free_bits, kl_per_dim, torch.full_like(kl_per_dim, free_bits)
    )
    return clamp.sum(-1)


def _kl(inputs: TermInputs, weight: float) -> torch.Tensor:
    post = inputs.post
    return weight * free_bits_kl(gaussian_kl(post.mean, post.logvar), inputs.config.free_bits)


TERM = LossTerm(
    name="kl",
    weight="kl",
    value=_kl,
    reads=("free_bits",),
    needs=frozenset({"gaussian"}),
    couples_when="free_bits",  # the floor is on each dimension's batch-mean KL
    warmup="kl_warmup_epochs",
)
