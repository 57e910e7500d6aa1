"""Figures a person would rather look at than read.

Two conventions: the functions that take a `path` (`image_grid`, `reconstruction_grid`,
`column_comparison`) write a PNG file and return its path; every function ending in `_png` returns
the PNG as bytes, for the self-contained HTML report (`png_data_uri` turns them into a `data:` URI).
All are pure functions of arrays: the caller encodes, decodes and samples.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from fds.errors import DataError
from fds.rundir import atomic_write

__all__ = [
    "column_comparison",
    "column_comparison_png",
    "figure_to_base64",
    "figure_to_png",
    "image_grid",
    "image_grid_png",
    "latent_map_png",
    "latent_traversal_png",
    "mi_heatmap_png",
    "png_data_uri",
    "reconstruction_grid",
    "reconstruction_grid_png",
    "table_traversal_png",
    "training_curves_png",
]

_DPI = 100
_NOT_TERMS = {"epoch", "step", "lr", "seconds"}  # metrics.jsonl keys that are not loss terms
_TSNE_ITERATIONS = 500  # enough for a picture; sklearn's 1000 doubles the report's time
_MAX_CATEGORIES = 20  # colour by category up to this many levels, else by a colour scale


# --------------------------------------------------------------------------- output


def figure_to_png(fig: plt.Figure) -> bytes:
    """The figure as PNG bytes (closed afterwards). No metadata, so equal figures give equal bytes."""
    fig.tight_layout()
    return _png(fig)


def _png(fig: plt.Figure) -> bytes:
    """PNG bytes of a figure already laid out (no second tight_layout)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=_DPI, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def figure_to_base64(fig: plt.Figure) -> str:
    """The figure as a base64-encoded PNG (closed afterwards)."""
    return base64.b64encode(figure_to_png(fig)).decode("ascii")


