"""Leakage of a model with a private block ("the key"): how well attackers predict each sensitive
attribute from the public block (should be near the majority baseline) and from the private block
(should be high), plus the utility of the public block for a named target.

Used by `fds evaluate` (the `leakage` entry of evaluation.json), the quickstart's report and
benchmarks/privacy_utility.py. Attackers train on a seeded part of the rows and are scored on the
rest (see `fds.privacy.leakage.attribute_leakage`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from fds.data.files import LoadedData
from fds.data.sensitive import is_categorical
from fds.errors import DataError
from fds.estimator import FDS
from fds.privacy.leakage import attribute_leakage

ATTACK_ROWS = 4000  # rows encoded for the attackers (a seeded subsample beyond that)
TEST_FRACTION = 0.3


def sensitive_values(data: LoadedData, names: tuple[str, ...] | list[str]) -> Any:
    """The values fit's `sensitive=` needs for `names`, or None when they are all columns of the
    table (the estimator reads those itself)."""
    from fds.workflows.probe import resolve_values

    if not names:
        return None
    if isinstance(data.X, pd.DataFrame) and all(n in data.X.columns for n in names):
        return None
    return pd.DataFrame({n: resolve_values(data, n, "sensitive attribute") for n in names})


def key_leakage(
    model: FDS,
    data: LoadedData,
    *,
    target: str | None = None,
    seed: int = 0,
    max_rows: int = ATTACK_ROWS,
) -> dict[str, Any] | None:
    """Leakage of every sensitive attribute the model was trained on (None without a private
    block). Returns `{"attributes": {name: {"public": …, "private": …}}, "utility": …|None,
    "n_rows", "test_fraction", "notes"}` where each block entry is `attribute_leakage`'s dict
    and `utility` holds the target probe's accuracy on the public latents (`target` given)."""
    if not model.model_.private_dim:
        return None
    rng = np.random.default_rng(seed)
    rows = np.arange(len(data.X))
    if len(rows) > max_rows:
        rows = np.sort(rng.choice(rows, max_rows, replace=False))
    X = data.X.iloc[rows] if isinstance(data.X, pd.DataFrame) else data.X[rows]
    z = model.transform(X)
    public, private = z[:, : model.model_.public_dim], z[:, model.model_.public_dim :]
    order = rng.permutation(len(rows))
    n_test = max(1, round(TEST_FRACTION * len(rows)))
    test, train = order[:n_test], order[n_test:]
    notes: list[str] = []
    attributes: dict[str, Any] = {}
    for column in model.sensitive_:
        try:
            s = np.asarray(_values(data, column.name))[rows]
        except DataError as exc:
            notes.append(f"{column.name}: not measured ({exc})")
            continue
        if column.kind == "continuous":
            notes.append(f"{column.name}: continuous, measured on its quartiles")
            s = quartiles(s)
        attributes[column.name] = {
            block: attribute_leakage(codes[train], s[train], codes[test], s[test], seed=seed)
            for block, codes in (("public", public), ("private", private))
        }
    utility = None
    if target is not None:
        y = np.asarray(_values(data, target))[rows]
        if not is_categorical(pd.Series(y)):
            notes.append(f"{target}: continuous, probed on its quartiles")
            y = quartiles(y)
        utility = {"target": target} | _probe_accuracy(public, y, train, test, seed)
    return {
        "attributes": attributes,
        "utility": utility,
        "n_rows": len(rows),
        "test_fraction": TEST_FRACTION,
        "notes": notes,
    }


def quartiles(values: np.ndarray) -> np.ndarray:
    """Continuous values as 4 classes (attackers and probes here are classifiers)."""
    values = values.astype(np.float64)
    return np.digitize(values, np.quantile(values, [0.25, 0.5, 0.75]))


def _values(data: LoadedData, name: str) -> np.ndarray:
    from fds.workflows.probe import resolve_values

    return resolve_values(data, name, "sensitive attribute")


def _probe_accuracy(
    z: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, seed: int
) -> dict[str, Any]:
    """Best of the same attackers, used as a utility probe: accuracy on the target."""
    result = attribute_leakage(z[train], y[train], z[test], y[test], seed=seed)
    return {
        "accuracy": result["best_accuracy"],
        "majority": result["majority"],
        "best_head": result["best_attacker"],
    }
