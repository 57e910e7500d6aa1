"""The key of a fusion model: a private block encoded from the sensitive values alone.

As the table key's private encoder with `private_input="sensitive"` (fds.models.SplitEncoder),
the key reads nothing but the sensitive attributes (class one-hots, standardized numbers), so it
can carry nothing else; the modality experts give only the public block and never read them
(a table modality's sensitive columns are left out of its encoder's input: `DropSlots`). The
decoders read [public | key], so reconstruction does not need the attributes in the public
block, and the MMD of the `fds` preset (fds.objectives.mmd) pushes the public codes of every
sensitive group to be distributed alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fds.nn.mlp import mlp
from fds.objectives.attributes import AttributeSpec
from fds.objectives.mmd import conditional_group_mmd

__all__ = ["DropSlots", "FusionKey", "public_mmd"]


class FusionKey(nn.Module):
    """q(key | s): Gaussian means and log-variances of `private_dim` coordinates from s."""

    def __init__(
        self, specs: Sequence[AttributeSpec], private_dim: int, hidden: Sequence[int]
    ) -> None:
        super().__init__()
        self.specs = list(specs)
        self.private_dim = private_dim
        self.net = mlp(sum(spec.n_out for spec in self.specs), hidden, 2 * private_dim)

    def inputs(self, s: torch.Tensor) -> torch.Tensor:
        """The network's input: a one-hot per class attribute, the standardized value else."""
        parts = []
        for j, spec in enumerate(self.specs):
            if spec.kind == "categorical":
                parts.append(nn.functional.one_hot(s[:, j].long(), spec.n_classes).float())
            else:
                parts.append(s[:, j : j + 1].float())
        return torch.cat(parts, 1)

    def forward(self, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(self.inputs(s)).chunk(2, -1)
        return mu, logvar.clamp(-12, 8)


class DropSlots(nn.Module):
    """An encoder that never sees some input slots (a table's sensitive columns): the kept
    slots go to `inner`. The slot list is rebuilt from codec.json, so it is not saved."""

    def __init__(self, kept: Sequence[int], inner: nn.Module) -> None:
        super().__init__()
        self.register_buffer(
            "kept", torch.as_tensor(list(kept), dtype=torch.long), persistent=False
        )
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.index_select(1, self.kept))


def public_mmd(
    public: torch.Tensor, s: torch.Tensor, specs: Sequence[AttributeSpec]
) -> torch.Tensor:
    """The `mmd` term's unbiased estimate on public codes (`mmd_estimate="unbiased"`: one
    stratum holding the batch); 0 for fewer than 4 codes. Always unbiased here: at the weight
    a fusion model needs, the biased estimate collapsed shapes-mm's image, sound and table
    experts to one code each (docs/multimodal.md, "The key on the fused code")."""
    if len(public) < 4:
        return public.new_zeros(())
    return conditional_group_mmd(public, s, specs, s.new_zeros(len(public)).long())
