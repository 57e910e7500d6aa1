"""Strategy by name → a Flower Message-API strategy, its parameters checked before any round runs.

Every strategy is wrapped in `guard.RejectMalformed` (outermost), so a site's NaN or misshapen
update is dropped with a log line before any aggregation; server-side DP wraps the strategy inside
the guard, so the noise calibration sees only well-formed updates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fds.config import reject_unknown
from fds.errors import ConfigError

if TYPE_CHECKING:
    from flwr.serverapp.strategy import Strategy

    from fds.federated.settings import FederatedSettings

# name → (Flower class name, the parameters a user may set, with their types)
STRATEGIES: dict[str, tuple[str, dict[str, type]]] = {
    "fedavg": ("FedAvg", {}),
    "fedprox": ("FedProx", {"proximal_mu": float}),
    "fedadam": (
        "FedAdam",
        {"eta": float, "eta_l": float, "beta_1": float, "beta_2": float, "tau": float},
    ),
    "fedavgm": ("FedAvgM", {"server_learning_rate": float, "server_momentum": float}),
    "fedmedian": ("FedMedian", {}),
    "fedtrimmedavg": ("FedTrimmedAvg", {"beta": float}),
    "krum": ("Krum", {"num_malicious_nodes": int}),
}
# Server-side DP calibrates noise to the sensitivity of a plain mean of clipped updates: only the
# strategies whose aggregation is FedAvg's (FedProx changes the clients' loss, not the mean).
DP_STRATEGIES = ("fedavg", "fedprox")
# With DP every site weighs the same (the sensitivity bound assumes it); clients report this key.
UNIT_WEIGHT = "unit-weight"
NUM_EXAMPLES = "num-examples"


def check_strategy(settings: FederatedSettings) -> None:
    """Unknown name, unknown parameter, wrong type or DP with a non-mean strategy → ConfigError."""
    name = settings.strategy.lower()
    if name not in STRATEGIES:
        reject_unknown([name], STRATEGIES)
    _, allowed = STRATEGIES[name]
    params = settings.strategy_params
    for key, value in params.items():
        reject_unknown([key], allowed)
        kind = allowed[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"federated.strategy_params.{key} must be a number, got {value!r}")
        if kind is int and int(value) != value:
            raise ConfigError(f"federated.strategy_params.{key} must be an integer, got {value}")
        if value < 0:
            raise ConfigError(f"federated.strategy_params.{key} must be ≥ 0, got {value}")
    if name == "fedtrimmedavg" and not params.get("beta", 0.2) < 0.5:
        raise ConfigError("federated.strategy_params.beta must be below 0.5 (the cut per side)")
    if settings.dp is not None and name not in DP_STRATEGIES:
        raise ConfigError(
            f"federated.dp (server-side clipping + noise) needs a mean aggregation "
            f"({', '.join(DP_STRATEGIES)}), not {settings.strategy!r}"
        )
    if settings.min_sites > (settings.sites or settings.min_sites):
        raise ConfigError(
            f"federated.min_sites = {settings.min_sites} exceeds sites = {settings.sites}"
        )


def sampled_sites(settings: FederatedSettings, n_sites: int) -> int:
    """Sites asked per round: Flower's rule, max(⌊n·fraction⌋, min_sites)."""
    return max(int(n_sites * settings.fraction), settings.min_sites)


def make_strategy(settings: FederatedSettings, n_sites: int) -> Strategy:
    """The configured strategy, with DP (if set) inside and the malformed-update guard outside."""
    import flwr.serverapp.strategy as flwr_strategies

    from fds.federated.guard import RejectMalformed

    check_strategy(settings)
    name = settings.strategy.lower()
    cls = getattr(flwr_strategies, STRATEGIES[name][0])
    common: dict[str, Any] = {
        "fraction_train": settings.fraction,
        "fraction_evaluate": 1.0,
        "min_train_nodes": settings.min_sites,
        "min_evaluate_nodes": settings.min_sites,
        "min_available_nodes": settings.min_sites,
        "weighted_by_key": UNIT_WEIGHT if settings.dp is not None else NUM_EXAMPLES,
    }
    strategy: Strategy = cls(**common, **settings.strategy_params)
    if settings.dp is not None:
        strategy = flwr_strategies.DifferentialPrivacyServerSideFixedClipping(
            strategy,
            noise_multiplier=settings.dp.noise_multiplier,
            clipping_norm=settings.dp.clipping_norm,
            num_sampled_clients=sampled_sites(settings, n_sites),
        )
    return RejectMalformed(strategy, min_sites=settings.min_sites)
