"""A feature space for judging generated images: a small CNN trained on real images.

Precision, recall, density and coverage (Naeem et al. 2020) are only as truthful as the space
their k-NN balls live in. In pixels, or in a PCA of them, a blurred image sits at the mean of its
class, inside every real ball, and scores as well as a sharp one. The field's practice is the
features of a network trained on real images of the domain: Inception for FID (Heusel et al.
2017), and for MNIST-like data a small classifier's penultimate layer. `ImageFeatures` is that
classifier: two convolutions (3×3, ReLU, 2×2 max pooling) and a hidden layer of 128 ReLUs, trained
with cross-entropy on the REAL training images and their labels (no download, no pretrained
weights), deterministic by seed. Its hidden layer is the feature space; edges and texture are what
its convolutions respond to, so blur moves an image out of the real balls.

Fit it once per data set and seed and reuse it for every model being compared (the benchmarks
do): the space is then the same for all of them.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import nn

from fds.errors import DataError
from fds.runtime.concurrent import seeded_torch

__all__ = ["ImageFeatures", "as_pixels"]

_CHANNELS = (32, 64)
_HIDDEN = 128
_BATCH = 64
_LEARNING_RATE = 1e-3


def as_pixels(images: ArrayLike, what: str) -> np.ndarray:
    """(N, H, W[, C]) uint8 or [0, 1] float images → (N, C, H, W) float32 in [0, 1]."""
    array = np.asarray(images)
    if array.ndim not in (3, 4):
        raise DataError(f"{what} must be images of shape (N, H, W[, C]), got {array.shape}")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{what} must be numeric, got dtype {array.dtype}")
    pixels = array.astype(np.float32)
    if array.dtype == np.uint8:
        pixels /= 255.0
    if not np.isfinite(pixels).all():
        raise DataError(f"{what} contain NaN or inf")
    pixels = pixels[:, None] if pixels.ndim == 3 else pixels.transpose(0, 3, 1, 2)
    return np.ascontiguousarray(np.clip(pixels, 0.0, 1.0))


class _Net(nn.Module):
    def __init__(self, chw: tuple[int, int, int], n_classes: int) -> None:
        super().__init__()
        c, h, w = chw
        layers: list[nn.Module] = []
        for out in _CHANNELS:
            layers += [nn.Conv2d(c, out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
            c, h, w = out, h // 2, w // 2
        self.body = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c * h * w, _HIDDEN), nn.ReLU())
        self.head = nn.Linear(_HIDDEN, n_classes)


class ImageFeatures:
    """A CNN classifier of real images whose hidden layer is the feature space (see module doc).

    ``fit(images, labels)`` trains it for `epochs` passes (Adam, batches of 64); the same seed and
    data give the same weights. Learned attributes: ``classes_`` and ``chw_``.
    """

    def __init__(self, seed: int = 0, epochs: int = 5) -> None:
        self.seed = seed
        self.epochs = epochs

    def fit(self, images: ArrayLike, labels: ArrayLike) -> ImageFeatures:
        pixels = as_pixels(images, "real images")
        y = np.asarray(labels)
        if y.shape != (len(pixels),):
            raise DataError(f"labels must have shape ({len(pixels)},), got {y.shape}")
        self.classes_, targets = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise DataError("the real images' labels hold a single class: no classifier to train")
        self.chw_ = tuple(pixels.shape[1:])
        if min(self.chw_[1:]) < 2 ** len(_CHANNELS):
            raise DataError(f"images of {self.chw_[1]}×{self.chw_[2]} pixels are too small")
        generator = torch.Generator().manual_seed(self.seed)
        with seeded_torch(self.seed):
            self.net_ = _Net(self.chw_, len(self.classes_))
        optimizer = torch.optim.Adam(self.net_.parameters(), lr=_LEARNING_RATE)
        x, t = torch.from_numpy(pixels), torch.from_numpy(targets.astype(np.int64))
        self.net_.train()
        for _ in range(self.epochs):
            for batch in torch.randperm(len(x), generator=generator).split(_BATCH):
                loss = nn.functional.cross_entropy(
                    self.net_.head(self.net_.body(x[batch])), t[batch]
                )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self.net_.eval()
        return self

    def _hidden(self, images: ArrayLike, what: str) -> torch.Tensor:
        pixels = as_pixels(images, what)
        if tuple(pixels.shape[1:]) != self.chw_:
            raise DataError(
                f"{what} have shape {pixels.shape[1:]} (C, H, W), the real images {self.chw_}"
            )
        with torch.no_grad():
            return torch.cat([self.net_.body(b) for b in torch.from_numpy(pixels).split(512)])

    def features(self, images: ArrayLike, what: str = "images") -> np.ndarray:
        """(N, 128) hidden-layer activations: the space PRDC compares real and fake in."""
        return self._hidden(images, what).numpy().astype(np.float64)

    def predict(self, images: ArrayLike, what: str = "images") -> np.ndarray:
        """The class each image is taken for (one of ``classes_``)."""
        with torch.no_grad():
            logits = self.net_.head(self._hidden(images, what))
        return self.classes_[logits.argmax(1).numpy()]
