"""Decoder heads p(x|z): the loss is each head's negative log-likelihood in nats.

Every head reads its parameters from the decoder's output laid out as (P, D) flattened, where D is
the number of data columns it models and P its parameters per column. `Mixed` routes the blocks of a
tabular row (real, binary, each categorical) to their own heads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from fds.data.codec import Block
from fds.errors import ConfigError

_LOG_2PI = math.log(2 * math.pi)


class Likelihood(nn.Module):
    """Interface: `params_per_dim`, and nll/mean/sample over a batch of decoder outputs."""

    params_per_dim = 1

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    @property
    def n_params(self) -> int:
        return self.params_per_dim * self.dim

    def split(self, params: torch.Tensor) -> torch.Tensor:
        return params.view(len(params), self.params_per_dim, self.dim)

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Per-example negative log-likelihood, summed over columns: shape [batch]."""
        raise NotImplementedError

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        raise NotImplementedError

    def relaxed(self, params: torch.Tensor, temperature: float) -> torch.Tensor:
        """A draw that gradients flow through: reparameterised for real values, Gumbel-softmax
        (Jang et al. 2017; Maddison et al. 2017) at `temperature` for categories and binaries.
        What a critic of decoded rows sees (CTGAN does the same for its categories)."""
        raise NotImplementedError


class Bernoulli(Likelihood):
    """Binary columns, or pixels in [0, 1] read as probabilities (the classic image VAE loss)."""

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return F.binary_cross_entropy_with_logits(params, x, reduction="none").sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(params)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return torch.bernoulli(torch.sigmoid(params), generator=generator)

    def relaxed(self, params: torch.Tensor, temperature: float) -> torch.Tensor:
        u = torch.rand_like(params).clamp(1e-6, 1 - 1e-6)
        return torch.sigmoid((params + u.log() - (-u).log1p()) / temperature)


class Gaussian(Likelihood):
    """Fixed σ: the NLL is MSE / (2σ²) plus a constant, so σ = 1 is "MSE" with honest units."""

    def __init__(self, dim: int, scale: float = 1.0) -> None:
        super().__init__(dim)
        self.scale = scale
        self._log_norm = math.log(scale) + 0.5 * _LOG_2PI

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return (0.5 * ((x - params) / self.scale) ** 2 + self._log_norm).sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return params

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        noise = torch.randn(params.shape, generator=generator, dtype=params.dtype)
        return params + self.scale * noise

    def relaxed(self, params: torch.Tensor, temperature: float) -> torch.Tensor:
        return params + self.scale * torch.randn_like(params)


DEFAULT_FLOOR = 1e-3


class GaussianLearned(Likelihood):
    """Heteroscedastic Gaussian: the decoder predicts a mean and a scale per column.

    σ = softplus(raw) + floor: it can neither vanish nor blow the NLL up. On a column holding few
    distinct values (integers) a tiny floor lets σ collapse onto them and the NLL spike."""

    params_per_dim = 2

    def __init__(self, dim: int, floor: float = DEFAULT_FLOOR) -> None:
        super().__init__(dim)
        self.floor = floor

    def _scale(self, raw: torch.Tensor) -> torch.Tensor:
        return F.softplus(raw) + self.floor

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        mean, raw = self.split(params).unbind(1)
        scale = self._scale(raw)
        return (0.5 * ((x - mean) / scale) ** 2 + scale.log() + 0.5 * _LOG_2PI).sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return self.split(params)[:, 0]

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        mean, raw = self.split(params).unbind(1)
        return mean + self._scale(raw) * torch.randn(
            mean.shape, generator=generator, dtype=mean.dtype
        )

    def relaxed(self, params: torch.Tensor, temperature: float) -> torch.Tensor:
        mean, raw = self.split(params).unbind(1)
        return mean + self._scale(raw) * torch.randn_like(mean)


