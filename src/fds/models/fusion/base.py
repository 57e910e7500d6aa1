"""What every fusion model shares: one `Modality` per kind, the shared latent's width, the
experts of a batch, decoding, and the weighted reconstruction of the present modalities.

Batches are `x` (kind → encoded rows) and `mask` (M, N): 1 where record n has modality m, in
the order of `kinds`. Absent rows are zeros; every term multiplies them by 0."""

from __future__ import annotations

from typing import ClassVar

import torch
from torch import nn

from fds.models.fusion.experts import kl_to_standard
from fds.models.fusion.modalities import Modality

__all__ = ["Batch", "FusionModel"]

Batch = dict[str, torch.Tensor]


class FusionModel(nn.Module):
    """Subclasses define `fuse` (the code of the given modalities) and `loss` (per record)."""

    name: ClassVar[str]
    specific: ClassVar[bool] = False  # modality-specific latents beside the shared block

    def __init__(
        self, modalities: dict[str, Modality], latent_dim: int, specific_dim: int, beta: float
    ) -> None:
        super().__init__()
        self.modalities = nn.ModuleDict(modalities)
        self.kinds = list(modalities)
        self.latent_dim = latent_dim
        self.specific_dim = specific_dim if self.specific else 0
        self.beta = beta

    def encoded(self, x: Batch) -> list[torch.Tensor]:
        """Each modality's encoder output, laid out as [μ_shared, μ_own, logσ²_shared, logσ²_own]
        (the own parts only for models with modality-specific latents)."""
        return [self.modalities[kind].encoder(x[kind]) for kind in self.kinds]

    def experts(
        self, x: Batch, encoded: list[torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, N, D) means and log-variances of the shared latent, one expert per modality."""
        params = self.encoded(x) if encoded is None else encoded
        d, width = self.latent_dim, self.latent_dim + self.specific_dim
        mu = torch.stack([p[:, :d] for p in params])
        logvar = torch.stack([p[:, width : width + d] for p in params])
        return mu, logvar.clamp(-12, 8)

    def fuse(
        self, x: Batch, mask: torch.Tensor, sample: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The shared code of each record from the modalities `mask` marks: (z, log-variance).

        `sample=False` gives the fused posterior's mean (for mixtures, with the components'
        mean log-variance as a summary)."""
        raise NotImplementedError

    def loss(self, x: Batch, mask: torch.Tensor) -> torch.Tensor:
        """The negative ELBO-style objective per record: [batch]."""
        raise NotImplementedError

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
        """Modality `kind` decoded from shared codes z (its specific latent at the prior mean)."""
        m = self.kinds.index(kind)
        return self.modalities[kind].generate(self.full(z, m, specific))

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
