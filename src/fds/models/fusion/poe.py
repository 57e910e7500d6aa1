"""`poe`: MVAE (Wu & Goodman 2018). The code of any subset is the product of its experts and
the prior. Sub-sampled training: the ELBO of all present modalities plus each single modality's
own ELBO (the paper's unimodal terms; its k extra random subsets are left out)."""

from __future__ import annotations

import torch

from fds.models.fusion.base import Batch, Encoded, FusionModel, Key
from fds.models.fusion.experts import draw, product_of_experts


class ProductOfExperts(FusionModel):
    name = "poe"

    def fuse(self, x: Batch, mask: torch.Tensor, sample: bool = False, encoded: Encoded = None):
        mu, logvar = product_of_experts(*self.experts(x, encoded), mask, prior=True)
        return (draw(mu, logvar) if sample else mu), logvar

    def loss(
        self, x: Batch, mask: torch.Tensor, key: Key = None, encoded: Encoded = None
    ) -> torch.Tensor:
        mu, logvar = self.experts(x, encoded)
        total = self._elbo(x, mu, logvar, mask, key)
        for m in range(len(self.kinds)):
            alone = torch.zeros_like(mask)
            alone[m] = mask[m]
            total = total + mask[m] * self._elbo(x, mu, logvar, alone, key)
        return total

    def _elbo(self, x: Batch, mu: torch.Tensor, logvar: torch.Tensor, mask: torch.Tensor, key: Key):
        q_mu, q_logvar = product_of_experts(mu, logvar, mask, prior=True)
        z = self.with_key(draw(q_mu, q_logvar), key)
        return self.reconstruction(z, x, mask) + self.kl(q_mu, q_logvar)
