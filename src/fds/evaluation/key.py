"""How well the key works: pure functions of the decodings a model with a private block gives.

Four decodings of the same held-out records are compared: keyed (public + own private block),
public-only (a neutral key, or keys drawn from their distribution), and swapped (the public
block with a donor's private block, the donor chosen with another value of the attribute).

- images: a small convolutional classifier fitted on real images reads the sensitive attribute
  from each decoding; the position of the drawing (centre of pixel mass) tells what survives.
- tables: the decoded sensitive column is read directly; the other columns tell what survives.

Every number is a plain Python float (or None when undefined), so results dump to strict JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from fds.runtime.concurrent import seeded_torch

__all__ = [
    "ImageDecodings",
    "TableDecodings",
    "fit_image_classifier",
    "image_key_figures",
    "position_r2",
    "sprite_positions",
    "sprite_sizes",
    "swap_donors",
    "table_key_figures",
]

# The attribute classifier: small, because it is fitted inside `fds evaluate` and the quickstart
# (on 4 000 shapes sprites: 0.995 held-out accuracy in 4 epochs, about 4 s on one core).
CLASSIFIER_CHANNELS = (8, 16, 32)
CLASSIFIER_EPOCHS = 4
CLASSIFIER_BATCH = 32
CLASSIFIER_LR = 3e-3
CLASSIFIER_SIDE = 32  # larger images are average-pooled to about this side first


@dataclass(frozen=True)
class ImageDecodings:
    """Images as the model's codec encodes them: [n, C·H·W] floats in [0, 1]."""

    originals: np.ndarray
    keyed: np.ndarray
    public_neutral: np.ndarray  # the private block at the prior mean
    public_drawn: np.ndarray  # private blocks drawn from their distribution
    swapped: np.ndarray  # public block of row i, private block of row donors[i]


@dataclass(frozen=True)
class TableDecodings:
    """Rows in the table's own columns."""

    originals: pd.DataFrame
    keyed: pd.DataFrame
    public_neutral: pd.DataFrame
    public_drawn: pd.DataFrame
    swapped: pd.DataFrame


