"""A grid of records × columns where each column is one modality (or one modality generated from
another): images drawn, captions written, sounds shown as log-magnitude spectrograms. Draws what
it is given, like `fds.report.plots`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from fds.rundir import atomic_write

__all__ = ["Column", "modality_grid"]

Kind = Literal["image", "text", "spectrogram"]
Column = tuple[str, Kind, Sequence[Any]]  # header, how to draw, one value per record


def modality_grid(columns: Sequence[Column], path: Path, title: str) -> Path:
    """Write the grid as a PNG at `path` and return it."""
    rows = max(len(values) for _, _, values in columns)
    fig, axes = plt.subplots(
        rows, len(columns), figsize=(1.9 * len(columns), 1.3 * rows + 0.6), squeeze=False
    )
    for c, (header, kind, values) in enumerate(columns):
        axes[0, c].set_title(header, fontsize=8)
        for r in range(rows):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if r >= len(values):
                ax.set_axis_off()
                continue
            _draw(ax, kind, values[r])
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        return atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))
    finally:
        plt.close(fig)


def _draw(ax: plt.Axes, kind: Kind, value: Any) -> None:
    if kind == "text":
        ax.text(0.5, 0.5, _wrap(str(value)), ha="center", va="center", fontsize=7, wrap=True)
        for side in ax.spines.values():
            side.set_visible(False)
    elif kind == "image":
        image = np.asarray(value)
        ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
    else:
        ax.imshow(np.log(np.asarray(value) + 1e-3), origin="lower", aspect="auto", cmap="magma")


def _wrap(text: str, width: int = 22) -> str:
    lines, line = [], ""
    for word in text.split():
        if line and len(line) + len(word) + 1 > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}".strip()
    return "\n".join([*lines, line])
