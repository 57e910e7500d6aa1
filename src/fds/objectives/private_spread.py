"""What the private block may hold besides the sensitive attributes (`private_only`, weight `mmd`).

Without `mmd_given`: nothing. The private block is pulled to its group means, so every other
factor the decoder needs goes through the public block, where it stays useful.

With `mmd_given` (a table): anything but the given columns' own place. The public block may
not carry what the other columns reveal of the attributes beyond the given ones (public ⫫ s |
given), and its encoder does not see the attributes, so that part (SLID: age and education beyond
the wages) can only go through the key. The key is free to hold it; the given columns (the
utility target) must still decode from the public block with another row's key of the same
groups, so the key cannot take them over. An earlier form asked private ⫫ given | s by a
conditional MMD, which forbade exactly the part of age and education that tells the wages
(SLID: 1.76 × the `vae`'s reconstruction error; docs/privacy-key.md)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fds.objectives.attributes import AttributeSpec, attribute_groups
from fds.objectives.base import LossTerm, TermInputs

# The swapped-key term's weight relative to `mmd`: at the preset's 30 its squared error counts
# once, like the reconstruction's; at 1/10 of `mmd` SLID's education decoded worse (seed 1:
# error 0.110 against 0.071; docs/privacy-key.md).
GIVEN_SWAP = 1 / 30


def attribute_groups_crossed(s: torch.Tensor, specs: Sequence[AttributeSpec]) -> torch.Tensor:
    """One group index per example, crossing the groups of every sensitive attribute."""
    key = torch.zeros(len(s), dtype=torch.long, device=s.device)
    for j, spec in enumerate(specs):
        groups = attribute_groups(s[:, j], spec)
        key = key * (int(groups.max()) + 1) + groups
    return key


def within_group_spread(
    private: torch.Tensor, s: torch.Tensor, specs: Sequence[AttributeSpec]
) -> torch.Tensor:
    """Share of the private block's variance left within the groups of the sensitive attributes
    (scalar in [0, 1], couples the batch; 1 − R² of the group means): zero when the private block
    is a function of the attributes alone."""
    _, key = attribute_groups_crossed(s, specs).unique(return_inverse=True)
    counts = torch.bincount(key).clamp_min(1).to(private.dtype)
    means = torch.zeros(len(counts), private.shape[1], dtype=private.dtype, device=private.device)
    means = means.index_add(0, key, private) / counts[:, None]
    within = (private - means[key]).pow(2).sum()
    total = (private - private.mean(0)).pow(2).sum().clamp_min(1e-8)
    return within / total


def swapped_within_groups(private: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Each row's private codes replaced by those of a random row of the same group (a random
    permutation within each group; the global generator, so a seeded fit repeats)."""
    shuffled = torch.randperm(len(groups), device=groups.device)
    source = shuffled[torch.argsort(groups[shuffled], stable=True)]
    target = torch.argsort(groups, stable=True)
    out = torch.empty_like(private)
    out[target] = private[source]
    return out


def given_without_key(inputs: TermInputs) -> torch.Tensor:
    """Squared error of the given columns decoded from the public block with another row's key of
    the same sensitive groups (scalar, couples the batch): zero when the decoder reads them from
    the public block alone, so the key cannot take the utility target from the public block,
    though it may hold anything else (what the public block gives up)."""
    cut = inputs.config.public_dim
    z = inputs.post.z
    groups = attribute_groups_crossed(inputs.s, inputs.attributes)
    other = torch.cat([z[:, :cut], swapped_within_groups(z[:, cut:], groups)], 1)
    decoded = inputs.likelihood.mean(inputs.decode(other))
    slots = [slot for column in inputs.layout.given_slots for slot in column]
    return (decoded[:, slots] - inputs.x[:, slots]).pow(2).sum(1).mean()


def _spread(inputs: TermInputs, weight: float) -> torch.Tensor:
    if inputs.layout.given_slots:
        return weight * GIVEN_SWAP * given_without_key(inputs)
    _, private = inputs.blocks()
    return weight * within_group_spread(private, inputs.s, inputs.attributes)


TERM = LossTerm(
    name="private_spread",
    weight="mmd",
    value=_spread,
    reads=("private_only",),
    needs=frozenset({"private_block", "labels"}),
    when=lambda config: bool(config.private_only),
    per_example=False,
    warmup="censor_warmup_epochs",
)
