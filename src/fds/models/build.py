"""Assemble a FactorizedAutoencoder for a codec's layout: networks, posterior and likelihood."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fds.config import FDSConfig
from fds.data.codec import Block
from fds.errors import ConfigError
from fds.models.autoencoder import FactorizedAutoencoder
from fds.models.split_encoder import SplitEncoder
from fds.nn.conv import ConvDecoder, ConvEncoder
from fds.nn.likelihoods import build_likelihood
from fds.nn.mlp import mlp
from fds.nn.posteriors import make_posterior
from fds.objectives import AttributeSpec


def build_model(
    config: FDSConfig,
    blocks: list[Block],
    image_chw: tuple[int, int, int] | None,
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
    attributes: Sequence[AttributeSpec] | None = None,
    sensitive_slots: Sequence[int] = (),
) -> FactorizedAutoencoder:
    """Assemble a model for data laid out as `blocks` (images also give their (C,H,W)).

    `sensitive_slots`: the encoded positions of a table's sensitive columns; with a private block
    and `public_input` "without_sensitive", the public encoder never sees them (SplitEncoder)."""
    real = config.likelihood
    if real == "auto":
        real = "bernoulli" if image_chw else "gaussian_learned"
    if real == "bernoulli" and not image_chw:
        raise ConfigError(
            "likelihood bernoulli models values in [0, 1] (images); table columns are standardized: "
            "use gaussian, gaussian_learned or mixture"
        )
    likelihood = build_likelihood(
        blocks, real, scale=config.likelihood_scale, components=config.mixture_components
    )
    posterior = make_posterior(config.posterior, config.noise_std)
    n_codes = posterior.n_params_per_dim * config.latent_dim
    n_in = blocks[-1].stop
    arch = config.architecture
    if arch == "auto":
        arch = "mlp"
    if arch == "conv" and not image_chw:
        raise ConfigError("architecture conv needs images (N,H,W[,C]); use mlp for tables")
    if encoder is None and arch == "mlp" and _hides_by_construction(config, sensitive_slots):
        hidden = set(sensitive_slots)
        encoder = SplitEncoder(
            [i for i in range(n_in) if i not in hidden],
            sorted(hidden) if config.private_input == "sensitive" else range(n_in),
            config.hidden_dims,
            config.latent_dim - config.private_dim,
            config.private_dim,
            posterior.n_params_per_dim,
        )
    if encoder is None:
        encoder = ConvEncoder(image_chw, config.conv_channels, n_codes) if arch == "conv" else None
        encoder = encoder or mlp(n_in, config.hidden_dims, n_codes)
    if decoder is None:
        if arch == "conv":
            decoder = ConvDecoder(
                config.latent_dim, image_chw, config.conv_channels, likelihood.params_per_dim
            )
        else:
            decoder = mlp(
                config.latent_dim, tuple(reversed(config.hidden_dims)), likelihood.n_params
            )
    return FactorizedAutoencoder(encoder, posterior, decoder, likelihood, config, attributes)


def _hides_by_construction(config: FDSConfig, sensitive_slots: Sequence[int]) -> bool:
    return bool(config.private_dim and sensitive_slots and config.public_input != "all")
