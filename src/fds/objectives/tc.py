"""Total correlation of the aggregate posterior, estimated on a minibatch (β-TCVAE, Chen et al. 2018).

TC = KL(q(z) ‖ Π_j q(z_j)). q(z) is estimated from the batch either by minibatch-weighted
sampling ("mws", FDSConfig's default) or minibatch-stratified sampling ("mss", which estimates the
TC's value more closely: what `fds.evaluation.metrics` reports).
"""

from __future__ import annotations

import math

import torch

from fds.objectives.base import LossTerm, TermInputs


def _log_density_gaussian(
    z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor
) -> torch.Tensor:
    """log N(z_i | μ_j, σ_j) for every pair (i, j) and dimension: shape [batch, batch, latent]."""
    z, mean, logvar = z.unsqueeze(1), mean.unsqueeze(0), logvar.unsqueeze(0)
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mean) ** 2 * torch.exp(-logvar))


def _log_importance_weights(batch: int, dataset_size: int, device: torch.device) -> torch.Tensor:
    """Stratified-sampling weights of Chen et al. (2018, appendix C.2): shape [batch, batch].

    Row i estimates q(z_i) = (1/N) Σ_n q(z_i|n) from the batch, M = batch − 1: its own example,
    from which z_i was drawn, counts for itself (1/N), one other example stands for the N − M
    outside the batch ((N − M)/(N·M)) and the remaining M − 1 for themselves (1/M each); the
    weights of a row sum to 1. Chen et al.'s code, and pythae's copy of it, strides by the batch
    size where the diagonal needs batch + 1, so it puts 1/N on the first column instead: every
    other example's own density gets 1/M, which makes it minibatch-weighted sampling with one
    example dropped (rtqichen/beta-tcvae pull request 1)."""
    n, m = dataset_size, batch - 1
    weights = torch.full((batch, batch), 1.0 / m, device=device)
    rows = torch.arange(batch, device=device)
    weights[rows, (rows + 1) % batch] = (n - m) / (n * m)
    weights[rows, rows] = 1.0 / n
    return weights.log()


def total_correlation(
    z: torch.Tensor,
    mean: torch.Tensor,
    logvar: torch.Tensor,
    dataset_size: int,
    estimator: str = "mss",
) -> torch.Tensor:
    """Minibatch estimate of TC in nats (a scalar; it can be slightly negative from noise)."""
    batch = len(z)
    if batch < 2:
        return z.new_zeros(())
    log_q_pairs = _log_density_gaussian(z, mean, logvar)
    if estimator == "mss":
        log_w = _log_importance_weights(batch, dataset_size, z.device)
        log_qz = torch.logsumexp(log_w + log_q_pairs.sum(2), dim=1)
        log_prod_qzi = torch.logsumexp(log_w.unsqueeze(2) + log_q_pairs, dim=1).sum(1)
    else:
        # q(z) = (1/N) Σ_n q(z|n) ≈ (1/B) Σ_j q(z|n_j). Chen et al.'s 1/(N·B) weight only shifts the
        # estimate by (D − 1)·log N (same gradients), but the value would no longer be TC in nats.
        norm = math.log(batch)
        log_qz = torch.logsumexp(log_q_pairs.sum(2), dim=1) - norm
        log_prod_qzi = (torch.logsumexp(log_q_pairs, dim=1) - norm).sum(1)
    return (log_qz - log_prod_qzi).mean()


def _tc(inputs: TermInputs, weight: float) -> torch.Tensor:
    post, config = inputs.post, inputs.config
    value = total_correlation(
        post.z, post.mean, post.logvar, inputs.dataset_size, config.tc_estimator
    )
    return weight * value


TERM = LossTerm(
    name="tc",
    weight="tc",
    value=_tc,
    reads=("tc_estimator",),
    needs=frozenset({"gaussian"}),
    per_example=False,
)
