"""`big-table`: a synthetic mixed-type table of any size, made piece by piece (never whole in
memory) for the streaming benchmark and tests: 20 columns (8 continuous, 4 counts, 3 binary,
5 categorical), some depending on others, 4 with missing values. Piece i is drawn from
(seed, i) alone, so a table's first k·PIECE_ROWS rows are the same whatever its size."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from fds.errors import DataError

PIECE_ROWS = 65_536
BIG_TABLE_COLUMNS = 20
MISSING = {"c1": 0.05, "n1": 0.02, "cat1": 0.03, "b1": 0.01}  # column: share of gaps
_REGIONS = tuple(f"r{i:02d}" for i in range(30))
_PRODUCTS = tuple(f"p{i:03d}" for i in range(120))


def big_table_pieces(rows: int, seed: int = 0) -> Iterator[pd.DataFrame]:
    """The table's rows, PIECE_ROWS at a time."""
    if rows < 1:
        raise DataError(f"--rows must be at least 1, got {rows}")
    for i, start in enumerate(range(0, rows, PIECE_ROWS)):
        yield _piece(min(PIECE_ROWS, rows - start), np.random.default_rng((seed, i)))


def _piece(n: int, rng: np.random.Generator) -> pd.DataFrame:
    z = rng.normal(size=(n, 3))  # three hidden factors the columns share
    segment = rng.choice(4, n, p=[0.4, 0.3, 0.2, 0.1])
    frame = pd.DataFrame(
        {
            "c0": z[:, 0] + 0.3 * rng.normal(size=n),
            "c1": np.round(50 + 10 * z[:, 1] + 5 * segment, 2),
            "c2": np.exp(0.8 * z[:, 0] + 0.5 * rng.normal(size=n)),  # right-skewed money
            "c3": rng.uniform(0, 1, n),
            "c4": np.where(rng.random(n) < 0.5, -2.0, 2.0) + 0.5 * rng.normal(size=n),  # two modes
            "c5": z[:, 1] * z[:, 2] + 0.2 * rng.normal(size=n),
            "c6": np.round(rng.gamma(2.0, 3.0, n) + 2 * segment, 3),
            "c7": np.clip(z[:, 2] + rng.standard_t(5, n), -8, 8),
            "n0": rng.poisson(np.exp(1 + 0.5 * z[:, 0])),
            "n1": rng.geometric(0.2, n) - 1,
            "n2": rng.integers(18, 90, n),
            "n3": rng.poisson(3 + segment),
            "b0": rng.random(n) < 1 / (1 + np.exp(-2 * z[:, 1])),
            "b1": (rng.random(n) < 0.3).astype(np.int64),
            "b2": np.where(z[:, 2] + rng.normal(size=n) > 0, "yes", "no"),
            "cat0": np.asarray(("a", "b", "c", "d"))[segment],
            "cat1": np.asarray(_REGIONS)[rng.zipf(1.6, n) % len(_REGIONS)],
            "cat2": np.asarray(_PRODUCTS)[rng.integers(0, len(_PRODUCTS), n)],
            "cat3": np.asarray(("low", "mid", "high"))[np.digitize(z[:, 0], [-0.5, 0.5])],
            "cat4": np.asarray(("x", "y", "z", "w", "v"))[rng.integers(0, 5, n)],
        }
    )
    for name, share in MISSING.items():
        gaps = rng.random(n) < share
        if frame[name].dtype.kind in "iub":  # integers and bools with gaps: pandas' nullable
            frame[name] = frame[name].astype(
                "Int64" if frame[name].dtype.kind != "b" else "boolean"
            )
        frame.loc[gaps, name] = None
    return frame
