"""The public block's adversary trained through gradient reversal (DANN, Ganin & Lempitsky 2015):
a head predicts the sensitive attributes from the public block, and the reversed gradient teaches
the encoder to make it fail. It has no optimizer of its own, so DP-SGD can train it."""

from __future__ import annotations

import torch

from fds.objectives.base import LossTerm, Network, TermInputs
from fds.objectives.gradient_reversal import reverse_gradient
from fds.objectives.heads import AttributeHeads, attribute_nll

# Shared with the alternating censor: one adversary network, trained one way or the other.
ADVERSARY = Network(
    "adversary", lambda config, attributes, layout: AttributeHeads(config.public_dim, attributes)
)


def _adversary(inputs: TermInputs, weight: float) -> torch.Tensor:
    """The adversary's loss; its weight scales the gradient the encoder gets, reversed."""
    public, _ = inputs.blocks()  # what transform shares
    outputs = inputs.networks[ADVERSARY.name](reverse_gradient(public, weight))
    return attribute_nll(outputs, inputs.s, inputs.attributes)


TERM = LossTerm(
    name="adversary",
    weight="censor",
    value=_adversary,
    reads=("adversary",),
    needs=frozenset({"private_block", "labels"}),
    when=lambda config: config.adversary == "gradient_reversal",
    warmup="censor_warmup_epochs",
    network=ADVERSARY,
)
