"""Assemble a FactorizedAutoencoder for a codec's layout: networks, posterior and likelihood."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from fds.config import FDSConfig
from fds.data.codec import Block
from fds.errors import ConfigError
from fds.models.autoencoder import FactorizedAutoencoder
from fds.models.split_encoder import SplitEncoder as TableSplitEncoder
from fds.nn.conv import ConvDecoder, ConvEncoder
from fds.nn.likelihoods import DEFAULT_FLOOR, Likelihood, build_likelihood
from fds.nn.mlp import mlp
from fds.nn.posteriors import make_posterior
from fds.nn.what_where import CanonicalEncoder, SplitEncoder, WhatWhereDecoder
from fds.objectives import AttributeSpec, DataLayout

# the least σ of a learned Gaussian head on tables when `scale_floor` is not set, in encoded
# units: measured on real tables (benchmarks/table_defaults.py); pixels keep DEFAULT_FLOOR (1e-3)
TABLE_SCALE_FLOOR = 0.1

# Below this side an image is a handful of pixels (digits: 8×8): an MLP decodes it best.
MIN_PLACED_SIDE = 16


def choose_architecture(config: FDSConfig, image_chw: tuple[int, int, int] | None) -> str:
    """The networks `architecture: auto` stands for, from what decoded best at the same epochs
    (docs/peers.md, benchmarks/image_architectures.py, benchmarks/key.py): on images of 16 px and
    more, the what/where networks for a model with a key (their keyed decodings carry the shape),
    the He-initialised conv networks otherwise (a plain vae's test MSE on `shapes` 0.0124 against
    the MLP's 0.0129, on the RGB `balls` 0.0071 against 0.0115, in about 2-3× the CPU time); an
    MLP for tables and tiny images (on 8×8 digits it beat both)."""
    arch = config.architecture
    if arch != "auto":
        if arch != "mlp" and not image_chw:
            raise ConfigError(f"architecture {arch} needs images (N,H,W[,C]); use mlp for tables")
        return arch
    if image_chw is None or min(image_chw[1:]) < MIN_PLACED_SIDE:
        return "mlp"
    return "what_where" if config.private_dim else "conv"


def for_data(config: FDSConfig, image_chw: tuple[int, int, int] | None) -> FDSConfig:
    """The config with its data-dependent `auto` values settled (`private_only`)."""
    if config.private_only != "auto":
        return config
    return config.model_copy(update={"private_only": image_chw is None})


def build_model(
    config: FDSConfig,
    blocks: list[Block],
    image_chw: tuple[int, int, int] | None,
    encoder: nn.Module | None = None,
    decoder: nn.Module | None = None,
    attributes: Sequence[AttributeSpec] | None = None,
    sensitive_slots: Sequence[int] = (),
    given_slots: Sequence[Sequence[int]] = (),
) -> FactorizedAutoencoder:
    """Assemble a model for data laid out as `blocks` (images also give their (C,H,W)).

    `sensitive_slots`: the encoded positions of a table's sensitive columns; with a private block
    and `public_input` "without_sensitive", the public encoder never sees them (SplitEncoder).
    `given_slots`: the encoded slots of each `mmd_given` column, which the MMD conditions on."""
    config = for_data(config, image_chw)
    real = config.likelihood
    if real == "auto":
        real = "bernoulli" if image_chw else "gaussian_learned"
    if real == "bernoulli" and not image_chw:
        raise ConfigError(
            "likelihood bernoulli models values in [0, 1] (images); table columns are standardized: "
            "use gaussian, gaussian_learned or mixture"
        )
    likelihood = build_likelihood(
        blocks,
        real,
        scale=config.likelihood_scale,
        components=config.mixture_components,
        floor=config.scale_floor or (DEFAULT_FLOOR if image_chw else TABLE_SCALE_FLOOR),
    )
    posterior = make_posterior(config.posterior, config.noise_std)
    arch = choose_architecture(config, image_chw)
    if encoder is None and arch == "mlp" and _hides_by_construction(config, sensitive_slots):
        hidden = set(sensitive_slots)
        n_in = blocks[-1].stop
        encoder = TableSplitEncoder(
            [i for i in range(n_in) if i not in hidden],
            sorted(hidden) if config.private_input == "sensitive" else range(n_in),
            config.hidden_dims,
            config.latent_dim - config.private_dim,
            config.private_dim,
            posterior.n_params_per_dim,
        )
    if encoder is None:
        encoder = _encoder(arch, config, blocks[-1].stop, image_chw, posterior.n_params_per_dim)
    if config.public_step and not isinstance(encoder, SplitEncoder):
        raise ConfigError(
            f"public_step={config.public_step} rounds the public block of an image model with a "
            "key (architecture what_where or auto, private_dim > 0); this model has none: "
            "leave public_step at 0"
        )
    if config.swap_invariance and not isinstance(encoder, SplitEncoder):
        raise ConfigError(
            f"swap_invariance={config.swap_invariance} reads the public encoder of an image "
            "model with a key (architecture what_where or auto, private_dim > 0); this model "
            "has none: leave swap_invariance at 0"
        )
    scheduled = {
        "public_step_start": config.public_step_start,
        "public_step_warmup_epochs": config.public_step_warmup_epochs or None,
    }
    for name, value in scheduled.items():
        if value is not None and not config.public_step:
            raise ConfigError(
                f"{name}={value} schedules the rounding of the public block, which is off "
                f"(public_step 0): set public_step or leave {name} unset"
            )
    if (config.public_step_start is None) != (not config.public_step_warmup_epochs):
        raise ConfigError(
            "public_step_start and public_step_warmup_epochs go together (the step moves from "
            "the one to public_step over the other): set both or neither"
        )
    if decoder is None:
        decoder = _decoder(arch, config, image_chw, likelihood)
    layout = DataLayout(
        blocks[-1].stop,
        image_chw,
        convolutional=arch == "conv",
        given_slots=tuple(tuple(slots) for slots in given_slots),
    )
    return FactorizedAutoencoder(
        encoder, posterior, decoder, likelihood, config, attributes, layout
    )


def _hides_by_construction(config: FDSConfig, sensitive_slots: Sequence[int]) -> bool:
    return bool(config.private_dim and sensitive_slots and config.public_input != "all")


def _encoder(
    arch: str,
    config: FDSConfig,
    n_in: int,
    image_chw: tuple[int, int, int] | None,
    params_per_dim: int,
) -> nn.Module:
    n_codes = params_per_dim * config.latent_dim
    if arch == "conv":
        return ConvEncoder(image_chw, config.conv_channels, n_codes)
    private_dim = config.private_dim or 0
    if arch == "mlp" or not private_dim:
        return mlp(n_in, config.hidden_dims, n_codes)
    # the key reads one drawing in its own frame, not a scene: half the width is enough
    key_hidden = tuple(max(8, h // 2) for h in config.hidden_dims)
    return SplitEncoder(
        mlp(n_in + private_dim, config.hidden_dims, params_per_dim * config.public_dim),
        CanonicalEncoder(image_chw, key_hidden, params_per_dim * private_dim),
        config.public_dim,
        private_dim,
        params_per_dim,
        public_step=config.public_step,
        step_start=config.public_step_start,
        step_warmup_epochs=config.public_step_warmup_epochs,
    )


def _decoder(
    arch: str,
    config: FDSConfig,
    image_chw: tuple[int, int, int] | None,
    likelihood: Likelihood,
) -> nn.Module:
    hidden = tuple(reversed(config.hidden_dims))
    params_per_pixel = likelihood.params_per_dim
    if arch == "conv":
        return ConvDecoder(config.latent_dim, image_chw, config.conv_channels, params_per_pixel)
    if arch == "mlp":
        return mlp(config.latent_dim, hidden, likelihood.n_params)
    private_dim = config.private_dim or 0
    return WhatWhereDecoder(
        config.latent_dim,
        image_chw,
        hidden,
        params_per_pixel,
        where_dim=config.public_dim,
        key_dim=private_dim,
        ink=likelihood.mean,
    )
