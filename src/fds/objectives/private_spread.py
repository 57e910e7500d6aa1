"""What the private block may hold besides the sensitive attributes (`private_only`, weight `mmd`).

Without `mmd_given`: nothing. The private block is pulled to its group means, so every other
factor the decoder needs goes through the public block, where it stays useful.

With `mmd_given` (a table): nothing of the given columns beyond what the attributes say (private
⫫ given | s), but anything else. The public block may not carry what the other columns reveal of
the attributes beyond the given ones (public ⫫ s | given), and its encoder does not see the
attributes, so it cannot hand that part over as a residual the decoder undoes with the key; a key
that is the attributes alone then loses it for good (SLID: age and education, given wages,
3 × the `vae`'s reconstruction error). The key may hold it; what the user named to keep (the
utility target) stays in the public block, since the key may not duplicate it."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fds.objectives.attributes import AttributeSpec, attribute_groups
from fds.objectives.base import LossTerm, TermInputs
from fds.objectives.mmd import conditional_group_mmd, given_strata


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


def given_dependence(
    private: torch.Tensor,
    s: torch.Tensor,
    specs: Sequence[AttributeSpec],
    strata: torch.Tensor,
) -> torch.Tensor:
    """Unbiased squared MMD between the private codes of each stratum of the given columns and
    those of the rest, within each sensitive group (scalar, couples the batch; the conditional
    MMD with the roles of s and the strata swapped): zero when, given the attributes, the private
    block says nothing of the given columns."""
    spec = AttributeSpec("given", "categorical", int(strata.max()) + 1)
    return conditional_group_mmd(
        private, strata[:, None], [spec], attribute_groups_crossed(s, specs)
    )


def _spread(inputs: TermInputs, weight: float) -> torch.Tensor:
    _, private = inputs.blocks()
    given = inputs.layout.given_slots
    if given:
        strata = given_strata(inputs.x, given)
        return weight * given_dependence(private, inputs.s, inputs.attributes, strata)
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
