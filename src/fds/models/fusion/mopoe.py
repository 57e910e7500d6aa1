"""`mopoe`: MoPoE-VAE (Sutter et al. 2021). The code is a mixture over every subset of the
present modalities of that subset's product of experts (no prior expert).

Per record: the KL term averages KL(q_S ‖ p) over the subsets S of its present modalities, and
one draw from the mixture (a uniformly chosen subset) reconstructs every present modality."""

from __future__ import annotations

import torch

from fds.data.multimodal.codec import subsets
from fds.models.fusion.base import Batch, Encoded, FusionModel, Key
from fds.models.fusion.experts import draw, pick_present, product_of_experts


class MixtureOfProducts(FusionModel):
    name = "mopoe"

    def fuse(self, x: Batch, mask: torch.Tensor, sample: bool = False, encoded: Encoded = None):
        """The mean: the product of all given experts (the mixture's largest subset, as MultiVae
        encodes); a draw: one subset of them, chosen uniformly."""
        mu, logvar = self.experts(x, encoded)
        if not sample:
            return product_of_experts(mu, logvar, mask, prior=False)
        q_mu, q_logvar, valid = self._subsets(mu, logvar, mask)
        pick, rows = pick_present(valid), torch.arange(mu.shape[1])
        return draw(q_mu[pick, rows], q_logvar[pick, rows]), q_logvar[pick, rows]

    def _subsets(self, mu: torch.Tensor, logvar: torch.Tensor, mask: torch.Tensor):
        """(S, N, D) products of every subset, and (S, N) whether a record has all of S."""
        q_mus, q_logvars, valid = [], [], []
        for subset in subsets(range(len(self.kinds))):
            member = torch.zeros(len(self.kinds), 1)
            member[list(subset)] = 1.0
            q_mu, q_logvar = product_of_experts(mu, logvar, mask * member, prior=False)
            q_mus.append(q_mu)
            q_logvars.append(q_logvar)
            valid.append(mask[list(subset)].prod(0))
        return torch.stack(q_mus), torch.stack(q_logvars), torch.stack(valid)

    def loss(
        self, x: Batch, mask: torch.Tensor, key: Key = None, encoded: Encoded = None
    ) -> torch.Tensor:
        mu, logvar = self.experts(x, encoded)
        q_mu, q_logvar, valid = self._subsets(mu, logvar, mask)
        kl = torch.stack([self.kl(a, b) for a, b in zip(q_mu, q_logvar, strict=True)])
        kl = (kl * valid).sum(0) / valid.sum(0).clamp_min(1)
        pick, rows = pick_present(valid), torch.arange(mu.shape[1])
        z = self.with_key(draw(q_mu[pick, rows], q_logvar[pick, rows]), key)
        return self.reconstruction(z, x, mask) + kl
