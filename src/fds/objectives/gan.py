"""VAE-GAN (Larsen et al. 2016): a critic learns to tell real data from decoded data, and the
autoencoder is also trained to fool it, which pulls decodings towards what real data looks like
(sharper images, rows whose columns go together) where the likelihood alone averages.

The critic sees two kinds of fakes, as in Larsen et al.: reconstructions of the batch and
decodings of prior draws z ~ N(0, I) (what `sample` shows). Images are judged as the decoder's
mean (what `sample` returns for images); table rows as a relaxed draw of the decoder's
distribution (Gumbel-softmax for categories, as CTGAN), since a soft one-hot is told from a real
one at a glance. Losses are the standard non-saturating GAN pair (Goodfellow et al. 2014):

    critic:       softplus(−D(x)) + ½ [softplus(D(x̃)) + softplus(D(x_p))]
    autoencoder:  gan · d · ½ [softplus(−D(x̃)) + softplus(−D(x_p))]      (d values per row)

beside the reconstruction likelihood, which Larsen et al. replace by a feature-matching loss in
the critic's features; keeping the likelihood keeps the ELBO and every other term as they are.
The critic is a convolutional one for conv models and an MLP otherwise (tables pack 10 rows per
judgement, PacGAN, as CTGAN does); see `fds.nn.critic`. The critic reads the real rows, unclipped
and unnoised, so DP-SGD refuses the term (docs/synthesis.md says why).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from fds.nn.critic import ConvCritic, MLPCritic
from fds.objectives.attributes import AttributeSpec
from fds.objectives.base import DataLayout, LossTerm, Network, OptimizerGroup, TermInputs

if TYPE_CHECKING:
    from fds.config import FDSConfig

TABLE_PAC = 10  # rows per critic judgement on tables (CTGAN's default)
TEMPERATURE = 0.2  # Gumbel-softmax temperature of decoded categories (CTGAN's)


def build_critic(
    config: FDSConfig, attributes: Sequence[AttributeSpec], layout: DataLayout
) -> nn.Module:
    """A conv critic for conv models, else an MLP as wide as the model's hidden layers."""
    if layout.convolutional and layout.image_chw is not None:
        return ConvCritic(layout.image_chw, config.conv_channels)
    pac = 1 if layout.image_chw is not None else TABLE_PAC
    return MLPCritic(layout.width, config.hidden_dims, pac)


CRITIC = Network("critic", build_critic)


def _as_data(inputs: TermInputs, params: torch.Tensor) -> torch.Tensor:
    """Decoder output → what the critic compares with real data."""
    if inputs.layout.image_chw is not None:
        return inputs.likelihood.mean(params)
    return inputs.likelihood.relaxed(params, TEMPERATURE)


def _fakes(inputs: TermInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """(reconstructions of the batch, decodings of as many prior draws), as data."""
    z_prior = torch.randn_like(inputs.post.z)
    return _as_data(inputs, inputs.decoded), _as_data(inputs, inputs.decode(z_prior))


def _generator(inputs: TermInputs, weight: float) -> torch.Tensor:
    critic = inputs.networks[CRITIC.name]
    recon, prior = _fakes(inputs)
    fooled = F.softplus(-critic(recon)).mean() + F.softplus(-critic(prior)).mean()
    # The NLL sums over the row's values; so does this, at `weight` per value, so one weight
    # balances the two on an 8-column table and on a 784-pixel image alike.
    return weight * inputs.layout.width * 0.5 * fooled


def critic_loss(inputs: TermInputs) -> torch.Tensor:
    """The critic's cross-entropy on real rows against both fakes; the fakes are detached, so
    this loss trains the critic alone."""
    critic = inputs.networks[CRITIC.name]
    with torch.no_grad():
        recon, prior = _fakes(inputs)
    real = F.softplus(-critic(inputs.x)).mean()
    return real + 0.5 * (F.softplus(critic(recon)).mean() + F.softplus(critic(prior)).mean())


TERM = LossTerm(
    name="gan",
    weight="gan",
    value=_generator,
    when=lambda config: bool(config.gan),  # no critic without the term
    per_example=False,  # prior draws and packed rows belong to no one example
    network=CRITIC,
    optimizer=OptimizerGroup(
        "critic",
        loss=critic_loss,
        dp_refusal=(
            "gan trains its critic on the real rows outside DP-SGD (no clipping, no noise), "
            "so vae_gan cannot be trained with privacy; set gan=0 or use preset vae"
        ),
        betas=(0.5, 0.999),  # DCGAN's
    ),
)
