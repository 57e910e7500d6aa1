"""The key's private head: the private block is trained to predict the sensitive attributes, so
it carries them (β = `censor`, no warm-up: the key is learned from the first step).

A key made of the attributes alone (`private_only`, tables) is read as the decoder reads it, a
posterior draw: a head on its means is satisfied by groups a hair apart, which the decoder cannot
tell apart through the posterior's noise, and then decodes every record with the majority's
attribute. A key that also carries what the attribute shapes (images: a sprite's rotation) is
kept sharp by the reconstruction itself, and there a head on draws destabilised training (one
seed of three decoded empty images), so the head reads its mean (measured: docs/privacy-key.md). So
does a key under `mmd_given`, which may hold more than the attributes."""

from __future__ import annotations

import torch

from fds.objectives.base import LossTerm, Network, TermInputs
from fds.objectives.heads import AttributeHeads, attribute_nll

PRIVATE_HEAD = Network(
    "private_head",
    lambda config, attributes, layout: AttributeHeads(config.private_dim, attributes),
)


def reads_draws(inputs: TermInputs) -> bool:
    """Whether the head reads the private block's draws: only for a key of the attributes alone
    (`private_only` without `mmd_given`). With `mmd_given` the key also holds what the public
    block gives up (fds.objectives.private_spread), so the reconstruction keeps it sharp, as on
    images; a head on draws there squeezed the rest out of it (SLID, seeds 0-2, all else
    equal: reconstruction 1.76 × the `vae`'s with the head on draws, 1.54 × on means;
    docs/privacy-key.md)."""
    return bool(inputs.config.private_only) and not inputs.layout.given_slots


def _private(inputs: TermInputs, weight: float) -> torch.Tensor:
    if reads_draws(inputs):
        private = inputs.post.z[:, inputs.config.public_dim :]
    else:
        _, private = inputs.blocks()
    outputs = inputs.networks[PRIVATE_HEAD.name](private)
    return weight * attribute_nll(outputs, inputs.s, inputs.attributes)


TERM = LossTerm(
    name="private",
    weight="censor",
    value=_private,
    reads=("private_only",),
    needs=frozenset({"private_block", "labels"}),
    network=PRIVATE_HEAD,
)
