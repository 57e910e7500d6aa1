"""One modality's networks and likelihood: an encoder to Gaussian parameters, and a decoder whose
negative log-likelihood is the modality's reconstruction term and whose output is its data.

`weight` rescales the modality's NLL so that no modality drowns the others: by default the
widest modality's width over this one's (MultiVae's `rescale_factors` by dimension), so a
ten-token caption counts as much as a thousand-pixel image."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fds.config import FDSConfig
from fds.data.multimodal import MultimodalCodec
from fds.models.build import choose_architecture
from fds.models.fusion.key import DropSlots
from fds.nn.audio import SpectrogramDecoder, SpectrogramEncoder
from fds.nn.conv import ConvDecoder, ConvEncoder
from fds.nn.likelihoods import Bernoulli, Gaussian, Likelihood, build_likelihood
from fds.nn.mlp import mlp
from fds.nn.text import TextDecoder, TextEncoder, token_nll
from fds.nn.what_where import WhatWhereDecoder

__all__ = ["DenseModality", "Modality", "TextModality", "build_modalities", "image_networks"]


class Modality(nn.Module):
    """Interface: `encoder(x)` → 2·n_latent values (means, then log-variances)."""

    def __init__(self, encoder: nn.Module, weight: float) -> None:
        super().__init__()
        self.encoder = encoder
        self.weight = weight

    def nll(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """−log p(x | z) per record: [batch]."""
        raise NotImplementedError

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's output in the codec's encoded space (means, or greedy tokens)."""
        raise NotImplementedError


class DenseModality(Modality):
    """Images, audio features, table rows: a decoder to a likelihood's parameters."""

    def __init__(
        self, encoder: nn.Module, decoder: nn.Module, likelihood: Likelihood, weight: float
    ) -> None:
        super().__init__(encoder, weight)
        self.decoder, self.likelihood = decoder, likelihood

    def nll(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.likelihood.nll(self.decoder(z), x)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.likelihood.mean(self.decoder(z))


class TextModality(Modality):
    """Captions: teacher forcing for the NLL, greedy decoding for the output."""

    def __init__(self, encoder: TextEncoder, decoder: TextDecoder, weight: float) -> None:
        super().__init__(encoder, weight)
        self.decoder = decoder

    def nll(self, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return token_nll(self.decoder(z, x), x)

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder.greedy(z)


def image_networks(
    config: FDSConfig, chw: tuple[int, int, int], n_params: int, n_latent: int, shared_dim: int
) -> tuple[nn.Module, nn.Module]:
    """The image's encoder and decoder, by `config.architecture` (`auto` as for one modality:
    `fds.models.build.choose_architecture`). The what/where decoder places its drawing from
    the shared block (the first `shared_dim` latents: position is what the modalities share)
    and draws the template from all of it, own latents included."""
    pixels = chw[0] * chw[1] * chw[2]
    hidden = list(config.hidden_dims)
    arch = choose_architecture(config, chw)
    if arch == "conv":
        channels = config.conv_channels
        return ConvEncoder(chw, channels, n_params), ConvDecoder(n_latent, chw, channels, 1)
    encoder = mlp(pixels, hidden, n_params)
    if arch == "what_where":
        return encoder, WhatWhereDecoder(n_latent, chw, hidden[::-1], 1, where_dim=shared_dim)
    return encoder, mlp(n_latent, hidden[::-1], pixels)


def build_modalities(
    codec: MultimodalCodec,
    config: FDSConfig,
    n_params: int,
    n_latent: int,
    shared_dim: int,
    hidden_table_slots: Sequence[int] = (),
) -> dict[str, Modality]:
    """The networks of every modality: encoders to `n_params` values, decoders from `n_latent`
    (of which the first `shared_dim` are the shared block). `hidden_table_slots`: encoded
    table slots its encoder must not read (the sensitive columns; its decoder still writes
    them)."""
    widths = {kind: codec.width(kind) for kind in codec.modalities}
    top = max(widths.values())
    built: dict[str, Modality] = {}
    for kind in codec.modalities:
        weight = top / widths[kind]
        inner = codec.codecs[kind]
        hidden = list(config.hidden_dims)
        if kind == "text":
            built[kind] = TextModality(
                TextEncoder(inner.vocab_size, n_params),
                TextDecoder(n_latent, inner.vocab_size, inner.length),
                weight,
            )
        elif kind == "audio":
            built[kind] = DenseModality(
                SpectrogramEncoder(inner.bins, inner.frames, n_params),
                SpectrogramDecoder(n_latent, inner.n_encoded),
                Gaussian(inner.n_encoded),
                weight,
            )
        elif kind == "image":
            encoder, decoder = image_networks(config, inner.chw, n_params, n_latent, shared_dim)
            built[kind] = DenseModality(encoder, decoder, Bernoulli(inner.n_encoded), weight)
        else:
            likelihood = build_likelihood(
                inner.blocks,
                "gaussian",
                scale=config.likelihood_scale,
                components=config.mixture_components,
            )
            kept = [i for i in range(inner.n_encoded) if i not in set(hidden_table_slots)]
            encoder = mlp(len(kept), hidden, n_params)
            built[kind] = DenseModality(
                DropSlots(kept, encoder) if len(kept) < inner.n_encoded else encoder,
                mlp(n_latent, hidden[::-1], likelihood.n_params),
                likelihood,
                weight,
            )
    return built
