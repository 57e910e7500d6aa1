"""`poe`: MVAE (Wu & Goodman 2018). The code of any subset is the product of its experts and
the prior. Sub-sampled training: the ELBO of all present modalities plus each single modality's
own ELBO (the paper's unimodal terms; its k extra random subsets are left out)."""

from __future__ import annotations

import torch

from fds.models.fusion.base import Batch, FusionModel
from fds.models.fusion.experts import draw, product_of_experts


class ProductOfExperts(FusionModel):
    name = "poe"

    def fuse(self, x: Batch, mask: torch.Tensor, sample: bool = False):
        mu, logvar = product_of_experts(*self.experts(x), mask, prior=True)
        return (draw(mu, logvar) if sample else mu), logvar

    def loss(self, x: Batch, mask: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.experts(x)
        total = self._elbo(x, mu, logvar, mask)
        for m in range(len(self.kinds)):
            alone = torch.zeros_like(mask)
            alone[m] = mask[m]
            total = total + mask[m] * self._elbo(x, mu, logvar, alone)
        return total

    def _elbo(self, x: Batch, mu: torch.Tensor, logvar: torch.Tensor, mask: torch.Tensor):
        q_mu, q_logvar = product_of_experts(mu, logvar, mask, prior=True)
        z = draw(q_mu, q_logvar)
        return self.reconstruction(z, x, mask) + self.kl(q_mu, q_logvar)
