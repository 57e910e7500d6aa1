"""Disentanglement metrics (MIG, DCI, SAP, FactorVAE score) for codes with known factors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numpy.typing import ArrayLike

from fds.evaluation.disentanglement.common import FactorsLike, discretize, entropy
from fds.evaluation.disentanglement.dci import dci
from fds.evaluation.disentanglement.factor_vae import factor_vae_score
from fds.evaluation.disentanglement.mig import mig
from fds.evaluation.disentanglement.mutual_information import factor_latent_mi
from fds.evaluation.disentanglement.sap import sap

__all__ = [
    "DISENTANGLEMENT_METRICS",
    "dci",
    "discretize",
    "entropy",
    "evaluate_disentanglement",
    "factor_latent_mi",
    "factor_vae_score",
    "mig",
    "sap",
]

DISENTANGLEMENT_METRICS: dict[str, Callable[..., dict[str, Any]]] = {
    "mig": mig,
    "dci": dci,
    "sap": sap,
    "factor_vae": factor_vae_score,
}


def evaluate_disentanglement(
    factors: FactorsLike, codes: ArrayLike, *, fast: bool = False, seed: int = 0
) -> dict[str, float]:
    """Run every registered metric and flatten its scalar results into stable snake_case keys.

    Keys are prefixed with the metric name unless they already carry it: ``mig``,
    ``dci_disentanglement``, ``dci_completeness``, ``dci_informativeness``, ``sap``,
    ``factor_vae_score``, ``factor_vae_active_dims``. Lists (per-factor gaps, importances) are left
    to the individual metrics.
    """
    flat: dict[str, float] = {}
    for name, metric in DISENTANGLEMENT_METRICS.items():
        for key, value in metric(factors, codes, fast=fast, seed=seed).items():
            if isinstance(value, int | float):
                flat[key if key.startswith(name) else f"{name}_{key}"] = value
    return flat
