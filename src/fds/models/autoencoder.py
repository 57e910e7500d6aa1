"""FactorizedAutoencoder: encoder → posterior → latent → decoder → likelihood, and its objective.

    L = NLL(x | z) + Σ weight · term      (the terms registered in fds.objectives that apply)

Each term is optional and weighted (see `fds.config.PRESETS` for the classic combinations). The
model sums whatever terms its config turns on and owns their networks, so neither it nor the
Trainer names a term.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from fds.config import FDSConfig
from fds.errors import ConfigError
from fds.nn.conv import ConvEncoder
from fds.nn.corruption import corrupt
from fds.nn.likelihoods import Likelihood
from fds.nn.posteriors import PosteriorSample
from fds.nn.what_where import SplitEncoder
from fds.objectives import (
    AttributeSpec,
    DataLayout,
    LossTerm,
    OptimizerGroup,
    TermInputs,
    applying_terms,
    check_per_example,
)
from fds.objectives.kl import gaussian_kl


class FactorizedAutoencoder(nn.Module):
    """The network plus its loss terms; `loss_terms` returns each term separately.

    Each term's network is a submodule under its `Network.name` (`discriminator`, `private_head`,
    `adversary`), so model files and checkpoints keep those weight names."""

    # The encoder's and decoder's number format while training (None: float32); the Trainer sets
    # it for the run (fds.runtime.precision). Not part of the weights or the model file.
    compute_dtype: torch.dtype | None = None

    def __init__(
        self,
        encoder: nn.Module,
        posterior: nn.Module,
        decoder: nn.Module,
        likelihood: Likelihood,
        config: FDSConfig,
        attributes: Sequence[AttributeSpec] | None = None,
        layout: DataLayout | None = None,
    ) -> None:
        """`layout` describes the data to the terms' networks (default: rows of the likelihood's
        width)."""
        super().__init__()
        self.encoder, self.posterior, self.decoder, self.likelihood = (
            encoder,
            posterior,
            decoder,
            likelihood,
        )
        self.config = config
        self.latent_dim = config.latent_dim
        self.private_dim = config.private_dim or 0
        self.public_dim = config.latent_dim - self.private_dim
        self.attributes = list(attributes or [])
        self.layout = layout or DataLayout(likelihood.dim)
        if self.private_dim and not self.attributes:
            raise ConfigError(
                "a private block (private_dim > 0) needs sensitive attributes to carry: set "
                "sensitive (table columns) or pass sensitive= values to fit"
            )
        self.network_names: list[str] = []
        for term in self.terms:
            network = term.network
            if network is not None and network.name not in self.network_names:
                self.add_module(network.name, network.build(config, self.attributes, self.layout))
                self.network_names.append(network.name)

    @property
    def terms(self) -> list[LossTerm]:
        """The registered terms this model's config has (looked up, not stored: Opacus clones a
        model by pickling it, and a term may hold lambdas)."""
        return applying_terms(self.config)

    @property
    def convolutional(self) -> bool:
        """The encoder is the built-in convolutional one (else an MLP, or the user's own)."""
        return isinstance(self.encoder, ConvEncoder)

    @property
    def stochastic(self) -> bool:
        return self.config.posterior == "gaussian"

    def encode(self, x: torch.Tensor, sample: bool = False) -> PosteriorSample:
        return self.posterior(self._network(self.encoder, x), sample)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output = the likelihood's parameters."""
        return self._network(self.decoder, z)

    def _network(self, net: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """`net(x)`; while training with a `compute_dtype` (set by the Trainer, see
        fds.runtime.precision) under autocast to it, the output back in float32, so that the
        posterior and every loss term compute in float32."""
        if self.compute_dtype is None or not self.training:
            return net(x)
        with torch.autocast(x.device.type, dtype=self.compute_dtype):
            return net(x).float()

    def optimizer_groups(self) -> list[tuple[OptimizerGroup, list[nn.Parameter]]]:
        """The networks trained by their own optimizer on their own loss, with their parameters."""
        return [
            (term.optimizer, list(self.get_submodule(term.network.name).parameters()))
            for term in self.terms
            if term.optimizer is not None and term.network is not None
        ]

    def main_parameters(self) -> list[nn.Parameter]:
        """Everything the main optimizer updates: all but the optimizer groups' networks."""
        own = {id(p) for _, params in self.optimizer_groups() for p in params}
        return [p for p in self.parameters() if id(p) not in own]

    def elbo(self, x: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """Per-example evidence lower bound in nats (for deterministic codes: log p(x|z))."""
        post = self.encode(x, sample=sample)
        log_px = -self.likelihood.nll(self.decode(post.z), x)
        if post.logvar is None:
            return log_px
        return log_px - gaussian_kl(post.mean, post.logvar).sum(-1)

    def loss_terms(
        self,
        x: torch.Tensor,
        *,
        dataset_size: int,
        epoch_progress: float | None = None,
        per_example: bool = False,
        s: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Weighted loss terms; `loss` is their sum, which training minimises.

        Terms are batch means, or with `per_example=True` vectors of shape [batch] (what DP-SGD
        clips one by one); a config with a term that couples the examples of a batch is refused
        then. The denoising input is corrupted here and the clean `x` is the target.
        `epoch_progress` (epochs done, fractional) ramps the terms with a warm-up; None gives
        them their full weight. `s` holds the batch's sensitive attributes ([batch, n_attr],
        class indices or standardized values); terms that need them are left out without it.
        The own loss of each optimizer group's network is returned under the group's name
        (`discriminator`, `adversary`), outside `loss`.
        """
        cfg = self.config
        if per_example:
            check_per_example(cfg)
        if isinstance(self.encoder, SplitEncoder):
            self.encoder.set_progress(epoch_progress)
        post = self.encode(corrupt(x, cfg.corruption, cfg.corruption_level or 0.0), sample=True)
        decoded = self.decode(post.z)
        terms = {"nll": self.likelihood.nll(decoded, x)}
        networks = {name: self.get_submodule(name) for name in self.network_names}
        inputs = TermInputs(
            cfg,
            post,
            s,
            self.attributes,
            dataset_size,
            networks,
            x,
            decoded,
            self.decode,
            self.encoder,
            self.likelihood,
            self.layout,
        )
        on = [
            term
            for term in self.terms
            if term.is_on(cfg) and (s is not None or "labels" not in term.needs)
        ]
        for term in on:
            if term.per_example:
                terms[term.name] = term.value(inputs, term.weight_at(cfg, epoch_progress))
        if not per_example:
            terms = {name: value.mean() for name, value in terms.items()}
            for term in on:
                if not term.per_example:
                    terms[term.name] = term.value(inputs, term.weight_at(cfg, epoch_progress))
        terms["loss"] = torch.stack(list(terms.values())).sum(0)
        for term in on:
            if term.optimizer is not None:
                terms[term.optimizer.name] = term.optimizer.loss(inputs)
        return terms