class MixtureOfGaussians(GaussianLearned):
    """K-component Gaussian mixture per column (a mixture density network output): multimodal columns."""

    def __init__(self, dim: int, components: int, floor: float = DEFAULT_FLOOR) -> None:
        super().__init__(dim, floor)
        self.components = components
        self.params_per_dim = 3 * components

    def _parts(self, params: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, means, raw = params.view(len(params), 3, self.components, self.dim).unbind(1)
        return F.log_softmax(logits, dim=1), means, self._scale(raw)

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        log_w, means, scales = self._parts(params)
        z = (x.unsqueeze(1) - means) / scales
        log_comp = -0.5 * z**2 - scales.log() - 0.5 * _LOG_2PI
        return -torch.logsumexp(log_w + log_comp, dim=1).sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        log_w, means, _ = self._parts(params)
        return (log_w.exp() * means).sum(1)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        log_w, means, scales = self._parts(params)
        probs = log_w.exp().permute(0, 2, 1).reshape(-1, self.components)
        pick = torch.multinomial(probs, 1, generator=generator).view(len(params), 1, self.dim)
        mean, scale = means.gather(1, pick)[:, 0], scales.gather(1, pick)[:, 0]
        return mean + scale * torch.randn(mean.shape, generator=generator, dtype=mean.dtype)

    def relaxed(self, params: torch.Tensor, temperature: float) -> torch.Tensor:
        log_w, means, scales = self._parts(params)
        pick = F.gumbel_softmax(log_w, tau=temperature, dim=1)  # a soft choice of component
        return (pick * (means + scales * torch.randn_like(means))).sum(1)


class Categorical(Likelihood):
    """One categorical column, one-hot in the data; `dim` is the number of categories."""

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -(x * F.log_softmax(params, dim=-1)).sum(-1)

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return F.softmax(params, dim=-1)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        pick = torch.multinomial(F.softmax(params, dim=-1), 1, generator=generator)
        return F.one_hot(pick[:, 0], self.dim).to(params.dtype)

    def relaxed(self, params: torch.Tensor, temperature: float) -> torch.Tensor:
        return F.gumbel_softmax(params, tau=temperature, dim=-1)


class Mixed(Likelihood):
    """A tabular row: each block of columns goes to its own head; NLLs add up."""

    def __init__(self, blocks: list[Block], heads: list[Likelihood]) -> None:
        super().__init__(blocks[-1].stop)
        self.blocks = blocks
        self.heads = nn.ModuleList(heads)
        offsets = [0]
        for head in heads:
            offsets.append(offsets[-1] + head.n_params)
        self.offsets = offsets

    @property
    def n_params(self) -> int:
        return self.offsets[-1]

    def _each(self, params: torch.Tensor):
        for i, (block, head) in enumerate(zip(self.blocks, self.heads, strict=True)):
            yield block, head, params[:, self.offsets[i] : self.offsets[i + 1]]

    def nll(self, params: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return sum(head.nll(p, x[:, b.start : b.stop]) for b, head, p in self._each(params))

    def nll_per_block(self, params: torch.Tensor, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {b.name: head.nll(p, x[:, b.start : b.stop]) for b, head, p in self._each(params)}

    def mean(self, params: torch.Tensor) -> torch.Tensor:
        return torch.cat([head.mean(p) for _, head, p in self._each(params)], dim=1)

    def sample(
        self, params: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        return torch.cat([head.sample(p, generator) for _, head, p in self._each(params)], dim=1)

    def relaxed(self, params: torch.Tensor, temperature: float) -> torch.Tensor:
        return torch.cat([head.relaxed(p, temperature) for _, head, p in self._each(params)], 1)


def real_head(
    kind: str, dim: int, *, scale: float, components: int, floor: float = DEFAULT_FLOOR
) -> Likelihood:
    """The head for real-valued columns or pixels, by its config name; `floor`: the least σ of
    the learned heads."""
    if kind == "bernoulli":
        return Bernoulli(dim)
    if kind == "gaussian":
        return Gaussian(dim, scale)
    if kind == "mixture":
        return MixtureOfGaussians(dim, components, floor)
    if kind == "gaussian_learned":
        return GaussianLearned(dim, floor)
    raise ConfigError(
        f"unknown likelihood {kind!r}; valid: bernoulli, gaussian, gaussian_learned, mixture"
    )


def build_likelihood(
    blocks: list[Block], real: str, *, scale: float, components: int, floor: float = DEFAULT_FLOOR
) -> Likelihood:
    """One head per block; a single block needs no routing."""
    heads: list[Likelihood] = []
    for block in blocks:
        if block.kind == "real":
            heads.append(
                real_head(real, block.width, scale=scale, components=components, floor=floor)
            )
        elif block.kind == "binary":
            heads.append(Bernoulli(block.width))
        else:
            heads.append(Categorical(block.width))
    return heads[0] if len(heads) == 1 else Mixed(blocks, heads)
