"""Fully connected networks: the default encoder/decoder for tables and small images."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn


def mlp(n_in: int, hidden: Sequence[int], n_out: int) -> nn.Sequential:
    """Linear → ReLU stacks ending in a linear layer (no activation: heads apply their own)."""
    layers: list[nn.Module] = []
    width = n_in
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)
