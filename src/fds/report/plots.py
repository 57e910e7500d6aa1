"""Figures a person would rather look at than read: image grids and real-vs-synthetic columns."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd


def _show(ax: plt.Axes, image: np.ndarray) -> None:
    ax.imshow(
        image,
        cmap="gray" if image.ndim == 2 else None,
        vmin=0,
        vmax=255 if image.dtype == np.uint8 else 1,
    )
    ax.set_axis_off()


def image_grid(images: np.ndarray, path: Path, title: str, ncol: int = 10) -> Path:
    """A grid of (N,H,W[,C]) images."""
    nrow = math.ceil(len(images) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(ncol * 0.9, nrow * 0.9 + 0.4), squeeze=False)
    for ax, image in zip(
        axes.flat, list(images) + [None] * (nrow * ncol - len(images)), strict=True
    ):
        _show(ax, image) if image is not None else ax.set_axis_off()
    fig.suptitle(title)
    return _save(fig, path)


def reconstruction_grid(
    originals: np.ndarray, reconstructions: np.ndarray, path: Path, title: str
) -> Path:
    """Originals on the top row of each pair, reconstructions beneath."""
    n = len(originals)
    fig, axes = plt.subplots(2, n, figsize=(n * 0.9, 2.2), squeeze=False)
    for i in range(n):
        _show(axes[0, i], originals[i])
        _show(axes[1, i], reconstructions[i])
    axes[0, 0].set_title("original", fontsize=7, loc="left")
    axes[1, 0].set_title("reconstruction", fontsize=7, loc="left")
    fig.suptitle(title)
    return _save(fig, path)


def column_comparison(real: pd.DataFrame, synthetic: pd.DataFrame, path: Path, title: str) -> Path:
    """Per column: overlaid histograms (numeric) or side-by-side frequencies (categorical)."""
    columns = list(real.columns)
    ncol = min(4, len(columns))
    nrow = math.ceil(len(columns) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(ncol * 3, nrow * 2.4), squeeze=False)
    for ax, name in zip(axes.flat, columns, strict=False):
        r, s = real[name].dropna(), synthetic[name].dropna()
        if (
            pd.api.types.is_numeric_dtype(r.dtype)
            and not pd.api.types.is_bool_dtype(r.dtype)
            and r.nunique() > 10
        ):
            bins = np.histogram_bin_edges(r.to_numpy(dtype=float), bins=30)
            ax.hist(r, bins=bins, alpha=0.5, density=True, label="real")
            ax.hist(
                s.clip(bins[0], bins[-1]), bins=bins, alpha=0.5, density=True, label="synthetic"
            )
        else:
            freq = pd.DataFrame(
                {
                    "real": r.astype(str).value_counts(normalize=True),
                    "synthetic": s.astype(str).value_counts(normalize=True),
                }
            ).fillna(0)
            freq.head(12).plot.bar(ax=ax, legend=False, rot=45)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(columns) :]:
        ax.set_axis_off()
    axes.flat[0].legend(fontsize=7)
    fig.suptitle(title)
    return _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
