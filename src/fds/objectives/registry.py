"""Every loss term FDS knows, in one ordered list, and the checks DP-SGD makes on them.

The order is the order the model sums in (the per-example terms first, then the batch terms,
each in this order) and builds the terms' networks in (which fixes their initial weights). It is
the order from before the terms were plugins, so every configuration still trains the same
weights: append a new term at the end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fds.errors import ConfigError
from fds.objectives import (
    adversary,
    alternating_censor,
    block_independence,
    factor_disc,
    gan,
    hsic,
    kl,
    mmd,
    private_head,
    private_spread,
    sparsity,
    swap_invariance,
    tc,
)
from fds.objectives.base import LossTerm

if TYPE_CHECKING:
    from fds.config import FDSConfig

TERMS: tuple[LossTerm, ...] = (
    kl.TERM,
    sparsity.L1,
    mmd.TERM,
    private_spread.TERM,
    tc.TERM,
    factor_disc.TERM,
    sparsity.KL_TO_TARGET,
    block_independence.TERM,
    hsic.TERM,
    private_head.TERM,
    adversary.TERM,
    alternating_censor.TERM,
    gan.TERM,
    swap_invariance.TERM,
)


def applying_terms(config: FDSConfig) -> list[LossTerm]:
    """The terms a model with `config` has, in registry order."""
    return [term for term in TERMS if term.applies(config)]


def check_per_example(config: FDSConfig) -> None:
    """Refuse a config whose loss has no per-example form (what DP-SGD clips), naming the field."""
    for term in applying_terms(config):
        culprit = term.batch_culprit(config) if term.is_on(config) else None
        if culprit is not None:
            raise ConfigError(
                f"{culprit} couples the examples of a batch, so it has no per-example loss "
                f"(needed for DP-SGD); set {culprit}=0"
            )


def check_trainable_under_dp(config: FDSConfig) -> None:
    """Refuse what DP-SGD cannot train: a batch-coupled term, or a network with its own optimizer
    (it would fit the data without clipping or noise). The network is named first: it is the
    reason no per-example form could help."""
    for term in applying_terms(config):
        if term.optimizer is not None:
            raise ConfigError(term.optimizer.dp_refusal)
    check_per_example(config)
