"""Where keys fall: a Gaussian per sensitive group, weighted by the group's share of the rows.

Decoding a public block with keys drawn from this mixture gives public-only records whose
sensitive attributes follow their marginal (a Gaussian prior would give whichever group sits
nearest its mean to nearly everyone). The mixture holds group means, covariances and shares of the
training rows' keys: statistics of the same kind as a codec's, no record's key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from fds.errors import ModelFormatError
from fds.objectives.attributes import AttributeSpec, attribute_groups

_RIDGE = 1e-4  # added to each covariance's diagonal: a group of identical keys stays drawable
TENSOR_NAMES = ("fitted.key_weights", "fitted.key_locs", "fitted.key_scale_trils")


@dataclass(frozen=True)
class KeyPrior:
    """A mixture of Gaussians over the private block: `weights` [G], `locs` [G, p],
    `scale_trils` [G, p, p] (Cholesky factors of the covariances)."""

    weights: torch.Tensor
    locs: torch.Tensor
    scale_trils: torch.Tensor

    @classmethod
    def fit(cls, keys: np.ndarray, groups: np.ndarray) -> KeyPrior:
        """One component per distinct value of `groups` (an integer per row)."""
        keys = np.asarray(keys, dtype=np.float64)
        labels, index, counts = np.unique(groups, return_inverse=True, return_counts=True)
        width = keys.shape[1]
        locs = np.zeros((len(labels), width))
        trils = np.zeros((len(labels), width, width))
        for g in range(len(labels)):
            rows = keys[index == g]
            locs[g] = rows.mean(0)
            cov = np.cov(rows.T).reshape(width, width) if len(rows) > 1 else np.zeros((width,) * 2)
            trils[g] = np.linalg.cholesky(cov + _RIDGE * np.eye(width))
        return cls(
            torch.from_numpy(counts / counts.sum()).float(),
            torch.from_numpy(locs).float(),
            torch.from_numpy(trils).float(),
        )

    @classmethod
    def gaussian(cls, loc: torch.Tensor, scale_tril: torch.Tensor) -> KeyPrior:
        """A single component (the model's own prior over the block)."""
        return cls(torch.ones(1), loc[None].float(), scale_tril[None].float())

    def mean(self) -> torch.Tensor:
        """The mixture's mean: one neutral key."""
        return (self.weights[:, None] * self.locs).sum(0)

    def sample(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        """`n` keys [n, p], drawn with `rng` (the caller decides fresh or seeded randomness)."""
        weights = self.weights.double().numpy()
        picks = rng.choice(len(weights), size=n, p=weights / weights.sum())
        noise = torch.from_numpy(rng.standard_normal((n, self.locs.shape[1]))).float()
        trils = self.scale_trils[torch.from_numpy(picks)]
        return self.locs[torch.from_numpy(picks)] + (trils @ noise[:, :, None])[:, :, 0]

    def tensors(self) -> dict[str, torch.Tensor]:
        return dict(zip(TENSOR_NAMES, (self.weights, self.locs, self.scale_trils), strict=True))

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], width: int) -> KeyPrior | None:
        """Pop the mixture's tensors from a model file's (a private block of `width`), checked
        so that drawing from them cannot fail; None when the file has none."""
        present = [name in tensors for name in TENSOR_NAMES]
        if not any(present):
            return None
        if not all(present):
            raise ModelFormatError("weights.safetensors holds part of the key prior, not all of it")
        weights, locs, trils = (tensors.pop(name).float() for name in TENSOR_NAMES)
        groups = len(weights)
        if (
            weights.ndim != 1
            or not groups
            or tuple(locs.shape) != (groups, width)
            or tuple(trils.shape) != (groups, width, width)
            or (weights < 0).any()
            or weights.sum() <= 0
        ):
            raise ModelFormatError(
                f"weights.safetensors: the key prior does not fit a private block of {width}"
            )
        return cls(weights, locs, trils)


def group_index(s: torch.Tensor, specs: Sequence[AttributeSpec]) -> np.ndarray:
    """One integer per row for the combination of its sensitive groups (classes, or quartiles
    of a continuous attribute over these rows)."""
    key = torch.zeros(len(s), dtype=torch.long)
    for j, spec in enumerate(specs):
        groups = attribute_groups(s[:, j], spec)
        key = key * (int(groups.max()) + 1) + groups
    return key.numpy()
