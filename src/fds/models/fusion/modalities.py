"""One modality's networks and likelihood: an encoder to Gaussian parameters, and a decoder whose
negative log-likelihood is the modality's reconstruction term and whose output is its data.

`weight` rescales the modality's NLL so that no modality drowns the others: by default the
widest modality's width over this one's (MultiVae's `rescale_factors` by dimension), so a
ten-token caption counts as much as a thousand-pixel image."""

from __future__ import annotations

import torch
from torch import nn

from fds.config import FDSConfig
from fds.data.multimodal import MultimodalCodec
from fds.nn.audio import SpectrogramDecoder, SpectrogramEncoder
from fds.nn.conv import ConvDecoder, ConvEncoder
from fds.nn.likelihoods import Bernoulli, Gaussian, Likelihood, build_likelihood
from fds.nn.mlp import mlp
from fds.nn.text import TextDecoder, TextEncoder, token_nll

__all__ = ["DenseModality", "Modality", "TextModality", "build_modalities"]


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


def build_modalities(
    codec: MultimodalCodec, config: FDSConfig, n_params: int, n_latent: int
) -> dict[str, Modality]:
    """The networks of every modality: encoders to `n_params` values, decoders from `n_latent`."""
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
            pixels = inner.n_encoded
            if config.architecture == "conv":
                channels = config.conv_channels
                encoder: nn.Module = ConvEncoder(inner.chw, channels, n_params)
                decoder: nn.Module = ConvDecoder(n_latent, inner.chw, channels, 1)
            else:
                encoder = mlp(pixels, hidden, n_params)
                decoder = mlp(n_latent, hidden[::-1], pixels)
            built[kind] = DenseModality(encoder, decoder, Bernoulli(pixels), weight)
        else:
            likelihood = build_likelihood(
                inner.blocks,
                "gaussian",
                scale=config.likelihood_scale,
                components=config.mixture_components,
            )
            built[kind] = DenseModality(
                mlp(inner.n_encoded, hidden, n_params),
                mlp(n_latent, hidden[::-1], likelihood.n_params),
                likelihood,
                weight,
            )
    return built
