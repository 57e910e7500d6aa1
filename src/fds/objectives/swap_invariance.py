"""Swap invariance (images with a key, `swap_invariance`): a record's public code decoded with
another record's key, then read again by the public encoder, must give the record's own public
code back. The cycle-consistent VAE's idea (Jha et al. 2018) applied to the what/where split.

Why: a batch penalty (the group MMD) compares the public codes of groups of different records,
and with 43 sprites per shape in a batch it cannot see a code that moves by a fraction of a
rounding step with the shape at one position and size. A swap gives the encoder exactly those
pairs: the same public code drawn as another shape. The decoded image is detached: only the
public encoder learns from the term, so the decoder cannot hide the code in its pixels for the
encoder to read back. The error of each coordinate is divided by its variance in the batch, and
the record's own reading keeps its gradient: with a raw squared error, or with the own reading
as a fixed target, the encoder shrank the whole block (16×16 bars: the codes' spread 0.6 → 0.06)
rather than stop it moving. The donor is the batch's previous row (the batches are shuffled, so
it is a random record), with the record's own rounding remainder in place of the donor's
(`public_step`: the key keeps what the rounding takes; with the donor's, the swap moved the
sprite by up to a step, the encoder learned to read the position more coarsely and the swaps
kept it at R² 0.80 on one seed of `shapes`). It draws nothing from the random generators and
leaves every other term's randomness as it was.

Measured on `shapes` with `public_step` 0.75 (docs/privacy-key.md): the public leakage fell to
the majority + 0.01-0.03, but the sprite's size left the public block for the key (swaps then
carry the donor's size), and a step costs 1.7 × the time. Off by default, in every preset."""

from __future__ import annotations

import torch

from fds.objectives.base import LossTerm, TermInputs


def _swap_invariance(inputs: TermInputs, weight: float) -> torch.Tensor:
    public, private = inputs.blocks()
    donors = torch.roll(torch.arange(len(public), device=public.device), 1)
    encoder = inputs.encoder
    own = encoder.public_means(inputs.x)
    with torch.no_grad():
        # the donor's key without what it keeps of the donor's rounding, plus the record's
        # own: the drawing moves with the key's content only, not by the donor's sub-step place
        kept = encoder.kept_remainder(own)
        swapped = torch.cat([public, (private - kept)[donors] + kept], dim=1)
        drawn = inputs.likelihood.mean(inputs.decode(swapped))
    again = encoder.public_means(drawn)
    # each coordinate's error relative to its spread in the batch, both read with their
    # gradient: the ratio is the same at any scale of the block, so shrinking it gains nothing
    return weight * ((again - own).pow(2) / own.var(0).clamp_min(1e-6)).sum(1).mean()


TERM = LossTerm(
    name="swap_invariance",
    weight="swap_invariance",
    value=_swap_invariance,
    needs=frozenset({"private_block"}),
    per_example=False,  # each row's term reads another row's key
    warmup="censor_warmup_epochs",
)
