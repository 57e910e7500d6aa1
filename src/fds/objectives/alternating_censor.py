"""The alternating censor: the public block's adversary has its own optimizer and learns to predict
the sensitive attributes, while the encoder pulls its predictions to the base rates.

Unlike maximising the adversary's cross-entropy, the confusion loss has its minimum at "no
information", not at "confidently wrong". The adversary trains outside DP-SGD's clipping and noise,
so DP-SGD refuses this term.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from fds.objectives.adversary import ADVERSARY
from fds.objectives.attributes import AttributeSpec
from fds.objectives.base import LossTerm, OptimizerGroup, TermInputs
from fds.objectives.heads import attribute_nll

# The adversary learns this many times faster than the autoencoder, so it stays close to the best
# attacker of the current code (a lagging adversary is easy to fool, a real one not).
ADVERSARY_LR_SCALE = 5.0


def confusion_loss(
    outputs: list[torch.Tensor], s: torch.Tensor, specs: Sequence[AttributeSpec]
) -> torch.Tensor:
    """Per-example loss [batch] the encoder minimises: the adversary's predictions pulled to the
    batch's class frequencies (nothing learned beyond the base rate) and, for continuous
    attributes, to the batch mean."""
    total = s.new_zeros(len(s))
    for j, (out, spec) in enumerate(zip(outputs, specs, strict=True)):
        if spec.kind == "categorical":
            prior = F.one_hot(s[:, j].long(), spec.n_classes).float().mean(0)
            total = total - (prior * F.log_softmax(out, dim=1)).sum(1)
        else:
            total = total + 0.5 * (out[:, 0] - s[:, j].mean()).pow(2)
    return total


def _censor(inputs: TermInputs, weight: float) -> torch.Tensor:
    public, _ = inputs.blocks()  # what transform shares
    outputs = inputs.networks[ADVERSARY.name](public)
    return weight * confusion_loss(outputs, inputs.s, inputs.attributes)


def _adversary_loss(inputs: TermInputs) -> torch.Tensor:
    """The adversary's own loss: predicting the attributes from the public block it is shown
    (detached, so this loss moves the adversary only)."""
    public, _ = inputs.blocks()
    outputs = inputs.networks[ADVERSARY.name](public.detach())
    return attribute_nll(outputs, inputs.s, inputs.attributes).mean()


TERM = LossTerm(
    name="censor",
    weight="censor",
    value=_censor,
    reads=("adversary",),
    needs=frozenset({"private_block", "labels"}),
    when=lambda config: config.adversary == "alternating",
    warmup="censor_warmup_epochs",
    network=ADVERSARY,
    optimizer=OptimizerGroup(
        "adversary",
        loss=_adversary_loss,
        dp_refusal="adversary='alternating' trains the adversary outside DP-SGD; "
        "use adversary='gradient_reversal' with privacy",
        lr_scale=ADVERSARY_LR_SCALE,
        betas=(0.5, 0.9),
    ),
)
