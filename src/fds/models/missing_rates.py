"""Sampled missing rates that match the training data's.

Rows drawn from the code prior miss a column as often as the decoder's missingness indicator says
on average over the prior, which is not exactly the training rate: the prior and the codes of the
training rows never coincide (the VAE's "prior hole"). One shift per indicator logit, fitted once
after training, moves that average onto the training rate; the shift is the same for every row, so
which rows miss (their link with the other columns, carried by z) is left to the model.
"""

from __future__ import annotations

import torch

from fds.nn.likelihoods import Bernoulli, Likelihood, Mixed

MISSING_SHIFT = "fitted.missing_shift"  # its name in weights.safetensors
_BISECTIONS = 60


def logit_positions(likelihood: Likelihood, encoded: list[int]) -> list[int]:
    """Where the logits of the binary-block columns at `encoded` positions sit in the decoder's
    parameter vector."""
    if isinstance(likelihood, Bernoulli):
        return list(encoded)
    assert isinstance(likelihood, Mixed)
    for i, block in enumerate(likelihood.blocks):
        if block.kind == "binary":
            return [likelihood.offsets[i] + p - block.start for p in encoded]
    raise ValueError("the layout has no binary block")


def fit_shift(logits: torch.Tensor, rates: torch.Tensor) -> torch.Tensor:
    """The shift b per column with mean(sigmoid(logits + b)) = rate (bisection: it is monotone
    in b); logits: [rows drawn from the prior, columns]."""
    low = torch.full_like(rates, -30.0, dtype=torch.float64)
    high = torch.full_like(rates, 30.0, dtype=torch.float64)
    logits = logits.double()
    for _ in range(_BISECTIONS):
        mid = (low + high) / 2
        above = torch.sigmoid(logits + mid).mean(0) > rates
        high, low = torch.where(above, mid, high), torch.where(above, low, mid)
    return ((low + high) / 2).float()
