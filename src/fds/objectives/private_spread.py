"""The private block's spread within the sensitive groups (`private_only`, weight `mmd`): pulling
the private block to its group means leaves it the sensitive attributes alone, so every other
factor the decoder needs goes through the public block, where it stays useful."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from fds.objectives.attributes import AttributeSpec, attribute_groups
from fds.objectives.base import LossTerm, TermInputs


def within_group_spread(
    private: torch.Tensor, s: torch.Tensor, specs: Sequence[AttributeSpec]
) -> torch.Tensor:
    """Share of the private block's variance left within the groups of the sensitive attributes
    (scalar in [0, 1], couples the batch; 1 − R² of the group means): zero when the private block
    is a function of the attributes alone."""
    key = torch.zeros(len(s), dtype=torch.long, device=s.device)
    for j, spec in enumerate(specs):
        groups = attribute_groups(s[:, j], spec)
        key = key * (int(groups.max()) + 1) + groups
    _, key = key.unique(return_inverse=True)
    counts = torch.bincount(key).clamp_min(1).to(private.dtype)
    means = torch.zeros(len(counts), private.shape[1], dtype=private.dtype, device=private.device)
    means = means.index_add(0, key, private) / counts[:, None]
    within = (private - means[key]).pow(2).sum()
    total = (private - private.mean(0)).pow(2).sum().clamp_min(1e-8)
    return within / total


def _spread(inputs: TermInputs, weight: float) -> torch.Tensor:
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
