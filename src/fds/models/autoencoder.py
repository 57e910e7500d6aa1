"""FactorizedAutoencoder: encoder → posterior → latent → decoder → likelihood, and its objective.

    L = NLL(x | z) + kl·KL(q(z|x) ‖ p(z)) + tc·TC + factor·TC_disc + sparsity + independence·HSIC
        + censor·(private head NLL + adversary term) + mmd·(group MMD + private spread)

Each term is optional and weighted (see `fds.config.PRESETS` for the classic combinations). The
loss is computed here, from pure functions in `fds.objectives`, so the trainer stays generic.
"""

from __future__ import annotations

import torch
from torch import nn

from fds.config import FDSConfig
from fds.errors import ConfigError
from fds.nn.corruption import corrupt
from fds.nn.likelihoods import Likelihood
from fds.nn.posteriors import PosteriorSample
from fds.objectives import AttributeSpec, factor_disc, hsic, kl, sparsity, tc
from fds.objectives.alternating_censor import confusion_loss
from fds.objectives.block_independence import block_hsic, cross_covariance
from fds.objectives.gradient_reversal import reverse_gradient
from fds.objectives.heads import AttributeHeads, attribute_nll
from fds.objectives.mmd import group_mmd
from fds.objectives.private_spread import within_group_spread


