"""The key's private head: the private block is trained to predict the sensitive attributes, so
it carries them (β = `censor`, no warm-up: the key is learned from the first step).

A key made of the attributes alone (`private_only`, tables) is read as the decoder reads it, a
posterior draw: a head on its means is satisfied by groups a hair apart, which the decoder cannot
tell apart through the posterior's noise, and then decodes every record with the majority's
attribute. A key that also carries what the attribute shapes (images: a sprite's rotation) is
kept sharp by the reconstruction itself, and there a head on draws destabilised training (one
seed of three decoded empty images), so the head reads its mean (measured: docs/privacy-key.md)."""

from __future__ import annotations

import torch

from fds.objectives.base import LossTerm, Network, TermInputs
from fds.objectives.heads import AttributeHeads, attribute_nll

PRIVATE_HEAD = Network(
    "private_head",
    lambda config, attributes, layout: AttributeHeads(config.private_dim, attributes),
)


def _private(inputs: TermInputs, weight: float) -> torch.Tensor:
    if inputs.config.private_only:
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