def png_data_uri(png: bytes) -> str:
    """A `data:image/png;base64,…` URI, so an HTML page carries the image inside itself."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _save(fig: plt.Figure, path: Path, *, laid_out: bool = False) -> Path:
    """Write the figure to `path` atomically (closed afterwards); `laid_out`: its Axes are
    placed already, no tight_layout."""
    if not laid_out:
        fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110))
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------- images


_GAP = 2  # white pixels between the images of a mosaic


def _as_unit(image: np.ndarray) -> np.ndarray:
    """An (H, W[, C]) image as floats in [0, 1] (uint8 images are 0–255)."""
    image = np.asarray(image)
    scale = 255.0 if image.dtype == np.uint8 else 1.0
    return np.clip(image.astype(np.float64) / scale, 0.0, 1.0)


def _mosaic(rows: Sequence[Sequence[np.ndarray | None]], label_gap: int = 0) -> np.ndarray:
    """Rows of images (None: an empty cell) tiled into one white-bordered array, `label_gap`
    extra white pixels above each row for its label. A figure draws it with one imshow: one
    Axes per image (100 for a 10 × 10 grid) took about a second to lay out and draw."""
    units = [[None if image is None else _as_unit(image) for image in row] for row in rows]
    cells = [cell for row in units for cell in row if cell is not None]
    h, w = cells[0].shape[:2]
    colour = any(cell.ndim == 3 for cell in cells)
    channels = max((cell.shape[2] for cell in cells if cell.ndim == 3), default=1)
    ncol = max(len(row) for row in rows)
    step_y, step_x = h + _GAP + label_gap, w + _GAP
    shape = (len(rows) * step_y + _GAP, ncol * step_x + _GAP)
    canvas = np.ones(shape + ((channels,) if colour else ()))
    for r, row in enumerate(units):
        for c, cell in enumerate(row):
            if cell is None:
                continue
            if colour and cell.ndim == 2:
                cell = np.repeat(cell[..., None], channels, axis=2)
            top, left = r * step_y + _GAP + label_gap, c * step_x + _GAP
            canvas[top : top + h, left : left + w] = cell
    return canvas


def _mosaic_axes(fig: plt.Figure, canvas: np.ndarray, rect: Sequence[float]) -> plt.Axes:
    """One Axes at `rect` (figure fractions) showing `canvas` pixel for pixel."""
    ax = fig.add_axes(rect)
    ax.imshow(canvas, cmap="gray" if canvas.ndim == 2 else None, vmin=0, vmax=1)
    ax.set_axis_off()
    return ax


def _row_top(r: int, h: int, label_gap: int) -> int:
    """The mosaic's pixel row where row `r`'s label gap starts."""
    return r * (h + _GAP + label_gap) + _GAP


def _image_grid_figure(images: np.ndarray, title: str, ncol: int) -> plt.Figure:
    ncol = max(1, min(ncol, len(images)))
    nrow = math.ceil(len(images) / ncol)
    rows = [list(images[r * ncol : (r + 1) * ncol]) for r in range(nrow)]
    top = 0.4 if title else 0.05
    fig = plt.figure(figsize=(ncol * 0.9, nrow * 0.9 + top))
    height = nrow * 0.9 / (nrow * 0.9 + top)
    _mosaic_axes(fig, _mosaic(rows), (0.0, 0.0, 1.0, height))
    if title:
        fig.suptitle(title)
    return fig


def image_grid(images: np.ndarray, path: Path, title: str, ncol: int = 10) -> Path:
    """A grid of (N,H,W[,C]) images, written to `path`."""
    return _save(_image_grid_figure(images, title, ncol), path, laid_out=True)


def image_grid_png(images: np.ndarray, title: str = "", ncol: int = 10) -> bytes:
    """A grid of (N,H,W[,C]) images, as PNG bytes."""
    return _png(_image_grid_figure(images, title, ncol))


def _labelled_rows_figure(
    rows: Sequence[Sequence[np.ndarray]], labels: Sequence[str], title: str
) -> plt.Figure:
    """Image rows stacked top to bottom, each with its label above its first image."""
    n = max(len(row) for row in rows)
    h = np.asarray(rows[0][0]).shape[0]
    label_gap = max(6, h // 3)
    canvas = _mosaic(rows, label_gap)
    top = 0.4 if title else 0.05
    width = n * 0.9
    height = width * canvas.shape[0] / canvas.shape[1]
    fig = plt.figure(figsize=(width, height + top))
    ax = _mosaic_axes(fig, canvas, (0.0, 0.0, 1.0, height / (height + top)))
    for r, label in enumerate(labels):
        y = _row_top(r, h, label_gap) + label_gap - 1
        ax.text(_GAP, y, label, fontsize=7, ha="left", va="bottom")
    if title:
        fig.suptitle(title)
    return fig


def _reconstruction_figure(
    originals: np.ndarray, reconstructions: np.ndarray, title: str
) -> plt.Figure:
    rows = [list(originals), list(reconstructions)]
    return _labelled_rows_figure(rows, ["original", "reconstruction"], title)


def reconstruction_grid(
    originals: np.ndarray, reconstructions: np.ndarray, path: Path, title: str
) -> Path:
    """Originals on the top row of each pair, reconstructions beneath; written to `path`."""
    return _save(_reconstruction_figure(originals, reconstructions, title), path, laid_out=True)


def reconstruction_grid_png(
    originals: np.ndarray, reconstructions: np.ndarray, title: str = ""
) -> bytes:
    """Originals on the top row, reconstructions beneath, as PNG bytes."""
    return _png(_reconstruction_figure(originals, reconstructions, title))


def labelled_rows_png(rows: Sequence[np.ndarray], labels: Sequence[str], title: str = "") -> bytes:
    """Image rows stacked top to bottom (the same samples in every row), each row labelled: e.g.
    originals, keyed and public-only reconstructions, as PNG bytes."""
    return _png(_labelled_rows_figure([list(images) for images in rows], labels, title))


def latent_traversal_png(
    images: np.ndarray, values: Sequence[float], row_labels: Sequence[str] | None = None
) -> bytes:
    """Decoded images of a traversal: `images` is (D, V, H, W[,C]), one row per latent dimension,
    one column per value in `values` (the value the dimension was set to)."""
    images = np.asarray(images)
    if images.ndim not in (4, 5) or images.shape[1] != len(values):
        raise DataError(
            f"traversal images must be (dims, {len(values)} values, H, W[, C]), got {images.shape}"
        )
    n_dims, n_values, h, w = images.shape[:4]
    labels = list(row_labels) if row_labels is not None else [f"z{d}" for d in range(n_dims)]
    cell, left, top = 0.75, 0.7, 0.3
    fig = plt.figure(figsize=(n_values * cell + left, n_dims * cell + top))
    width, height = n_values * cell, n_dims * cell
    rect = (left / (width + left), 0.0, width / (width + left), height / (height + top))
    ax = _mosaic_axes(fig, _mosaic([list(row) for row in images]), rect)
    for d, label in enumerate(labels):
        y = _row_top(d, h, 0) + h / 2
        ax.text(-2, y, label, fontsize=8, ha="right", va="center")
    for v, value in enumerate(values):
        x = _GAP + v * (w + _GAP) + w / 2
        ax.text(x, -1, f"{value:+g}", fontsize=8, ha="center", va="bottom")
    return _png(fig)


# --------------------------------------------------------------------------- tables


def _is_continuous(*parts: pd.Series) -> bool:
    """Numeric with many values (in all parts together) or with fractions: draw a histogram."""
    if not all(
        pd.api.types.is_numeric_dtype(p.dtype) and not pd.api.types.is_bool_dtype(p.dtype)
        for p in parts
    ):
        return False
    values = pd.concat(parts, ignore_index=True).to_numpy(dtype=float)
    return len(np.unique(values)) > 10 or not np.array_equal(values, np.round(values))


def _columns_figure(real: pd.DataFrame, synthetic: pd.DataFrame, title: str, labels: Sequence[str]):
    columns = list(real.columns)
    ncol = min(4, len(columns))
    nrow = math.ceil(len(columns) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(ncol * 3, nrow * 2.4), squeeze=False)
    for ax, name in zip(axes.flat, columns, strict=False):
        r, s = real[name].dropna(), synthetic[name].dropna()
        if _is_continuous(r, s):
            bins = np.histogram_bin_edges(r.to_numpy(dtype=float), bins=30)
            ax.hist(r, bins=bins, alpha=0.5, density=True, label=labels[0])
            ax.hist(s.clip(bins[0], bins[-1]), bins=bins, alpha=0.5, density=True, label=labels[1])
        else:
            freq = pd.DataFrame(
                {
                    labels[0]: r.astype(str).value_counts(normalize=True),
                    labels[1]: s.astype(str).value_counts(normalize=True),
                }
            ).fillna(0)
            freq.head(12).plot.bar(ax=ax, legend=False, rot=45)
            ax.set_xlabel("")
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(columns) :]:
        ax.set_axis_off()
    axes.flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig


def column_comparison(real: pd.DataFrame, synthetic: pd.DataFrame, path: Path, title: str) -> Path:
    """Per column: overlaid histograms (numeric) or side-by-side frequencies (categorical)."""
    return _save(_columns_figure(real, synthetic, title, ("real", "synthetic")), path)


def column_comparison_png(
    real: pd.DataFrame,
    other: pd.DataFrame,
    title: str = "",
    labels: tuple[str, str] = ("real", "synthetic"),
) -> bytes:
    """Per column: overlaid histograms or side-by-side frequencies of `real` and `other`
    (samples or reconstructions, named by `labels`), as PNG bytes."""
    return figure_to_png(_columns_figure(real, other, title, labels))


def table_traversal_png(
    decoded: Sequence[pd.DataFrame],
    values: Sequence[float],
    row_labels: Sequence[str] | None = None,
    max_columns: int = 12,
) -> bytes:
    """A traversal of a table model: `decoded[d]` holds the rows decoded while latent dimension d
    runs over `values`. One panel per column (the first `max_columns`), one line per dimension:
    a flat line means that dimension does not move the column."""
    if not decoded:
        raise DataError("a traversal needs at least one latent dimension")
    labels = list(row_labels) if row_labels is not None else [f"z{d}" for d in range(len(decoded))]
    columns = list(decoded[0].columns)[:max_columns]
    ncol = min(4, len(columns))
    nrow = math.ceil(len(columns) / ncol)
    height = nrow * 2.3 + 0.6
    fig, axes = plt.subplots(nrow, ncol, figsize=(ncol * 3, height), squeeze=False)
    colours = plt.get_cmap("tab10" if len(decoded) <= 10 else "tab20")
    for ax, name in zip(axes.flat, columns, strict=False):
        stacked = pd.concat([frame[name] for frame in decoded], ignore_index=True)
        numeric = pd.api.types.is_numeric_dtype(stacked.dtype) and not (
            pd.api.types.is_bool_dtype(stacked.dtype)
        )
        categories = [] if numeric else list(dict.fromkeys(stacked.astype(str)))
        for d, frame in enumerate(decoded):
            column = frame[name]
            y = (
                column.to_numpy(dtype=float)
                if numeric
                else column.astype(str).map(categories.index).to_numpy()
            )
            ax.plot(values, y, marker=".", color=colours(d % colours.N), label=labels[d], lw=1.2)
        if not numeric:
            ax.set_yticks(range(len(categories)), [c[:14] for c in categories], fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(columns) :]:
        ax.set_axis_off()
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(
        handles, names, loc="lower center", ncol=min(10, len(names)), fontsize=8,
        title="latent dimension", title_fontsize=8, frameon=False,
    )  # fmt: skip
    fig.tight_layout(rect=(0, 0.6 / height, 1, 1))  # keep the bottom 0.6 in for the legend
    return _png(fig)


# --------------------------------------------------------------------------- training


def training_curves_png(records: Sequence[Mapping[str, Any]]) -> bytes:
    """One panel per loss term of metrics.jsonl records: `train_<term>` and `val_<term>` per epoch."""
    terms: dict[str, None] = {}
    for record in records:
        for key in record:
            prefix, _, term = key.partition("_")
            if prefix in ("train", "val") and term and key not in _NOT_TERMS:
                terms[term] = None
    if not terms:
        raise DataError("the metrics records hold no train_* or val_* loss terms")
    epochs = [record.get("epoch", i + 1) for i, record in enumerate(records)]
    ncol = min(3, len(terms))
    nrow = math.ceil(len(terms) / ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(ncol * 3.3, nrow * 2.4), squeeze=False)
    marker = "o" if len(records) <= 30 else None
    for ax, term in zip(axes.flat, terms, strict=False):
        for split, colour in (("train", "tab:blue"), ("val", "tab:orange")):
            points = [
                (e, r[f"{split}_{term}"])
                for e, r in zip(epochs, records, strict=True)
                if isinstance(r.get(f"{split}_{term}"), int | float)
            ]
            if points:
                x, y = zip(*points, strict=True)
                ax.plot(x, y, marker=marker, ms=3, lw=1.3, color=colour, label=split)
        ax.set_title(term, fontsize=10)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(terms) :]:
        ax.set_axis_off()
    return figure_to_png(fig)


# --------------------------------------------------------------------------- latents


def _is_categorical(colour: np.ndarray) -> bool:
    if colour.dtype.kind in "biuO" or colour.dtype.kind in "USb":
        return len(np.unique(colour.astype(str))) <= _MAX_CATEGORIES
    return False


def latent_map_png(
    codes: np.ndarray,
    colour: np.ndarray | None = None,
    *,
    method: str = "pca",
    colour_name: str = "",
    max_points: int = 2000,
    seed: int = 0,
) -> bytes:
    """A 2-D map of latent codes (N, D), by PCA or t-SNE, coloured by a label or factor.

    t-SNE runs on at most `max_points` rows (a seeded subsample), with a fixed seed.
    """
    codes = np.asarray(codes, dtype=np.float64)
    if codes.ndim != 2 or codes.shape[1] < 2:
        raise DataError(f"a latent map needs codes of shape (N, D≥2), got {codes.shape}")
    if method not in ("pca", "tsne"):
        raise DataError(f"unknown latent map method {method!r}; use 'pca' or 'tsne'")
    if colour is not None and len(colour) != len(codes):
        raise DataError(f"colour has {len(colour)} values for {len(codes)} codes")
    if len(codes) > max_points:
        rows = np.sort(np.random.default_rng(seed).choice(len(codes), max_points, replace=False))
        codes = codes[rows]
        colour = None if colour is None else np.asarray(colour)[rows]
    if len(codes) < 5:
        raise DataError(f"a latent map needs at least 5 points, got {len(codes)}")
    if method == "pca":
        from sklearn.decomposition import PCA

        pca = PCA(n_components=2, random_state=seed).fit(codes)
        xy = pca.transform(codes)
        share = pca.explained_variance_ratio_ * 100
        axis = (f"PC1 ({share[0]:.0f}% of variance)", f"PC2 ({share[1]:.0f}%)")
        title = "PCA of the latent means"
    else:
        from sklearn.manifold import TSNE

        perplexity = float(min(30.0, (len(codes) - 1) / 3))
        from threadpoolctl import threadpool_limits

        tsne = TSNE(
            2, perplexity=perplexity, init="pca", max_iter=_TSNE_ITERATIONS, random_state=seed
        )
        with threadpool_limits(1):  # its OpenMP gradient stalls badly on a busy machine
            xy = tsne.fit_transform(codes)
        axis = ("t-SNE 1", "t-SNE 2")
        title = f"t-SNE of the latent means ({len(codes)} points)"
    fig, ax = plt.subplots(figsize=(5.0, 4.2))
    size = 12 if len(codes) <= 500 else 5
    if colour is None:
        ax.scatter(xy[:, 0], xy[:, 1], s=size, alpha=0.7, color="tab:blue", linewidths=0)
    elif _is_categorical(np.asarray(colour)):
        colour = np.asarray(colour).astype(str)
        levels = sorted(np.unique(colour), key=lambda v: (len(v), v))
        cmap = plt.get_cmap("tab10" if len(levels) <= 10 else "tab20")
        for i, level in enumerate(levels):
            mask = colour == level
            ax.scatter(
                xy[mask, 0], xy[mask, 1], s=size, alpha=0.75, color=cmap(i % cmap.N),
                label=level, linewidths=0,
            )  # fmt: skip
        ax.legend(
            title=colour_name or None, fontsize=7, title_fontsize=8, markerscale=1.5,
            loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False,
        )  # fmt: skip
    else:
        points = ax.scatter(
            xy[:, 0], xy[:, 1], s=size, c=np.asarray(colour, dtype=float), cmap="viridis",
            alpha=0.8, linewidths=0,
        )  # fmt: skip
        fig.colorbar(points, ax=ax, label=colour_name or None)
    ax.set_xlabel(axis[0], fontsize=8)
    ax.set_ylabel(axis[1], fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(title + (f", coloured by {colour_name}" if colour_name else ""), fontsize=9)
    return figure_to_png(fig)


def mi_heatmap_png(
    mi: np.ndarray,
    factor_names: Sequence[str],
    latent_names: Sequence[str] | None = None,
    normalized: bool = True,
) -> bytes:
    """The factor × latent mutual-information matrix as an annotated heatmap."""
    mi = np.asarray(mi, dtype=float)
    n_factors, n_dims = mi.shape
    latent_names = (
        list(latent_names) if latent_names is not None else [f"z{d}" for d in range(n_dims)]
    )
    fig, ax = plt.subplots(figsize=(min(14, 1.6 + 0.6 * n_dims), 1.2 + 0.45 * n_factors))
    vmax = 1.0 if normalized else max(float(mi.max()), 1e-9)
    image = ax.imshow(mi, cmap="Blues", vmin=0, vmax=vmax, aspect="auto")
    ax.set_xticks(range(n_dims), latent_names, fontsize=8)
    ax.set_yticks(range(n_factors), list(factor_names), fontsize=8)
    if n_factors * n_dims <= 400:
        for k in range(n_factors):
            for d in range(n_dims):
                ax.text(
                    d, k, f"{mi[k, d]:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if mi[k, d] > 0.6 * vmax else "black",
                )  # fmt: skip
    label = "MI / H(factor)" if normalized else "MI (nats)"
    fig.colorbar(image, ax=ax, label=label, fraction=0.04)
    ax.set_xlabel("latent dimension", fontsize=8)
    return figure_to_png(fig)


# --------------------------------------------------------------------------- privacy curve


def _epsilon_axis(points: Sequence[Mapping[str, Any]]) -> tuple[list[float], float]:
    """x positions on a log axis; ∞ ("inf") sits at the right edge, 4× past the largest finite ε."""
    finite = [float(p["epsilon"]) for p in points if p["epsilon"] != "inf"]
    right = 4 * max(finite) if finite else 1.0
    return [right if p["epsilon"] == "inf" else float(p["epsilon"]) for p in points], right


def privacy_curve_png(points: Sequence[Mapping[str, Any]]) -> bytes:
    """Utility and attacker success vs ε (log x), one panel per mechanism, with the majority
    baselines and the non-private (ε = ∞) utility as reference lines."""
    mechanisms = list(dict.fromkeys(p["mechanism"] for p in points))
    if not mechanisms:
        raise DataError("the privacy curve holds no points")
    fig, axes = plt.subplots(
        1, len(mechanisms), figsize=(4.6 * len(mechanisms), 3.3), squeeze=False
    )
    for ax, mechanism in zip(axes.flat, mechanisms, strict=True):
        rows = sorted(
            (p for p in points if p["mechanism"] == mechanism),
            key=lambda p: math.inf if p["epsilon"] == "inf" else float(p["epsilon"]),
        )
        x, right = _epsilon_axis(rows)
        series = [("utility", "tab:blue", "utility (target)"), ("attacker", "tab:red", "attacker")]
        series.append(("membership_auc", "tab:purple", "membership AUC"))
        for key, colour, label in series:
            if all(isinstance(r.get(key), int | float) for r in rows):
                ax.plot(x, [r[key] for r in rows], "o-", ms=4, lw=1.4, color=colour, label=label)
        for key, colour in (("utility", "tab:blue"), ("attacker", "tab:red")):
            if isinstance(rows[0].get(f"{key}_majority"), int | float):
                ax.axhline(rows[0][f"{key}_majority"], color=colour, ls=":", lw=1, alpha=0.8)
        if rows[-1]["epsilon"] == "inf" and isinstance(rows[-1].get("utility"), int | float):
            ax.axhline(rows[-1]["utility"], color="tab:blue", ls="--", lw=0.8, alpha=0.5)
        ax.set_xscale("log")
        ticks = sorted(set(x))
        ax.set_xticks(
            ticks, ["∞" if t == right and rows[-1]["epsilon"] == "inf" else f"{t:g}" for t in ticks]
        )
        ax.minorticks_off()
        ax.set_title(
            f"DP {'training (DP-SGD)' if mechanism == 'dp-sgd' else 'release of latents'}",
            fontsize=10,
        )
        ax.set_xlabel("ε (dotted: majority baselines; dashed: non-private utility)", fontsize=7)
        ax.set_ylabel("accuracy / AUC", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return figure_to_png(fig)
