"""(ε, δ) of Flower's server-side fixed clipping, from Opacus's RDP accountant.

Each round releases the mean of the sampled sites' clipped updates plus Gaussian noise of std
z·C/m (z the noise multiplier, C the clipping norm, m the sampled sites): one Gaussian mechanism
of noise multiplier z with respect to adding or removing one *site*. The guarantee is site-level
(user-level when a site is one person): it covers everything a site contributes, not single rows.
Flower samples a fixed number of sites without replacement, which Opacus's Poisson analysis does
not cover, so no amplification by sampling is claimed (sample rate 1): the ε reported is an upper
bound for fraction < 1.

Flower 1.42 ships its own `RdpAccountant`, but it needs the `dp-accounting` package, which FDS does
not depend on; Opacus's accountant gives the same RDP bound for this mechanism.
"""

from __future__ import annotations

from typing import Any


def server_dp_spent(noise_multiplier: float, rounds: int, delta: float) -> dict[str, Any]:
    """The spent budget after `rounds` noisy aggregations, as the manifest's `privacy` field."""
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(noise_multiplier, 1.0, rounds)]
    epsilon = float(accountant.get_epsilon(delta=delta)) if rounds else 0.0
    return {
        "mechanism": "federated server-side fixed clipping + Gaussian noise (Flower)",
        "unit": "site",
        "epsilon": epsilon,
        "delta": delta,
        "noise_multiplier": noise_multiplier,
        "rounds": rounds,
        "accountant": "opacus RDP, no sampling amplification",
    }


def client_dp_spent(history: list[dict[str, Any]]) -> dict[str, Any]:
    """DP-SGD at the sites (record-level): every round is a fresh DP-SGD run on the same rows, so
    a site's rounds compose; by basic composition its total is (Σε, Σδ) over the rounds it trained
    in (valid for any mechanisms, loose compared with RDP composition of the same steps)."""
    totals: dict[str, list[float]] = {}
    for record in history:
        for site, epsilon in record.get("dp_epsilon_per_site", {}).items():
            eps, delta = totals.setdefault(site, [0.0, 0.0])
            totals[site] = [eps + epsilon, delta + record["dp_delta_per_site"][site]]
    return {
        "mechanism": "dp-sgd at each site, composed over rounds",
        "unit": "record",
        "composition": "basic (sum of per-round epsilon and delta)",
        "epsilon": max(e for e, _ in totals.values()),
        "delta": max(d for _, d in totals.values()),
        "per_site": {s: {"epsilon": e, "delta": d} for s, (e, d) in totals.items()},
    }
