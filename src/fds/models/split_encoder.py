"""Hiding by construction for tables: the public block is computed from the row without its
sensitive columns, so it cannot read them; only the private block (the key) sees them.

The censoring terms (MMD, adversary) then only have to remove the other columns' proxies of the
sensitive ones. The decoder still sees both blocks and reconstructs every column.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fds.data.codec import Block
from fds.nn.mlp import mlp


class SplitEncoder(nn.Module):
    """Posterior parameters [p_1 | … | p_k] (k per latent coordinate), each laid out as
    [public block | private block]: the public part from the kept slots, the private part from
    `private_slots` (all of x, or only the sensitive slots)."""

    def __init__(
        self,
        public_slots: Sequence[int],
        private_slots: Sequence[int],
        hidden: Sequence[int],
        public_dim: int,
        private_dim: int,
        n_params_per_dim: int,
    ) -> None:
        super().__init__()
        # not persistent: rebuilt from codec.json, so the weight file keeps only weights
        self.register_buffer("public_slots", torch.as_tensor(public_slots), persistent=False)
        self.register_buffer("private_slots", torch.as_tensor(private_slots), persistent=False)
        self.n_params_per_dim = n_params_per_dim
        self.public = mlp(len(public_slots), hidden, n_params_per_dim * public_dim)
        self.private = mlp(len(private_slots), hidden, n_params_per_dim * private_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        public = self.public(x.index_select(1, self.public_slots)).chunk(self.n_params_per_dim, -1)
        private = self.private(x.index_select(1, self.private_slots))
        private = private.chunk(self.n_params_per_dim, -1)
        return torch.cat([torch.cat(pair, -1) for pair in zip(public, private, strict=True)], -1)


def column_slots(
    blocks: Sequence[Block], widths: Sequence[tuple[str, int]], names: Sequence[str]
) -> list[int]:
    """The encoded positions of the columns `names`, given each encoded part's column and width
    in block order (`widths`: a column may own several parts, e.g. its missingness indicator)."""
    slots, start, wanted = [], 0, set(names)
    for name, width in widths:
        if name in wanted:
            slots.extend(range(start, start + width))
        start += width
    if start != blocks[-1].stop:
        raise ValueError(
            f"column widths add up to {start}, the codec's layout to {blocks[-1].stop}"
        )
    return sorted(slots)
