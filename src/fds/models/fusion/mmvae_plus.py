"""`mmvae_plus`: MMVAE+ (Palumbo et al. 2023). Each modality's encoder gives a shared latent w
(mixed across modalities as in MMVAE) and a modality-specific latent u_m of its own.

Per present modality m: w ~ q(w|x_m) and u_m ~ q(u_m|x_m) reconstruct x_m; the same w with
u_n drawn from the auxiliary prior r(u_n) reconstructs every other present x_n, so w has to
carry what the modalities share and u_m only what x_m alone holds. KL(q(w|x_m) ‖ p(w)) +
KL(q(u_m|x_m) ‖ p(u_m)). Simple version: no IWAE/DReG, r = p = N(0, I).
The fused code (`transform`) is the shared block w only."""

from __future__ import annotations

import torch

from fds.models.fusion.base import Batch, Encoded, Key
from fds.models.fusion.experts import draw
from fds.models.fusion.moe import MixtureOfExperts


class MixturePlus(MixtureOfExperts):
    name = "mmvae_plus"
    specific = True

    def own_posterior(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(u_m | x_m) from modality m's encoder output: means and log-variances."""
        d, s = self.public_dim, self.specific_dim
        return params[:, d : d + s], params[:, 2 * d + s :].clamp(-12, 8)

    def own_mean(self, x: Batch, kind: str) -> torch.Tensor:
        return self.own_posterior(self.modalities[kind].encoder(x[kind]))[0]

    def loss(
        self, x: Batch, mask: torch.Tensor, key: Key = None, encoded: Encoded = None
    ) -> torch.Tensor:
        encoded = self.encoded(x) if encoded is None else encoded
        mu, logvar = self.experts(x, encoded)
        own = [self.own_posterior(params) for params in encoded]
        total = torch.zeros(mu.shape[1])
        for m in range(len(self.kinds)):
            w = self.with_key(draw(mu[m], logvar[m]), key)
            term = self.kl(mu[m], logvar[m]) + self.kl(*own[m])
            for n, kind in enumerate(self.kinds):
                u = draw(*own[n]) if n == m else torch.randn(len(w), self.specific_dim)
                modality = self.modalities[kind]
                nll = modality.nll(self.full(w, n, u), x[kind])
                term = term + mask[n] * modality.weight * nll
            total = total + mask[m] * term
        return total / mask.sum(0).clamp_min(1)
