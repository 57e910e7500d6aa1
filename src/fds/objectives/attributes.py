"""A sensitive attribute as the privacy terms see it, and its groups within a batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

# A continuous attribute is compared across this many equal-count groups of the batch (quartiles).
CONTINUOUS_GROUPS = 4


@dataclass(frozen=True)
class AttributeSpec:
    """One sensitive attribute as the heads see it: `n_out` logits (categorical) or 1 value."""

    name: str
    kind: str  # "categorical" | "continuous"
    n_classes: int = 0

    @property
    def n_out(self) -> int:
        return self.n_classes if self.kind == "categorical" else 1

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "n_classes": self.n_classes}


def attribute_groups(column: torch.Tensor, spec: AttributeSpec) -> torch.Tensor:
    """Group index per example: the class, or the batch quantile bin of a continuous value."""
    if spec.kind == "categorical":
        return column.long()
    edges = torch.quantile(column, torch.linspace(0, 1, CONTINUOUS_GROUPS + 1)[1:-1])
    return torch.bucketize(column.contiguous(), edges)
