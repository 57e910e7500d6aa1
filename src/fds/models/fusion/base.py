"""What every fusion model shares: one `Modality` per kind, the shared latent's width, the
experts of a batch, decoding, and the weighted reconstruction of the present modalities.

Batches are `x` (kind → encoded rows) and `mask` (M, N): 1 where record n has modality m, in
the order of `kinds`. Absent rows are zeros; every term multiplies them by 0.

With a key (`FusionKey`, fds.models.fusion.key) the code is [public | private]: the experts give
the public block (`public_dim` wide), the key the private block from the sensitive values s,
and every decoder reads both. `objective` adds the key's KL and the `mmd` penalty on the public
codes (each present modality's expert and the fusion of all present ones)."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from fds.models.fusion.experts import draw, kl_to_standard
from fds.models.fusion.key import FusionKey, public_mmd
from fds.models.fusion.modalities import Modality

__all__ = ["Batch", "Encoded", "FusionModel", "Key"]

Batch = dict[str, torch.Tensor]
Encoded = list[torch.Tensor] | None  # each modality's encoder output, when already computed
Key = torch.Tensor | None  # a draw of each record's private block (models with a key)


class FusionModel(nn.Module):
    """Subclasses define `fuse` (the code of the given modalities) and `loss` (per record)."""

    name: ClassVar[str]
    specific: ClassVar[bool] = False  # modality-specific latents beside the shared block

    def __init__(
        self,
        modalities: dict[str, Modality],
        latent_dim: int,
        specific_dim: int,
        beta: float,
        key: FusionKey | None = None,
        mmd: float = 0.0,
    ) -> None:
        super().__init__()
        self.modalities = nn.ModuleDict(modalities)
        self.kinds = list(modalities)
        self.latent_dim = latent_dim  # the decoders' shared input: [public | private]
        self.private_dim = key.private_dim if key is not None else 0
        self.public_dim = latent_dim - self.private_dim  # what the experts give
        self.specific_dim = specific_dim if self.specific else 0
        self.beta = beta
        self.key = key
        # the reconstruction sums each modality's NLL times its weight (hundreds for a narrow
        # table beside a spectrogram), so the MMD is weighed in the same units: mmd · Σ weights
        self.mmd = mmd * sum(modality.weight for modality in modalities.values())

    def encoded(self, x: Batch) -> list[torch.Tensor]:
        """Each modality's encoder output, laid out as [μ_shared, μ_own, logσ²_shared, logσ²_own]
        (the own parts only for models with modality-specific latents)."""
        return [self.modalities[kind].encoder(x[kind]) for kind in self.kinds]

    def experts(
        self, x: Batch, encoded: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, N, D) means and log-variances of the shared (public) latent, one expert per
        modality."""
        params = self.encoded(x) if encoded is None else encoded
        d, width = self.public_dim, self.public_dim + self.specific_dim
        mu = torch.stack([p[:, :d] for p in params])
        logvar = torch.stack([p[:, width : width + d] for p in params])
        return mu, logvar.clamp(-12, 8)

    def fuse(
        self,
        x: Batch,
        mask: torch.Tensor,
        sample: bool = False,
        encoded: Encoded = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The shared code of each record from the modalities `mask` marks: (z, log-variance);
        with a key, its public block only.

        `sample=False` gives the fused posterior's mean (for mixtures, with the components'
        mean log-variance as a summary)."""
        raise NotImplementedError

    def loss(
        self,
        x: Batch,
        mask: torch.Tensor,
        key: Key = None,
        encoded: Encoded = None,
    ) -> torch.Tensor:
        """The negative ELBO-style objective per record: [batch]. `key`: a draw of each
        record's private block, appended to every code decoded (`with_key`)."""
        raise NotImplementedError

    def objective(
        self, x: Batch, mask: torch.Tensor, s: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The batch's training loss (scalar): the mean of `loss`; with a key, plus the key's
        KL and mmd · Σ modality weights · the MMD of the public codes between the sensitive
        groups of `s`."""
        encoded = self.encoded(x)
        if self.key is None:
            return self.loss(x, mask, None, encoded).mean()
        if s is None:
            raise ValueError("a fusion model with a key trains on the sensitive values s")
        k_mu, k_logvar = self.key(s)
        per_record = self.loss(x, mask, draw(k_mu, k_logvar), encoded) + self.kl(k_mu, k_logvar)
        if not self.mmd:
            return per_record.mean()
        mu, _ = self.experts(x, encoded)
        codes = [mu[m][mask[m] > 0] for m in range(len(self.kinds))]
        groups = [s[mask[m] > 0] for m in range(len(self.kinds))]
        codes.append(self.fuse(x, mask, encoded=encoded)[0])
        groups.append(s)
        specs = self.key.specs
        penalty = torch.stack(
            [public_mmd(c, g, specs) for c, g in zip(codes, groups, strict=True)]
        ).mean()
        return per_record.mean() + self.mmd * penalty

    def with_key(self, z: torch.Tensor, key: torch.Tensor | None) -> torch.Tensor:
        """The decoders' shared input [public | private]: a public code z with the key given,
        or the key's prior mean (zeros) when none is (a model without a key: z itself)."""
        if not self.private_dim or z.shape[1] == self.latent_dim:
            return z
        if key is None:
            key = z.new_zeros(len(z), self.private_dim)
        return torch.cat([z, key], 1)

    def reconstruction(self, z: torch.Tensor, x: Batch, mask: torch.Tensor) -> torch.Tensor:
        """Σ over the present modalities of weight · NLL from shared code z."""
        total = torch.zeros(len(z))
        for m, kind in enumerate(self.kinds):
            modality = self.modalities[kind]
            total = total + mask[m] * modality.weight * modality.nll(self.full(z, m), x[kind])
        return total

    def full(self, z: torch.Tensor, m: int, specific: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder input of modality m: z, with its specific latent appended (prior mean
        unless given) for models that have one."""
        if not self.specific_dim:
            return z
        if specific is None:
            specific = torch.zeros(len(z), self.specific_dim)
        return torch.cat([z, specific], 1)

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        return self.beta * kl_to_standard(mu, logvar)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, kind: str, specific: torch.Tensor | None = None):
        """Modality `kind` decoded from shared codes z (its specific latent at the prior mean;
        with a key, z may be the public block alone: the key then sits at its prior mean)."""
        m = self.kinds.index(kind)
        return self.modalities[kind].generate(self.full(self.with_key(z, None), m, specific))

    def own_mean(self, x: Batch, kind: str) -> torch.Tensor | None:
        """The posterior mean of modality `kind`'s own latents (None: the model has none)."""
        return None

    @torch.no_grad()
    def reconstruct(self, x: Batch, kind: str) -> torch.Tensor:
        """Modality `kind` of batch x decoded from that modality alone: the shared code's mean
        and, for a model with own latents, their posterior mean (a reconstruction; `generate`
        from a shared code alone takes the own latents' prior mean instead)."""
        mask = torch.tensor([[float(k == kind)] for k in self.kinds]).expand(-1, len(x[kind]))
        z, _ = self.fuse(x, mask)
        return self.generate(z, kind, self.own_mean(x, kind))
