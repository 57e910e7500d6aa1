"""Group MMD on the public block (the variational fair autoencoder's penalty, Louizos et al.
2016): the public codes of each sensitive group are pushed to be distributed like the rest."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fds.objectives.attributes import AttributeSpec, attribute_groups
from fds.objectives.base import LossTerm, TermInputs

# Bandwidths of the MMD kernel, as multiples of the batch's median squared distance: a mixture of
# widths sees differences at several scales (Louizos et al. 2016 use several fixed widths; relative
# ones keep the penalty independent of the latent scale).
MMD_BANDWIDTHS = (0.1, 0.3, 1.0, 3.0, 10.0)


def group_mmd(
    public: torch.Tensor, s: torch.Tensor, specs: Sequence[AttributeSpec]
) -> torch.Tensor:
    """Squared MMD between the public codes of each sensitive group and those of the rest of the
    batch, averaged over groups and attributes (scalar, couples the batch): zero when the public
    block's distribution is the same whatever the attribute's value, which is what "no attacker
    beats the base rate" asks. Gaussian kernels at several widths relative to the median
    distance."""
    sq = public.pow(2).sum(1)
    # no sqrt: a finite gradient at 0
    d2 = (sq[:, None] + sq[None, :] - 2 * public @ public.T).clamp_min(0)
    scale = d2.detach().median().clamp_min(1e-6)
    k = sum(torch.exp(-d2 / (scale * w)) for w in MMD_BANDWIDTHS) / len(MMD_BANDWIDTHS)
    penalties = []
    for j, spec in enumerate(specs):
        groups = attribute_groups(s[:, j], spec)
        for g in groups.unique():
            inside = (groups == g).float()
            n_in = inside.sum()
            if n_in < 2 or n_in > len(inside) - 2:
                continue
            a, b = inside / n_in, (1 - inside) / (len(inside) - n_in)
            diff = a - b  # MMD² = (a−b)ᵀ K (a−b) for the two empirical distributions
            penalties.append(diff @ k @ diff)
    if not penalties:
        return public.new_zeros(())
    return torch.stack(penalties).mean()


def _mmd(inputs: TermInputs, weight: float) -> torch.Tensor:
    public, _ = inputs.blocks()  # what transform shares
    return weight * group_mmd(public, inputs.s, inputs.attributes)


TERM = LossTerm(
    name="mmd",
    weight="mmd",
    value=_mmd,
    needs=frozenset({"private_block", "labels"}),
    per_example=False,
    warmup="censor_warmup_epochs",
)
