"""The privacy–utility front of `fds tune` as a picture: every finished trial, the non-dominated
ones joined and numbered, so a data owner can pick a point and find its run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from fds.report.plots import figure_to_png  # selects the Agg backend first
from fds.rundir import atomic_write

__all__ = ["front_png"]


def front_png(
    trials: Sequence[Mapping[str, Any]],
    front: Sequence[Mapping[str, Any]],
    names: tuple[str, str],
    directions: tuple[str, str],
    path: Path,
) -> Path:
    """Scatter of the first two objectives of `trials` (each `{"number", "values"}`), with the
    `front` (a subset) highlighted and labelled by trial number; written atomically to `path`."""
    fig, ax = plt.subplots(figsize=(6.4, 4.8))
    ax.scatter(
        [t["values"][0] for t in trials],
        [t["values"][1] for t in trials],
        color="0.75",
        label="trials",
    )
    ordered = sorted(front, key=lambda t: t["values"][0])
    xs = [t["values"][0] for t in ordered]
    ys = [t["values"][1] for t in ordered]
    ax.plot(xs, ys, "o-", color="C3", label="non-dominated (Pareto front)")
    for t in ordered:
        ax.annotate(
            str(t["number"]),
            (t["values"][0], t["values"][1]),
            textcoords="offset points",
            xytext=(4, 4),
            fontsize=8,
        )
    arrows = {"maximize": "higher is better", "minimize": "lower is better"}
    ax.set_xlabel(f"{names[0]} ({arrows[directions[0]]})")
    ax.set_ylabel(f"{names[1]} ({arrows[directions[1]]})")
    ax.set_title("fds tune: trade-off between the first two objectives")
    ax.legend(loc="best", fontsize=8)
    return atomic_write(path, figure_to_png(fig))
