"""The privacy term of a split latent (the "key"): the private block is trained to carry the
sensitive attributes and the public block to carry none of them.

Pure functions of tensors plus the small heads the model owns (so they are saved with its
weights): a supervised head on the private block, an adversary head on the public block trained
either through a gradient reversal layer (Ganin & Lempitsky 2015) or by alternating updates, and
a between-block independence penalty. Categorical sensitive attributes use cross-entropy,
continuous ones a squared error on their standardized value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fds.nn.mlp import mlp

HEAD_HIDDEN = (128, 128)
# The alternating adversary learns this many times faster than the autoencoder, so it stays close
# to the best attacker of the current code (a lagging adversary is easy to fool, a real one not).
ADVERSARY_LR_SCALE = 5.0


@dataclass(frozen=True)
class AttributeSpec:
    """One sensitive attribute as the heads see it: `n_out` logits (categorical) or 1 value."""

    name: str
    kind: str  # "categorical" | "continuous"
    n_classes: int = 0

    @property
    def n_out(self) -> int:
        return self.n_classes if self.kind == "categorical" else 1

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "n_classes": self.n_classes}


class _Reverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.scale * grad, None


def reverse_gradient(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    """Identity forward, gradient multiplied by −`scale` backward: the head below it learns to
    predict while everything above it learns to make the prediction fail."""
    return _Reverse.apply(x, scale)


class AttributeHeads(nn.Module):
    """One small MLP per sensitive attribute, reading a latent block."""

    def __init__(
        self, n_in: int, specs: list[AttributeSpec], hidden: tuple[int, ...] = HEAD_HIDDEN
    ) -> None:
        super().__init__()
        self.specs = list(specs)
        self.heads = nn.ModuleList(mlp(n_in, hidden, spec.n_out) for spec in self.specs)

    def forward(self, z: torch.Tensor) -> list[torch.Tensor]:
        return [head(z) for head in self.heads]


def attribute_nll(
    outputs: list[torch.Tensor], s: torch.Tensor, specs: list[AttributeSpec]
) -> torch.Tensor:
    """Per-example loss [batch] of predicting every attribute in `s` [batch, n_attributes]
    (class indices or standardized values): cross-entropy or half squared error, summed."""
    total = s.new_zeros(len(s))
    for j, (out, spec) in enumerate(zip(outputs, specs, strict=True)):
        if spec.kind == "categorical":
            total = total + F.cross_entropy(out, s[:, j].long(), reduction="none")
        else:
            total = total + 0.5 * (out[:, 0] - s[:, j]).pow(2)
    return total


def confusion_loss(
    outputs: list[torch.Tensor], s: torch.Tensor, specs: list[AttributeSpec]
) -> torch.Tensor:
    """Per-example loss [batch] the encoder minimises in `alternating` mode: the adversary's
    predictions pulled to the batch's class frequencies (nothing learned beyond the base rate)
    and, for continuous attributes, to the batch mean. Unlike maximising the adversary's
    cross-entropy, this has its minimum at "no information", not at "confidently wrong"."""
    total = s.new_zeros(len(s))
    for j, (out, spec) in enumerate(zip(outputs, specs, strict=True)):
        if spec.kind == "categorical":
            prior = F.one_hot(s[:, j].long(), spec.n_classes).float().mean(0)
            total = total - (prior * F.log_softmax(out, dim=1)).sum(1)
        else:
            total = total + 0.5 * (out[:, 0] - s[:, j].mean()).pow(2)
    return total


def cross_covariance(public: torch.Tensor, private: torch.Tensor) -> torch.Tensor:
    """Squared Frobenius norm of the correlation matrix between the two blocks (scalar, couples
    the batch): zero when no public coordinate is linearly related to a private one."""
    a = public - public.mean(0)
    b = private - private.mean(0)
    a = a / a.pow(2).mean(0).add(1e-8).sqrt()
    b = b / b.pow(2).mean(0).add(1e-8).sqrt()
    return (a.T @ b / len(a)).pow(2).sum()


def block_hsic(public: torch.Tensor, private: torch.Tensor) -> torch.Tensor:
    """Normalised HSIC (Gretton et al. 2005; CKA, Kornblith et al. 2019) between the two blocks,
    with a Gaussian kernel on each block (median bandwidth): in [0, 1], zero when the kernel sees
    no dependence, so it catches non-linear dependence and its weight does not depend on scale.
    Since the private block is trained to carry the sensitive attributes, this also pushes the
    public block's distribution to be the same for every value of them (as the MMD penalty of
    the variational fair autoencoder does, Louizos et al. 2016)."""
    if len(public) < 4:
        return public.new_zeros(())

    def centred_gram(x: torch.Tensor) -> torch.Tensor:
        d2 = torch.cdist(x, x).pow(2)
        k = torch.exp(-d2 / d2.detach().median().clamp_min(1e-6))
        return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()

    k, m = centred_gram(public), centred_gram(private)
    return (k * m).sum() / ((k * k).sum() * (m * m).sum()).sqrt().clamp_min(1e-12)


# Bandwidths of the MMD kernel, as multiples of the batch's median squared distance: a mixture of
# widths sees differences at several scales (Louizos et al. 2016 use several fixed widths; relative
# ones keep the penalty independent of the latent scale).
MMD_BANDWIDTHS = (0.1, 0.3, 1.0, 3.0, 10.0)
# A continuous attribute is compared across this many equal-count groups of the batch (quartiles).
MMD_CONTINUOUS_GROUPS = 4


def _groups(column: torch.Tensor, spec: AttributeSpec) -> torch.Tensor:
    """Group index per example: the class, or the batch quantile bin of a continuous value."""
    if spec.kind == "categorical":
        return column.long()
    edges = torch.quantile(column, torch.linspace(0, 1, MMD_CONTINUOUS_GROUPS + 1)[1:-1])
    return torch.bucketize(column.contiguous(), edges)


def group_mmd(public: torch.Tensor, s: torch.Tensor, specs: list[AttributeSpec]) -> torch.Tensor:
    """Squared MMD between the public codes of each sensitive group and those of the rest of the
    batch, averaged over groups and attributes (scalar, couples the batch): zero when the public
    block's distribution is the same whatever the attribute's value, which is what "no attacker
    beats the base rate" asks (the variational fair autoencoder's penalty, Louizos et al. 2016).
    Gaussian kernels at several widths relative to the median distance."""
    sq = public.pow(2).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2 * public @ public.T).clamp_min(
        0
    )  # no sqrt: finite grad at 0
    scale = d2.detach().median().clamp_min(1e-6)
    k = sum(torch.exp(-d2 / (scale * w)) for w in MMD_BANDWIDTHS) / len(MMD_BANDWIDTHS)
    penalties = []
    for j, spec in enumerate(specs):
        groups = _groups(s[:, j], spec)
        for g in groups.unique():
            inside = (groups == g).float()
            n_in = inside.sum()
            if n_in < 2 or n_in > len(inside) - 2:
                continue
            a, b = inside / n_in, (1 - inside) / (len(inside) - n_in)
            diff = a - b  # MMD² = (a−b)ᵀ K (a−b) for the two empirical distributions
            penalties.append(diff @ k @ diff)
    if not penalties:
        return public.new_zeros(())
    return torch.stack(penalties).mean()


def within_group_spread(
    private: torch.Tensor, s: torch.Tensor, specs: list[AttributeSpec]
) -> torch.Tensor:
    """Share of the private block's variance left within the groups of the sensitive attributes
    (scalar in [0, 1], couples the batch; 1 − R² of the group means): zero when the private block
    is a function of the attributes alone, so every other factor the decoder needs (a table's
    education, an image's position) has to go through the public block, where it stays useful."""
    key = torch.zeros(len(s), dtype=torch.long, device=s.device)
    for j, spec in enumerate(specs):
        groups = _groups(s[:, j], spec)
        key = key * (int(groups.max()) + 1) + groups
    _, key = key.unique(return_inverse=True)
    counts = torch.bincount(key).clamp_min(1).to(private.dtype)
    means = torch.zeros(len(counts), private.shape[1], dtype=private.dtype, device=private.device)
    means = means.index_add(0, key, private) / counts[:, None]
    within = (private - means[key]).pow(2).sum()
    total = (private - private.mean(0)).pow(2).sum().clamp_min(1e-8)
    return within / total
