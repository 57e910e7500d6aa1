"""Sampled category frequencies that match the training data's (the twin of `missing_rates`).

Rows drawn from the code prior pick a category as often as the decoder's probabilities say on
average over the prior, which is not the training frequency: the prior and the training rows'
codes never coincide (the VAE's "prior hole"), and the mismatch moves from seed to seed. One
shift per logit, fitted once after training, moves those averages onto the training frequencies:
a softmax shift per categorical column, a sigmoid shift per binary column. The shift is the same
for every row, so which rows take which category (the link with the other columns, carried by z)
is left to the model.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from fds.data.codec import Block
from fds.models.missing_rates import fit_shift
from fds.nn.likelihoods import Bernoulli, Categorical, Likelihood, Mixed

CATEGORY_SHIFT = "fitted.category_shift"  # its name in weights.safetensors
_ROUNDS = 100  # rounds of the softmax fit; each one is exact for a single row of logits
_FLOOR = 1e-6  # a frequency this small or a probability this small stops moving its logit


def _discrete_heads(
    likelihood: Likelihood, blocks: list[Block]
) -> Iterator[tuple[Block, Likelihood, int]]:
    """Each binary or categorical block with its head and its first position among the decoder's
    parameters."""
    if isinstance(likelihood, Mixed):
        pairs = zip(likelihood.blocks, likelihood.heads, likelihood.offsets, strict=False)
    else:
        pairs = [(blocks[0], likelihood, 0)]
    for block, head, offset in pairs:
        if isinstance(head, Bernoulli | Categorical):
            yield block, head, offset


def fit_softmax_shift(logits: torch.Tensor, frequencies: torch.Tensor) -> torch.Tensor:
    """The shift b with mean(softmax(logits + b)) = frequencies (iterative proportional
    fitting: b += log(wanted / got) until the averages agree); logits: [rows, categories]."""
    logits = logits.double()
    wanted = frequencies.double().clamp_min(_FLOOR)
    shift = torch.zeros(logits.shape[1], dtype=torch.float64)
    # softmax(l + b)_j = e_j w_j / (e · w) with e = exp(l - max l) per row, w = exp(b - max b):
    # e is computed once, so a round is a product with a vector instead of a softmax over
    # [rows, few categories] (what took most of the fit)
    e = (logits - logits.amax(1, keepdim=True)).exp()
    for _ in range(_ROUNDS):
        w = (shift - shift.max()).exp()
        got = (w * (e / (e @ w).unsqueeze(1)).mean(0)).clamp_min(_FLOOR)
        shift += torch.log(wanted / got)
        shift -= shift.mean()  # softmax ignores a common offset: keep the numbers small
    return shift.float()


def fit_category_shift(
    likelihood: Likelihood,
    blocks: list[Block],
    params: torch.Tensor,
    frequencies: torch.Tensor,
    skip: list[int],
) -> torch.Tensor | None:
    """One shift per decoder parameter (0 on real-valued heads and at the encoded positions in
    `skip`, e.g. the missingness indicators), fitted on `params` decoded from prior draws so that
    each binary and categorical column is sampled at its `frequencies` (the training rows' mean
    encoded values). None when the layout has no such column."""
    shift = torch.zeros(params.shape[1])
    found = False
    for block, head, offset in _discrete_heads(likelihood, blocks):
        positions = [p for p in range(block.start, block.stop) if p not in skip]
        if not positions:
            continue
        found = True
        where = [offset + p - block.start for p in positions]
        if isinstance(head, Categorical):
            shift[where] = fit_softmax_shift(params[:, where], frequencies[positions])
        else:
            shift[where] = fit_shift(params[:, where], frequencies[positions].double())
    return shift if found else None
