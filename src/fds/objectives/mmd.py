"""Group MMD on the public block (the variational fair autoencoder's penalty, Louizos et al.
2016): the public codes of each sensitive group are pushed to be distributed like the rest.

With `mmd_given` (tables), the groups are compared within strata of the given columns only
(public ⫫ s | given): what those columns reveal of the sensitive attributes may stay in the
public block (a utility target's *necessary* leakage), everything else is pushed out.

The plain MMD is the biased estimate (the kernel's diagonal kept) unless `mmd_estimate` is
"unbiased": the biased one's (1/n_a + 1/n_b)(1 − mean kernel) part is least for a collapsed
block, and on shapes `mmd` 100 collapsed the public block to one code; the unbiased one (one
stratum of `conditional_group_mmd`) did not (docs/privacy-key.md). The preset keeps the biased
estimate, so its numbers do not change."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fds.objectives.attributes import CONTINUOUS_GROUPS, AttributeSpec, attribute_groups
from fds.objectives.base import LossTerm, TermInputs

# Bandwidths of the MMD kernel, as multiples of the batch's median squared distance: a mixture of
# widths sees differences at several scales (Louizos et al. 2016 use several fixed widths; relative
# ones keep the penalty independent of the latent scale).
MMD_BANDWIDTHS = (0.1, 0.3, 1.0, 3.0, 10.0)


def _kernel(public: torch.Tensor) -> torch.Tensor:
    """Mean of Gaussian kernels at several widths relative to the median squared distance."""
    sq = public.pow(2).sum(1)
    # no sqrt: a finite gradient at 0
    d2 = (sq[:, None] + sq[None, :] - 2 * public @ public.T).clamp_min(0)
    scale = d2.detach().median().clamp_min(1e-6)
    return sum(torch.exp(-d2 / (scale * w)) for w in MMD_BANDWIDTHS) / len(MMD_BANDWIDTHS)


def group_mmd(
    public: torch.Tensor, s: torch.Tensor, specs: Sequence[AttributeSpec]
) -> torch.Tensor:
    """Squared MMD between the public codes of each sensitive group and those of the rest of the
    batch, averaged over groups and attributes (scalar, couples the batch): zero when the public
    block's distribution is the same whatever the attribute's value, which is what "no attacker
    beats the base rate" asks. Gaussian kernels at several widths relative to the median
    distance."""
    k = _kernel(public)
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


def conditional_group_mmd(
    public: torch.Tensor,
    s: torch.Tensor,
    specs: Sequence[AttributeSpec],
    strata: torch.Tensor,
) -> torch.Tensor:
    """`group_mmd` within each stratum of the batch (`strata`: one integer per example), averaged
    with the strata's sizes as weights: zero when, given the stratum, the public block is
    distributed the same whatever the attribute, so it reveals the attribute only as far as the
    stratum does.

    Unbiased (the kernel's diagonal left out): a stratum holds few examples per group, and the
    biased estimate's (1/n_a + 1/n_b)·(1 − k̄) term would be lowest for a collapsed block (a first
    try with it collapsed census' public block to a constant)."""
    k = _kernel(public)
    off = k - torch.diag(torch.diagonal(k))
    penalties, weights = [], []
    for j, spec in enumerate(specs):
        groups = attribute_groups(s[:, j], spec)
        for stratum in strata.unique():
            rows = strata == stratum
            k_in, off_in, g_in = k[rows][:, rows], off[rows][:, rows], groups[rows]
            for g in g_in.unique():
                a = (g_in == g).float()
                b = 1 - a
                n_a, n_b = a.sum(), b.sum()
                if n_a < 2 or n_b < 2:
                    continue
                within = a @ off_in @ a / (n_a * (n_a - 1)) + b @ off_in @ b / (n_b * (n_b - 1))
                penalties.append(within - 2 * a @ k_in @ b / (n_a * n_b))
                weights.append(rows.sum())
    if not penalties:
        return public.new_zeros(())
    w = torch.stack(weights).to(public.dtype)
    return (torch.stack(penalties) * w).sum() / w.sum()


def given_strata(x: torch.Tensor, given: Sequence[Sequence[int]]) -> torch.Tensor:
    """One stratum per example from the given columns' encoded slots (one slot list per column):
    a one-hot column's class, or a one-slot column's batch quartile; several columns cross their
    strata."""
    strata = torch.zeros(len(x), dtype=torch.long, device=x.device)
    for slots in given:
        if len(slots) > 1:
            column, n = x[:, list(slots)].argmax(1), len(slots)
        else:
            spec = AttributeSpec("given", "continuous")
            column, n = attribute_groups(x[:, slots[0]], spec), CONTINUOUS_GROUPS
        strata = strata * n + column
    return strata


def _mmd(inputs: TermInputs, weight: float) -> torch.Tensor:
    public, _ = inputs.blocks()  # what transform shares
    given = inputs.layout.given_slots
    if not given and inputs.config.mmd_estimate == "biased":
        return weight * group_mmd(public, inputs.s, inputs.attributes)
    # unbiased without given columns: one stratum holding the whole batch
    strata = given_strata(inputs.x, given) if given else inputs.s.new_zeros(len(public)).long()
    return weight * conditional_group_mmd(public, inputs.s, inputs.attributes, strata)


TERM = LossTerm(
    name="mmd",
    weight="mmd",
    value=_mmd,
    reads=("mmd_given", "mmd_estimate"),
    needs=frozenset({"private_block", "labels"}),
    per_example=False,
    warmup="censor_warmup_epochs",
)