class FactorizedAutoencoder(nn.Module):
    """The network plus the weights of its loss terms; `loss_terms` returns each term separately."""

    def __init__(
        self,
        encoder: nn.Module,
        posterior: nn.Module,
        decoder: nn.Module,
        likelihood: Likelihood,
        config: FDSConfig,
        attributes: list[AttributeSpec] | None = None,
    ) -> None:
        super().__init__()
        self.encoder, self.posterior, self.decoder, self.likelihood = (
            encoder,
            posterior,
            decoder,
            likelihood,
        )
        self.config = config
        self.latent_dim = config.latent_dim
        self.discriminator = factor_disc.Discriminator(config.latent_dim) if config.factor else None
        self.private_dim = config.private_dim or 0
        self.public_dim = config.latent_dim - self.private_dim
        self.attributes = list(attributes or [])
        self.private_head = self.adversary = None
        if self.private_dim:
            if not self.attributes:
                raise ConfigError(
                    "a private block (private_dim > 0) needs sensitive attributes to carry: set "
                    "sensitive (table columns) or pass sensitive= values to fit"
                )
            self.private_head = AttributeHeads(self.private_dim, self.attributes)
            if config.adversary != "none":
                self.adversary = AttributeHeads(self.public_dim, self.attributes)

    @property
    def stochastic(self) -> bool:
        return self.config.posterior == "gaussian"

    def encode(self, x: torch.Tensor, sample: bool = False) -> PosteriorSample:
        return self.posterior(self.encoder(x), sample)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Decoder output = the likelihood's parameters."""
        return self.decoder(z)

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        """Everything the main optimizer updates (the FactorVAE discriminator, and the adversary
        in `alternating` mode, have their own)."""
        skip = {id(p) for p in self.discriminator.parameters()} if self.discriminator else set()
        if self.alternating:
            skip |= {id(p) for p in self.adversary.parameters()}
        return [p for p in self.parameters() if id(p) not in skip]

    @property
    def alternating(self) -> bool:
        """True when the public-block adversary is trained by its own optimizer."""
        return self.adversary is not None and self.config.adversary == "alternating"

    def split(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(public block, private block): the private block is the last `private_dim` latents."""
        return z[:, : self.public_dim], z[:, self.public_dim :]

    def elbo(self, x: torch.Tensor, sample: bool = True) -> torch.Tensor:
        """Per-example evidence lower bound in nats (for deterministic codes: log p(x|z))."""
        post = self.encode(x, sample=sample)
        log_px = -self.likelihood.nll(self.decode(post.z), x)
        if post.logvar is None:
            return log_px
        return log_px - kl.gaussian_kl(post.mean, post.logvar).sum(-1)

    def loss_terms(
        self,
        x: torch.Tensor,
        *,
        kl_scale: float = 1.0,
        censor_scale: float = 1.0,
        dataset_size: int,
        per_example: bool = False,
        s: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Weighted loss terms; `loss` is their sum, which training minimises.

        Terms are batch means, or with `per_example=True` vectors of shape [batch] (what DP-SGD
        clips one by one); terms that couple the examples of a batch (TC, HSIC, the FactorVAE
        discriminator, the KL-to-target sparsity) have no per-example form and are refused then.
        The denoising input is corrupted here and the clean `x` is the target. The FactorVAE
        discriminator's own loss is returned as `discriminator` (it is not part of `loss`).

        With a private block, `s` holds the sensitive attributes of the batch ([batch, n_attr],
        class indices or standardized values) and adds the per-example privacy terms `private`
        and `adversary` (gradient reversal) or `censor` (alternating, whose adversary's own loss
        is returned as `adversary`, outside `loss`); without `s` they are left out.
        `censor_scale` (the warm-up factor of `censor_warmup_epochs`) scales every term that
        censors the public block or shapes the private one, but not the private head.
        """
        cfg = self.config
        if per_example:
            self._check_per_example()
        post = self.encode(corrupt(x, cfg.corruption, cfg.corruption_level or 0.0), sample=True)
        terms = {"nll": self.likelihood.nll(self.decode(post.z), x)}
        if post.logvar is not None and cfg.kl:
            kl_dims = kl.gaussian_kl(post.mean, post.logvar)
            terms["kl"] = cfg.kl * kl_scale * kl.free_bits_kl(kl_dims, cfg.free_bits)
        if cfg.sparsity_l1:
            terms["sparsity_l1"] = cfg.sparsity_l1 * sparsity.l1(post.z)
        adversary_loss = None
        if self.private_head is not None and s is not None and cfg.censor:
            adversary_loss = self._privacy_terms(post, s, terms, censor_scale)
        if not per_example:
            terms = {name: value.mean() for name, value in terms.items()}
            terms |= self._batch_terms(post, dataset_size, s, censor_scale)
        terms["loss"] = torch.stack(list(terms.values())).sum(0)
        if self.discriminator is not None:
            terms["discriminator"] = factor_disc.discriminator_loss(self.discriminator, post.z)
        if adversary_loss is not None:
            terms["adversary"] = adversary_loss
        return terms

    def _privacy_terms(
        self,
        post: PosteriorSample,
        s: torch.Tensor,
        terms: dict[str, torch.Tensor],
        censor_scale: float,
    ) -> torch.Tensor | None:
        """Add the per-example privacy terms to `terms`; return the alternating adversary's own
        loss (or None). The adversary reads the public posterior mean: what `transform` shares."""
        beta, specs = self.config.censor, self.attributes
        public, private = self.split(post.mean)
        terms["private"] = beta * attribute_nll(self.private_head(private), s, specs)
        if self.adversary is None:
            return None
        if not self.alternating:
            reversed_public = reverse_gradient(public, beta * censor_scale)
            terms["adversary"] = attribute_nll(self.adversary(reversed_public), s, specs)
            return None
        confusion = confusion_loss(self.adversary(public), s, specs)
        terms["censor"] = beta * censor_scale * confusion
        return attribute_nll(self.adversary(public.detach()), s, specs).mean()

    def _batch_terms(
        self,
        post: PosteriorSample,
        dataset_size: int,
        s: torch.Tensor | None,
        censor_scale: float,
    ) -> dict[str, torch.Tensor]:
        """The terms defined on a whole batch of codes (scalars)."""
        cfg, terms = self.config, {}
        if cfg.mmd and self.private_dim and s is not None:
            public, private = self.split(post.mean)  # what transform releases
            weight = cfg.mmd * censor_scale
            terms["mmd"] = weight * group_mmd(public, s, self.attributes)
            if cfg.private_only:
                spread = within_group_spread(private, s, self.attributes)
                terms["private_spread"] = weight * spread
        if post.logvar is not None and cfg.tc:
            tc_value = tc.total_correlation(
                post.z, post.mean, post.logvar, dataset_size, cfg.tc_estimator
            )
            terms["tc"] = cfg.tc * tc_value
        if self.discriminator is not None:
            terms["factor_tc"] = cfg.factor * factor_disc.tc_estimate(self.discriminator, post.z)
        if cfg.sparsity_kl:
            terms["sparsity_kl"] = cfg.sparsity_kl * sparsity.kl_to_target(
                post.z, cfg.sparsity_target
            )
        if cfg.independence and self.private_dim:
            public, private = self.split(post.mean)  # what transform releases
            between = block_hsic if cfg.independence_kind == "hsic" else cross_covariance
            terms["independence"] = cfg.independence * censor_scale * between(public, private)
        elif cfg.independence:
            penalty = hsic.hsic if cfg.independence_kind == "hsic" else hsic.decorrelation
            terms["independence"] = cfg.independence * penalty(post.z)
        return terms

    def _check_per_example(self) -> None:
        cfg = self.config
        coupled = {
            "tc": cfg.tc,
            "factor": cfg.factor,
            "sparsity_kl": cfg.sparsity_kl,
            "independence": cfg.independence,
            "free_bits": cfg.free_bits,
            "mmd": cfg.mmd,
        }
        used = [name for name, weight in coupled.items() if weight]
        if used:
            raise ConfigError(
                f"{used[0]} couples the examples of a batch, so it has no per-example loss "
                f"(needed for DP-SGD); set {used[0]}=0"
            )
