"""`moe`: MMVAE (Shi et al. 2019). The code of a subset is the uniform mixture of its experts.

Training is the stratified ELBO, one term per present modality m: a draw from q(z|x_m)
reconstructs every present modality, minus KL(q(z|x_m) ‖ p(z)). This is the simple version: no
importance weights (the paper's IWAE/DReG estimator), and each component's own KL instead of the
mixture's (a looser bound with the same optimum families)."""

from __future__ import annotations

import torch

from fds.models.fusion.base import Batch, Encoded, FusionModel, Key
from fds.models.fusion.experts import draw, mixture_mean, pick_present


class MixtureOfExperts(FusionModel):
    name = "moe"

    def fuse(self, x: Batch, mask: torch.Tensor, sample: bool = False, encoded: Encoded = None):
        mu, logvar = self.experts(x, encoded)
        if sample:
            pick = pick_present(mask)
            rows = torch.arange(mu.shape[1])
            chosen_mu, chosen_logvar = mu[pick, rows], logvar[pick, rows]
            return draw(chosen_mu, chosen_logvar), chosen_logvar
        return mixture_mean(mu, mask), mixture_mean(logvar, mask)

    def loss(
        self, x: Batch, mask: torch.Tensor, key: Key = None, encoded: Encoded = None
    ) -> torch.Tensor:
        mu, logvar = self.experts(x, encoded)
        total = torch.zeros(mu.shape[1])
        for m in range(len(self.kinds)):
            z = self.with_key(draw(mu[m], logvar[m]), key)
            term = self.reconstruction(z, x, mask) + self.kl(mu[m], logvar[m])
            total = total + mask[m] * term
        return total / mask.sum(0).clamp_min(1)