def swap_donors(s: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For every row, the index of a donor whose attribute differs (any other row when all
    rows share one value), so a swap that leaves the attribute unchanged cannot pass as one
    that moved it."""
    s = np.asarray(s)
    n = len(s)
    donors = np.empty(n, dtype=np.int64)
    for i in range(n):
        others = np.flatnonzero(s != s[i])
        if not len(others):
            others = np.delete(np.arange(n), i) if n > 1 else np.arange(n)
        donors[i] = others[rng.integers(len(others))]
    return donors


# --------------------------------------------------------------------------- images


def fit_image_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    chw: tuple[int, int, int],
    *,
    seed: int = 0,
    epochs: int = CLASSIFIER_EPOCHS,
) -> Callable[[np.ndarray], np.ndarray]:
    """A convolutional classifier of `labels` fitted on real `images` ([n, C·H·W] in [0, 1]);
    returns a function giving the predicted class of each image."""
    classes, y = np.unique(np.asarray(labels), return_inverse=True)
    with seeded_torch(seed):  # the initial weights; the batches draw from their own generator
        net = _classifier_net(chw, len(classes))
    optimizer = torch.optim.Adam(net.parameters(), lr=CLASSIFIER_LR)
    x = torch.as_tensor(images, dtype=torch.float32)
    target = torch.as_tensor(y, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), CLASSIFIER_BATCH):
            rows = order[start : start + CLASSIFIER_BATCH]
            loss = F.cross_entropy(net(x[rows]), target[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()

    @torch.no_grad()
    def predict(batch: np.ndarray) -> np.ndarray:
        z = torch.as_tensor(np.asarray(batch), dtype=torch.float32)
        picks = [net(part).argmax(1) for part in z.split(1024)]
        return classes[torch.cat(picks).numpy()]

    return predict


def _classifier_net(chw: tuple[int, int, int], n_classes: int) -> nn.Module:
    """3×3 convolutions with max pooling, then a global max: what a drawing is, wherever it is."""
    c, h, w = chw
    layers: list[nn.Module] = [nn.Unflatten(1, chw)]
    pool = min(h, w) // CLASSIFIER_SIDE
    if pool > 1:
        layers.append(nn.AvgPool2d(pool))
    for width in CLASSIFIER_CHANNELS:
        layers += [nn.Conv2d(c, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True)]
        c = width
    layers += [nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(c, n_classes)]
    return nn.Sequential(*layers)


def sprite_positions(images: np.ndarray, chw: tuple[int, int, int]) -> np.ndarray:
    """Centre of pixel mass (row, column) of each image, as fractions of its height and width
    ([n, 2]); the centre of the frame for an empty image."""
    c, h, w = chw
    mass = np.asarray(images, dtype=np.float64).reshape(len(images), c, h, w).sum(1)
    total = mass.sum((1, 2))
    rows = (mass.sum(2) * (np.arange(h) + 0.5)).sum(1) / h
    cols = (mass.sum(1) * (np.arange(w) + 0.5)).sum(1) / w
    empty = total <= 1e-9
    safe = np.where(empty, 1.0, total)
    return np.where(empty[:, None], 0.5, np.stack([rows / safe, cols / safe], axis=1))


def sprite_sizes(images: np.ndarray, chw: tuple[int, int, int]) -> np.ndarray:
    """Radius of gyration of each image's pixel mass, as a fraction of its smaller side ([n, 1]):
    how large the drawing is (a square and a triangle of one scale differ by about a tenth)."""
    c, h, w = chw
    mass = np.asarray(images, dtype=np.float64).reshape(len(images), c, h, w).sum(1)
    total = np.maximum(mass.sum((1, 2)), 1e-9)
    centre = sprite_positions(images, chw)
    rows = (np.arange(h) + 0.5)[None, :, None] / h - centre[:, 0, None, None]
    cols = (np.arange(w) + 0.5)[None, None, :] / w - centre[:, 1, None, None]
    spread = (mass * ((rows * h) ** 2 + (cols * w) ** 2)).sum((1, 2)) / total
    return (np.sqrt(spread) / min(h, w))[:, None]


def position_r2(reference: np.ndarray, decoded: np.ndarray) -> float | None:
    """R² of the decoded positions (or sizes) against the reference ones (1 − residual / total
    sum of squares over all coordinates): 1 when every drawing sits where the reference's does."""
    total = float(((reference - reference.mean(0)) ** 2).sum())
    if total <= 0:
        return None
    return 1.0 - float(((decoded - reference) ** 2).sum()) / total


def _share(values: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(np.asarray(values) == np.asarray(target)))


def _majority(s: np.ndarray) -> float:
    _, counts = np.unique(s, return_counts=True)
    return float(counts.max() / counts.sum())


def image_key_figures(
    decodings: ImageDecodings,
    s: np.ndarray,
    donors: np.ndarray,
    classify: Callable[[np.ndarray], np.ndarray],
    chw: tuple[int, int, int],
) -> dict[str, Any]:
    """The key's figures on images, for one sensitive attribute `s` of the decoded records.

    `classify` is a classifier fitted on real images (not these). Accuracies are shares of
    decodings the classifier gives the record's own attribute (the donor's for swaps)."""
    s = np.asarray(s)
    d = decodings
    on_originals = _share(classify(d.originals), s)
    keyed = _share(classify(d.keyed), s)
    positions = sprite_positions(d.originals, chw)
    sizes = sprite_sizes(d.originals, chw)
    swapped_to = classify(d.swapped)
    return {
        "keyed_fidelity": {
            "reconstruction_mse": float(np.mean((d.keyed - d.originals) ** 2)),
            "attribute_accuracy": keyed,
            "attribute_accuracy_originals": on_originals,
            "attribute_ratio": keyed / on_originals if on_originals > 0 else None,
            "position_r2": position_r2(positions, sprite_positions(d.keyed, chw)),
            "size_r2": position_r2(sizes, sprite_sizes(d.keyed, chw)),
        },
        "public_only_attribute_accuracy": _share(classify(d.public_neutral), s),
        "public_only_drawn_attribute_accuracy": _share(classify(d.public_drawn), s),
        "public_only_position_r2": position_r2(positions, sprite_positions(d.public_neutral, chw)),
        "public_only_size_r2": position_r2(sizes, sprite_sizes(d.public_neutral, chw)),
        "majority": _majority(s),
        "swap_success": _share(swapped_to, s[donors]),
        "swap_kept_own_attribute": _share(swapped_to, s),
        "swap_keeps": {
            "position_r2": position_r2(positions, sprite_positions(d.swapped, chw)),
            "size_r2": position_r2(sizes, sprite_sizes(d.swapped, chw)),
        },
        "n_rows": len(s),
    }


# --------------------------------------------------------------------------- tables


def _agreement(a: pd.Series, b: pd.Series) -> float | None:
    """Share of equal values for categories; R² of `b` against `a` for numbers."""
    if pd.api.types.is_numeric_dtype(a.dtype) and not pd.api.types.is_bool_dtype(a.dtype):
        x, y = a.to_numpy(np.float64), b.to_numpy(np.float64)
        total = float(((x - x.mean()) ** 2).sum())
        return None if total <= 0 else 1.0 - float(((y - x) ** 2).sum()) / total
    return _share(a.astype(str).to_numpy(), b.astype(str).to_numpy())


def _distribution(values: pd.Series, classes: Sequence[Any]) -> dict[str, float]:
    counts = values.astype(str).value_counts(normalize=True)
    return {str(c): float(counts.get(str(c), 0.0)) for c in classes}


def table_key_figures(
    decodings: TableDecodings,
    sensitive: str,
    donors: np.ndarray,
    reconstruction_mse: float | None = None,
) -> dict[str, Any]:
    """The key's figures on a table, for its sensitive column `sensitive`.

    `swap_keeps` compares every other column of the swapped rows with the same rows decoded
    with their own key, so it measures what the swap changes, not the reconstruction error."""
    d = decodings
    real = d.originals[sensitive].reset_index(drop=True)
    s = real.astype(str).to_numpy()
    classes = sorted(real.astype(str).unique())
    marginal = _distribution(real, classes)
    drawn = _distribution(d.public_drawn[sensitive], classes)
    others = [c for c in d.originals.columns if c != sensitive]
    keeps = {
        str(c): _agreement(d.keyed[c].reset_index(drop=True), d.swapped[c].reset_index(drop=True))
        for c in others
    }
    kept = [v for v in keeps.values() if v is not None]
    return {
        "keyed_fidelity": {
            "reconstruction_mse": reconstruction_mse,
            "attribute_accuracy": _share(d.keyed[sensitive].astype(str).to_numpy(), s),
        },
        "public_only_attribute_accuracy": _share(
            d.public_neutral[sensitive].astype(str).to_numpy(), s
        ),
        "public_only_drawn_attribute_accuracy": _share(
            d.public_drawn[sensitive].astype(str).to_numpy(), s
        ),
        "majority": _majority(s),
        "marginal": marginal,
        "public_only_drawn_distribution": drawn,
        "public_only_drawn_marginal_gap": max(abs(drawn[c] - marginal[c]) for c in classes),
        "swap_success": _share(d.swapped[sensitive].astype(str).to_numpy(), s[donors]),
        "swap_keeps": {
            "mean_agreement": float(np.mean(kept)) if kept else None,
            "columns": keeps,
        },
        "n_rows": len(s),
    }
