"""Independence between the public and the private block (α = `independence` in a split latent).

Since the private block is trained to carry the sensitive attributes, a public block independent
of it has the same distribution for every value of them (as the MMD penalty of the variational
fair autoencoder asks, Louizos et al. 2016).
"""

from __future__ import annotations

import torch

from fds.objectives.base import LossTerm, TermInputs


def cross_covariance(public: torch.Tensor, private: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius norm of the correlation matrix between the two blocks (scalar, couples
    the batch): zero when no public coordinate is linearly related to a private one."""
    a = public - public.mean(0)
    b = private - private.mean(0)
    a = a / a.pow(2).mean(0).add(1e-8).sqrt()
    b = b / b.pow(2).mean(0).add(1e-8).sqrt()
    return (a.T @ b / len(a)).pow(2).sum()


def block_hsic(public: torch.Tensor, private: torch.Tensor) -> torch.Tensor:
    """Normalised HSIC (Gretton et al. 2005; CKA, Kornblith et al. 2019) between the two blocks,
    with a Gaussian kernel on each block (median bandwidth): in [0, 1], zero when the kernel sees
    no dependence, so it catches non-linear dependence and its weight does not depend on scale."""
    if len(public) < 4:
        return public.new_zeros(())

    def centred_gram(x: torch.Tensor) -> torch.Tensor:
        d2 = torch.cdist(x, x).pow(2)
        k = torch.exp(-d2 / d2.detach().median().clamp_min(1e-6))
        return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()

    k, m = centred_gram(public), centred_gram(private)
    # clamp before the square root: a collapsed block (every row alike) has a zero Gram matrix,
    # and sqrt's gradient at 0 would turn the whole step into NaN
    return (k * m).sum() / ((k * k).sum() * (m * m).sum()).clamp_min(1e-24).sqrt()


def _independence(inputs: TermInputs, weight: float) -> torch.Tensor:
    public, private = inputs.blocks()  # what transform releases
    between = block_hsic if inputs.config.independence_kind == "hsic" else cross_covariance
    return weight * between(public, private)


TERM = LossTerm(
    name="independence",
    weight="independence",
    value=_independence,
    reads=("independence_kind",),
    needs=frozenset({"private_block"}),
    per_example=False,
    warmup="censor_warmup_epochs",
)
