"""Independence between the coordinates of the whole code (α = `independence` without a private
block): also for deterministic codes, where no posterior density exists to compute TC."""

from __future__ import annotations

import torch

from fds.objectives.base import LossTerm, TermInputs


def decorrelation(z: torch.Tensor) -> torch.Tensor:
    """Sum of squared off-diagonal correlations in the batch: zero when codes are uncorrelated."""
    centered = z - z.mean(0)
    std = centered.pow(2).mean(0).add(1e-8).sqrt()
    corr = (centered / std).T @ (centered / std) / len(z)
    off = corr - torch.diag(torch.diagonal(corr))
    return off.pow(2).sum() / 2


def _centered_gram(x: torch.Tensor) -> torch.Tensor:
    """Gaussian-kernel Gram matrices, one per dimension, bandwidth by the median heuristic; centred."""
    d2 = (x.T.unsqueeze(2) - x.T.unsqueeze(1)).pow(2)  # [latent, batch, batch]
    bandwidth = d2.flatten(1).median(dim=1).values.clamp_min(1e-6).view(-1, 1, 1)
    k = torch.exp(-d2 / bandwidth)
    return k - k.mean(1, keepdim=True) - k.mean(2, keepdim=True) + k.mean((1, 2), keepdim=True)


def hsic(z: torch.Tensor) -> torch.Tensor:
    """Sum over pairs of dimensions of the biased HSIC estimate (Gretton et al. 2005): zero iff the
    pairs are independent in the kernel's eyes, so it catches non-linear dependence too."""
    n = len(z)
    if n < 4 or z.shape[1] < 2:
        return z.new_zeros(())
    grams = _centered_gram(z)
    flat = grams.flatten(1)
    pair = flat @ flat.T / (n - 1) ** 2  # trace(K_i H K_j H) for centred K
    return (pair.sum() - pair.diagonal().sum()) / 2


def _independence(inputs: TermInputs, weight: float) -> torch.Tensor:
    penalty = hsic if inputs.config.independence_kind == "hsic" else decorrelation
    return weight * penalty(inputs.post.z)


TERM = LossTerm(
    name="independence",
    weight="independence",
    value=_independence,
    reads=("independence_kind",),
    when=lambda config: not config.private_dim,  # with one, see block_independence
    per_example=False,
)
