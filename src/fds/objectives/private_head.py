"""The key's private head: the private block is trained to predict the sensitive attributes, so
it carries them (β = `censor`, no warm-up: the key is learned from the first step).

The head reads the key as the decoder does, a posterior draw, not its mean: a head on means is
satisfied by groups a hair apart, which the decoder cannot tell apart through the posterior's
noise, and then decodes every record with the majority's attribute (measured: docs/privacy-key.md)."""

from __future__ import annotations

import torch

from fds.objectives.base import LossTerm, Network, TermInputs
from fds.objectives.heads import AttributeHeads, attribute_nll

PRIVATE_HEAD = Network(
    "private_head", lambda config, attributes: AttributeHeads(config.private_dim, attributes)
)


def _private(inputs: TermInputs, weight: float) -> torch.Tensor:
    private = inputs.post.z[:, inputs.config.public_dim :]
    outputs = inputs.networks[PRIVATE_HEAD.name](private)
    return weight * attribute_nll(outputs, inputs.s, inputs.attributes)


TERM = LossTerm(
    name="private",
    weight="censor",
    value=_private,
    needs=frozenset({"private_block", "labels"}),
    network=PRIVATE_HEAD,
)
