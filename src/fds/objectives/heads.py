"""Heads that predict the sensitive attributes from a latent block, and the loss they learn by.

Categorical attributes use cross-entropy, continuous ones a squared error on their standardized
value. The heads are submodules of the model, so they are saved with its weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fds.nn.mlp import mlp
from fds.objectives.attributes import AttributeSpec

HEAD_HIDDEN = (128, 128)


class AttributeHeads(nn.Module):
    """One small MLP per sensitive attribute, reading a latent block."""

    def __init__(
        self, n_in: int, specs: Sequence[AttributeSpec], hidden: tuple[int, ...] = HEAD_HIDDEN
    ) -> None:
        super().__init__()
        self.specs = list(specs)
        self.heads = nn.ModuleList(mlp(n_in, hidden, spec.n_out) for spec in self.specs)

    def forward(self, z: torch.Tensor) -> list[torch.Tensor]:
        return [head(z) for head in self.heads]


def attribute_nll(
    outputs: list[torch.Tensor], s: torch.Tensor, specs: Sequence[AttributeSpec]
) -> torch.Tensor:
    """Per-example loss [batch] of predicting every attribute in `s` [batch, n_attributes]
    (class indices or standardized values): cross-entropy or half squared error, summed."""
    total = s.new_zeros(len(s))
    for j, (out, spec) in enumerate(zip(outputs, specs, strict=True)):
        if spec.kind == "categorical":
            total = total + F.cross_entropy(out, s[:, j].long(), reduction="none")
        else:
            total = total + 0.5 * (out[:, 0] - s[:, j]).pow(2)
    return total
