"""Privacy accounting shared by DP-SGD training, DP releases and the ledger: Opacus' accountants
compose (subsampled) Gaussian mechanisms given as (noise multiplier, sample rate, steps).

It lives in `training` because DP-SGD needs it there; `privacy` (ledger, releases) sits above and
imports it from here."""

from __future__ import annotations

import warnings
from typing import Any


def opacus_module() -> Any:
    """Opacus imports lazily (it is slow to import and only DP runs need it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import opacus

        return opacus


def default_delta(n_train: int) -> float:
    """δ = 1/(10·n): well below 1/n, the level at which 'release one record at random' is DP."""
    return 1.0 / (10 * n_train)


def epsilon_spent(
    history: list[tuple[float, float, int]], delta: float, accountant: str = "rdp"
) -> float:
    """ε at `delta` of a composition of (subsampled) Gaussian mechanisms (noise, rate, steps)."""
    history = [h for h in history if h[2] > 0]
    if not history:
        return 0.0
    acc = opacus_module().accountants.create_accountant(accountant)
    acc.history = [(float(s), float(q), int(t)) for s, q, t in history]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(acc.get_epsilon(delta=delta))
