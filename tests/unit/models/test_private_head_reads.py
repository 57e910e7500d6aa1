"""What the key's head reads: the private block's draws for a key of the attributes alone
(`private_only`), its means under `mmd_given`, where the key may hold more than the attributes
and a head on draws squeezed the rest out of it (docs/privacy-key.md)."""

from __future__ import annotations

import torch

from fds.config import FDSConfig
from fds.nn.posteriors import PosteriorSample
from fds.objectives import AttributeSpec
from fds.objectives.base import DataLayout, TermInputs
from fds.objectives.heads import AttributeHeads
from fds.objectives.private_head import PRIVATE_HEAD, TERM

SEX = [AttributeSpec("sex", "categorical", 2)]


def _head_loss(given_slots: tuple[tuple[int, ...], ...], noise: float) -> float:
    """The head's loss on one batch whose draws are the means plus `noise`."""
    config = FDSConfig(preset="fds", sensitive=("sex",), latent_dim=4, private_only=True)
    config = config.resolved()
    g = torch.Generator().manual_seed(0)
    mean = torch.randn(64, 4, generator=g)
    post = PosteriorSample(z=mean + noise, mean=mean, logvar=torch.zeros_like(mean))
    torch.manual_seed(0)
    head = AttributeHeads(config.private_dim, SEX)
    x = torch.randn(64, 3, generator=g)
    inputs = TermInputs(
        config,
        post,
        (mean[:, -1:] > 0).float(),
        SEX,
        64,
        {PRIVATE_HEAD.name: head},
        x,
        x,
        lambda z: z,
        torch.nn.Identity(),  # the head reads neither the encoder, the decoder nor the likelihood
        None,  # type: ignore[arg-type]
        DataLayout(3, given_slots=given_slots),
    )
    return float(TERM.value(inputs, 1.0).sum())


def test_a_key_of_the_attributes_alone_is_read_from_its_draws():
    assert _head_loss((), noise=0.0) != _head_loss((), noise=3.0)


def test_under_mmd_given_the_head_reads_the_means_the_user_keeps():
    assert _head_loss(((0,),), noise=0.0) == _head_loss(((0,),), noise=3.0)
    # the same means and no noise: the same loss whichever block the head reads
    assert _head_loss(((0,),), noise=0.0) == _head_loss((), noise=0.0)
