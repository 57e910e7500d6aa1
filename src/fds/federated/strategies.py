"""Strategy by name → a Flower Message-API strategy (the names and their parameters are
`settings.STRATEGIES`, checked when fed.yaml is read, before any round runs).

Every strategy is wrapped in `guard.RejectMalformed` (outermost), so a site's NaN or misshapen
update is dropped with a log line before any aggregation; server-side DP wraps the strategy inside
the guard, so the noise calibration sees only well-formed updates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fds.federated.guard import RejectMalformed
from fds.federated.messages import NUM_EXAMPLES, UNIT_WEIGHT
from fds.federated.settings import STRATEGIES, FederatedSettings, check_strategy

if TYPE_CHECKING:
    from flwr.serverapp.strategy import Strategy


def sampled_sites(settings: FederatedSettings, n_sites: int) -> int:
    """Sites asked per round: Flower's rule, max(⌊n·fraction⌋, min_sites)."""
    return max(int(n_sites * settings.fraction), settings.min_sites)


def make_strategy(settings: FederatedSettings, n_sites: int) -> Strategy:
    """The configured strategy, with DP (if set) inside and the malformed-update guard outside."""
    import flwr.serverapp.strategy as flwr_strategies

    check_strategy(settings)
    name = settings.strategy.lower()
    cls = getattr(flwr_strategies, STRATEGIES[name][0])
    common: dict[str, Any] = {
        "fraction_train": settings.fraction,
        "fraction_evaluate": settings.fraction_evaluate,
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
