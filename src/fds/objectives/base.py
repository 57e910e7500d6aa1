"""The loss-term protocol: what a term declares so that the model can sum it, DP-SGD can check it
and the Trainer can build its optimizer, without any of them naming the term.

A term is a `LossTerm` value in its own module, listed once in `fds.objectives.registry.TERMS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import nn

from fds.nn.likelihoods import Likelihood
from fds.nn.posteriors import PosteriorSample
from fds.objectives.attributes import AttributeSpec

if TYPE_CHECKING:
    from fds.config import FDSConfig

# gaussian: a posterior with a density (config.posterior == "gaussian"); private_block:
# config.private_dim > 0; labels: the batch's sensitive attributes `s` (the term is left out of
# a batch that comes without them).
Need = Literal["gaussian", "private_block", "labels"]


@dataclass(frozen=True)
class DataLayout:
    """What a term needs to know of the data: the encoded row's width, for images their (C, H, W)
    and whether the model's networks are convolutional, and for a table the encoded slots of each
    `mmd_given` column (its first part: one slot for a number, the one-hot slots of a category)."""

    width: int
    image_chw: tuple[int, int, int] | None = None
    convolutional: bool = False
    given_slots: tuple[tuple[int, ...], ...] = ()


@dataclass(frozen=True)
class TermInputs:
    """One batch as the terms see it."""

    config: FDSConfig
    post: PosteriorSample  # codes of the (possibly corrupted) batch
    s: torch.Tensor | None  # sensitive attributes [batch, n_attributes]: class or standardized
    attributes: Sequence[AttributeSpec]
    dataset_size: int
    networks: Mapping[str, nn.Module]  # the terms' networks, by `Network.name`
    x: torch.Tensor  # the clean batch (the reconstruction's target)
    decoded: torch.Tensor  # the decoder's output for `post.z` (the likelihood's parameters)
    decode: Callable[[torch.Tensor], torch.Tensor]  # codes → the decoder's output
    encoder: nn.Module  # the model's encoder (`swap_invariance` reads its public block alone)
    likelihood: Likelihood
    layout: DataLayout

    def blocks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(public, private) blocks of the posterior means: what `transform` shares and keeps."""
        cut = self.config.public_dim
        return self.post.mean[:, :cut], self.post.mean[:, cut:]


@dataclass(frozen=True)
class Network:
    """A network a term trains beside the autoencoder; saved with the model's weights."""

    name: str  # the model's attribute, so the prefix of its weights in model files and checkpoints
    build: Callable[[FDSConfig, Sequence[AttributeSpec], DataLayout], nn.Module]


@dataclass(frozen=True)
class OptimizerGroup:
    """A term's network trained by its own optimizer on its own loss (not part of `loss`)."""

    name: str  # the optimizer's name in the Trainer and in checkpoints, and its loss's key
    loss: Callable[[TermInputs], torch.Tensor]  # a scalar
    # The one line DP-SGD refuses it with: the network would see the data without clipping or noise.
    dp_refusal: str
    lr_scale: float = 1.0  # times the main learning rate (schedule included)
    betas: tuple[float, float] = (0.9, 0.999)  # Adam's


@dataclass(frozen=True)
class LossTerm:
    """One weighted term of the objective.

    `value(inputs, weight)` returns the weighted term: one value per example ([batch]) when
    `per_example`, else a scalar for the batch. `weight` is the config's `weight` field times the
    warm-up factor of the `warmup` field; most terms multiply by it (gradient reversal scales the
    reversed gradient by it instead).
    """

    name: str  # its key in `loss_terms` and in the log (train_<name>)
    weight: str  # the config field holding its weight: 0 leaves the term out
    value: Callable[[TermInputs, float], torch.Tensor]
    reads: tuple[str, ...] = ()  # the other config fields it reads
    needs: frozenset[Need] = frozenset()
    # Further config conditions for the term to be part of the model (its network included).
    when: Callable[[FDSConfig], bool] | None = None
    per_example: bool = True  # False: a batch statistic, which DP-SGD cannot clip per example
    couples_when: str | None = None  # a config field that, when set, couples the batch anyway
    warmup: str | None = None  # a config field of epochs over which the weight ramps up from 0
    network: Network | None = None
    optimizer: OptimizerGroup | None = None

    def __post_init__(self) -> None:
        if self.optimizer is not None and self.network is None:
            raise TypeError(f"term {self.name}: an optimizer group needs the network it trains")

    def applies(self, config: FDSConfig) -> bool:
        """Whether a model with `config` has this term (and its network and optimizer group),
        whatever its weight."""
        if "gaussian" in self.needs and config.posterior != "gaussian":
            return False
        if "private_block" in self.needs and not config.private_dim:
            return False
        return self.when is None or self.when(config)

    def is_on(self, config: FDSConfig) -> bool:
        """Whether the term adds to the loss (given the labels it may need)."""
        return self.applies(config) and bool(getattr(config, self.weight))

    def weight_at(self, config: FDSConfig, epoch_progress: float | None) -> float:
        """The weight at this point of training (None: after any warm-up)."""
        weight = getattr(config, self.weight)
        if self.warmup is None or epoch_progress is None:
            return weight
        return weight * warmup_factor(epoch_progress, getattr(config, self.warmup))

    def batch_culprit(self, config: FDSConfig) -> str | None:
        """The config field that makes this term couple the examples of a batch, if any."""
        if not self.per_example:
            return self.weight
        if self.couples_when is not None and getattr(config, self.couples_when):
            return self.couples_when
        return None


def warmup_factor(epoch_progress: float, warmup_epochs: float) -> float:
    """Linear ramp from 0 to 1 over the first `warmup_epochs` epochs (KL annealing, Bowman et al.
    2016; DANN's censor ramp)."""
    if warmup_epochs <= 0:
        return 1.0
    return min(1.0, epoch_progress / warmup_epochs)
