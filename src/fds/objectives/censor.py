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
