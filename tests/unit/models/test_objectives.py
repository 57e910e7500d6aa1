"""Loss terms in `fds.objectives`: values against closed forms / torch.distributions, gradients
where a term promises to stop or keep them, independence penalties on known (in)dependence, and
the registry: a term is one module plus one line, and the model, Trainer and DP-SGD follow it."""

from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from fds.config import PRESET_FIELDS, PRESETS, FDSConfig, make_config
from fds.errors import ConfigError
from fds.objectives import (
    TERMS,
    LossTerm,
    Network,
    OptimizerGroup,
    TermInputs,
    applying_terms,
    block_independence,
    check_trainable_under_dp,
    factor_disc,
    hsic,
    kl,
    sparsity,
    tc,
    warmup_factor,
)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# ------------------------------------------------------------------------------------------- KL
def test_gaussian_kl_is_zero_for_the_prior() -> None:
    kl_dims = kl.gaussian_kl(torch.zeros(5, 3), torch.zeros(5, 3))
    assert kl_dims.shape == (5, 3)
    assert torch.allclose(kl_dims, torch.zeros(5, 3))


def test_gaussian_kl_matches_torch_distributions() -> None:
    g = _gen()
    mean = torch.randn(16, 4, generator=g, dtype=torch.float64) * 2
    logvar = torch.randn(16, 4, generator=g, dtype=torch.float64)
    expected = kl_divergence(
        Normal(mean, (0.5 * logvar).exp()), Normal(torch.zeros_like(mean), torch.ones_like(mean))
    )
    got = kl.gaussian_kl(mean, logvar)
    assert got.shape == (16, 4)
    assert torch.allclose(got, expected, atol=1e-10)
    assert (got >= 0).all()


def test_free_bits_counts_the_floor_and_only_stops_gradients_under_it() -> None:
    # dimension 0 has a batch-mean KL far above the floor, dimension 1 far below it
    mean = torch.tensor([[3.0, 0.01], [2.0, -0.02], [-3.0, 0.03]], requires_grad=True)
    logvar = torch.zeros(3, 2, requires_grad=True)
    kl_dims = kl.gaussian_kl(mean, logvar)
    floor = 0.5
    assert kl_dims.mean(0)[0] > floor > kl_dims.mean(0)[1]

    got = kl.free_bits_kl(kl_dims, floor)
    assert got.shape == (3,)
    # the value is the objective: the dimension under the floor counts as the floor
    assert torch.allclose(got, kl_dims[:, 0] + floor)

    got.sum().backward()
    assert (mean.grad[:, 0] != 0).all()  # above the floor: still pushed towards the prior
    assert (mean.grad[:, 1] == 0).all()  # under the floor: not penalised


def test_free_bits_zero_is_the_plain_sum_with_full_gradient() -> None:
    mean = torch.tensor([[0.1, 2.0]], requires_grad=True)
    kl_dims = kl.gaussian_kl(mean, torch.zeros(1, 2))
    got = kl.free_bits_kl(kl_dims, 0.0)
    assert torch.allclose(got, kl_dims.sum(-1))
    got.sum().backward()
    assert (mean.grad != 0).all()


def test_warmup_factor_ramps_linearly_then_stays_at_one() -> None:
    assert warmup_factor(0.0, 4) == 0.0
    assert warmup_factor(1.0, 4) == pytest.approx(0.25)
    assert warmup_factor(2.0, 4) == pytest.approx(0.5)
    assert warmup_factor(4.0, 4) == 1.0
    assert warmup_factor(10.0, 4) == 1.0
    assert warmup_factor(0.0, 0) == 1.0  # no warm-up: full weight from the start


# ------------------------------------------------------------------------------------ TC (β-TCVAE)
def _posterior(shared_weight: float, seed: int, batch: int = 512, latent: int = 3):
    """Diagonal Gaussian posteriors whose means share a component with the given weight."""
    g = _gen(seed)
    shared = torch.randn(batch, 1, generator=g)
    own = torch.randn(batch, latent, generator=g)
    mean = own * (1 - shared_weight) + shared * shared_weight
    sd = 0.5
    logvar = torch.full((batch, latent), 2 * math.log(sd))
    z = mean + sd * torch.randn(batch, latent, generator=g)
    return z, mean, logvar


@pytest.mark.parametrize("estimator", ["mss", "mws"])
def test_total_correlation_near_zero_when_independent_and_large_when_shared(estimator) -> None:
    z, mean, logvar = _posterior(0.0, seed=1)
    independent = tc.total_correlation(z, mean, logvar, dataset_size=10_000, estimator=estimator)
    z, mean, logvar = _posterior(1.0, seed=1)
    shared = tc.total_correlation(z, mean, logvar, dataset_size=10_000, estimator=estimator)
    assert independent.shape == ()
    assert abs(independent.item()) < 0.15
    assert shared.item() > 0.5
    assert shared.item() > 5 * abs(independent.item())


def test_total_correlation_estimators_agree_in_sign_and_ordering() -> None:
    values = {est: [] for est in ("mss", "mws")}
    for weight in (0.0, 0.5, 1.0):
        z, mean, logvar = _posterior(weight, seed=2)
        for est in values:
            values[est].append(tc.total_correlation(z, mean, logvar, 10_000, est).item())
    for est, seq in values.items():
        assert seq == sorted(seq), f"{est} not increasing with dependence: {seq}"
    for a, b in zip(values["mss"], values["mws"], strict=True):
        assert (a > 0.1) == (b > 0.1)  # both call the same posteriors dependent


def test_stratified_weights_give_each_sample_its_own_density_at_one_over_n() -> None:
    weights = tc._log_importance_weights(6, 1000, torch.device("cpu")).exp()
    assert torch.allclose(weights.diagonal(), torch.full((6,), 1 / 1000))
    assert torch.allclose(weights.sum(1), torch.ones(6))
    # one other example per row stands for the N − M outside the batch (M = batch − 1 = 5)
    assert ((weights - (1000 - 5) / (1000 * 5)).abs() < 1e-7).sum(1).tolist() == [1] * 6


def test_stratified_estimate_matches_the_full_data_total_correlation() -> None:
    """Averaged over minibatches of 64 from N = 512 posteriors, MSS estimates the TC that q(z) over
    all N gives (Chen et al. 2018, appendix C.2). Weights that give each sample's own density 1/M
    instead of 1/N (Chen et al.'s code) land about 0.9 nats above it here."""
    n, sd, g = 512, 0.1, _gen(4)
    shared = torch.randn(n, 1, generator=g)
    mean = 0.9 * shared + math.sqrt(1 - 0.9**2) * torch.randn(n, 3, generator=g)
    logvar = torch.full_like(mean, 2 * math.log(sd))
    z = mean + sd * torch.randn(mean.shape, generator=g)
    pairs = tc._log_density_gaussian(z, mean, logvar)
    log_qz = pairs.sum(2).logsumexp(1) - math.log(n)
    log_prod = (pairs.logsumexp(1) - math.log(n)).sum(1)
    exact = (log_qz - log_prod).mean().item()
    batches = [torch.randperm(n, generator=g)[:64] for _ in range(200)]
    estimate = sum(tc.total_correlation(z[i], mean[i], logvar[i], n, "mss") for i in batches)
    assert exact > 1.0
    assert abs(estimate.item() / len(batches) - exact) < 0.25


def test_total_correlation_is_differentiable_and_tiny_batch_is_zero() -> None:
    z, mean, logvar = _posterior(1.0, seed=3, batch=64)
    mean = mean.clone().requires_grad_(True)
    tc.total_correlation(z, mean, logvar, 1000, "mss").backward()
    assert torch.isfinite(mean.grad).all() and (mean.grad != 0).any()
    one = tc.total_correlation(z[:1], mean[:1], logvar[:1], 1000)
    assert one.item() == 0.0


# ------------------------------------------------------------------------------- FactorVAE parts
def test_permute_dims_keeps_each_columns_values_and_breaks_the_pairing() -> None:
    torch.manual_seed(0)
    z = torch.arange(200, dtype=torch.float32).view(100, 2)
    z[:, 1] = z[:, 0] * 10  # perfectly paired columns
    permuted = factor_disc.permute_dims(z)
    assert permuted.shape == z.shape
    for j in range(z.shape[1]):
        assert torch.equal(permuted[:, j].sort().values, z[:, j].sort().values)
    # the rows are no longer the original pairs
    assert (permuted[:, 1] != permuted[:, 0] * 10).float().mean() > 0.9


def test_tc_estimate_is_the_logit_gap_averaged() -> None:
    torch.manual_seed(0)
    disc = factor_disc.Discriminator(3, hidden=16, layers=2)
    z = torch.randn(10, 3)
    logits = disc(z)
    assert logits.shape == (10, 2)
    expected = (logits.log_softmax(1)[:, 0] - logits.log_softmax(1)[:, 1]).mean()
    assert torch.allclose(factor_disc.tc_estimate(disc, z), expected, atol=1e-6)


def test_discriminator_loss_trains_the_discriminator_not_the_codes() -> None:
    torch.manual_seed(0)
    disc = factor_disc.Discriminator(2, hidden=16, layers=2)
    z = torch.randn(32, 2, requires_grad=True)
    loss = factor_disc.discriminator_loss(disc, z)
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    assert z.grad is None
    assert any(p.grad is not None and (p.grad != 0).any() for p in disc.parameters())


def test_discriminator_learns_to_spot_dependent_codes() -> None:
    """Trained on strongly dependent codes, the density-ratio TC estimate becomes clearly positive."""
    torch.manual_seed(0)
    disc = factor_disc.Discriminator(2, hidden=32, layers=2)
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    for _ in range(60):
        shared = torch.randn(256, 1)
        z = torch.cat([shared, shared + 0.1 * torch.randn(256, 1)], 1)
        opt.zero_grad()
        factor_disc.discriminator_loss(disc, z).backward()
        opt.step()
    shared = torch.randn(512, 1)
    z = torch.cat([shared, shared + 0.1 * torch.randn(512, 1)], 1)
    with torch.no_grad():
        assert factor_disc.tc_estimate(disc, z).item() > 0.5


# ---------------------------------------------------------------------------------- sparsity
def test_l1_is_the_per_example_sum_of_absolute_values() -> None:
    z = torch.tensor([[1.0, -2.0, 0.0], [0.5, 0.5, -0.5]])
    assert torch.allclose(sparsity.l1(z), torch.tensor([3.0, 1.5]))


def test_kl_to_target_is_zero_at_the_target_and_positive_away_from_it() -> None:
    target = 0.05
    at_target = torch.full((8, 4), math.log(target / (1 - target)))  # sigmoid(z) == target
    assert sparsity.kl_to_target(at_target, target).item() == pytest.approx(0.0, abs=1e-6)
    dense = torch.zeros(8, 4)  # sigmoid = 0.5 ≫ target
    value = sparsity.kl_to_target(dense, target)
    expected = 4 * (target * math.log(target / 0.5) + (1 - target) * math.log((1 - target) / 0.5))
    assert value.item() == pytest.approx(expected, rel=1e-5)


def test_kl_to_target_pushes_activations_down_towards_a_small_target() -> None:
    z = torch.zeros(8, 2, requires_grad=True)
    sparsity.kl_to_target(z, 0.05).backward()
    assert (z.grad > 0).all()  # gradient descent lowers the activations


# ------------------------------------------------------------------------------ HSIC / decorrelation
def _columns(kind: str, n: int = 600, seed: int = 0) -> torch.Tensor:
    g = _gen(seed)
    a = torch.randn(n, 1, generator=g)
    noise = torch.randn(n, 1, generator=g)
    if kind == "independent":
        return torch.cat([a, noise], 1)
    if kind == "linear":
        return torch.cat([a, a + 0.3 * noise], 1)
    return torch.cat([a, a**2], 1)  # non-linear, yet uncorrelated (a is symmetric)


@pytest.mark.parametrize("penalty", [hsic.hsic, hsic.decorrelation])
def test_independence_penalties_separate_independent_from_linearly_dependent(penalty) -> None:
    independent = penalty(_columns("independent")).item()
    dependent = penalty(_columns("linear")).item()
    assert independent >= -1e-6
    assert independent < 0.01
    assert dependent > 10 * independent
    assert dependent > 0.02


def test_decorrelation_is_the_squared_correlation() -> None:
    z = _columns("linear")
    r = torch.corrcoef(z.T)[0, 1]
    assert hsic.decorrelation(z).item() == pytest.approx(r.item() ** 2, rel=1e-3)


def test_hsic_catches_non_linear_dependence_that_decorrelation_misses() -> None:
    independent, squared, linear = (
        _columns("independent"),
        _columns("squared"),
        _columns("linear"),
    )
    assert hsic.hsic(squared).item() > 10 * hsic.hsic(independent).item()
    # decorrelation barely moves: far below what it reports for a linear dependence
    assert hsic.decorrelation(squared).item() < 0.05 * hsic.decorrelation(linear).item()


def test_hsic_is_differentiable_and_degenerate_inputs_are_zero() -> None:
    z = _columns("linear", n=64).requires_grad_(True)
    hsic.hsic(z).backward()
    assert torch.isfinite(z.grad).all() and (z.grad != 0).any()
    assert hsic.hsic(torch.randn(3, 2)).item() == 0.0  # too few rows for an estimate
    assert hsic.hsic(torch.randn(10, 1)).item() == 0.0  # one dimension: no pair


def test_block_hsic_of_a_collapsed_block_has_finite_gradients() -> None:
    public = torch.randn(16, 3, requires_grad=True)
    private = torch.zeros(16, 2, requires_grad=True)  # every row alike: a zero Gram matrix
    value = block_independence.block_hsic(public, private)
    value.backward()
    assert value.item() == 0.0
    assert torch.isfinite(public.grad).all() and torch.isfinite(private.grad).all()


# ---------------------------------------------------------------------------------- registry
def _configs() -> list:
    """Every preset, with the key's three adversary modes and the independence term on."""
    configs = []
    for preset in PRESETS:
        for adversary in ("none", "gradient_reversal", "alternating"):
            params = {"preset": preset, "adversary": adversary, "independence": 1.0}
            configs.append(make_config(**params).resolved())
    return configs


def test_presets_set_only_fields_a_preset_may_set() -> None:
    """A preset value for any other field would be silently ignored by `resolved()`."""
    for preset, values in PRESETS.items():
        assert set(values) <= set(PRESET_FIELDS), preset
    assert "sparsity_kl" in PRESET_FIELDS  # it was left out, so no preset could set it
    assert make_config(preset="vae").resolved().sparsity_kl == 0.0  # None until resolved
    assert make_config(preset="vae", sparsity_kl=0.2).resolved().sparsity_kl == 0.2


def test_every_term_reads_fields_of_the_config() -> None:
    fields = set(FDSConfig.model_fields)
    for term in TERMS:
        assert term.weight in PRESET_FIELDS, term.name  # None in a config = the preset's value
        optional = (term.couples_when, term.warmup)
        assert set(term.reads) | {f for f in optional if f} <= fields, term.name


def test_terms_and_optimizer_groups_that_apply_together_have_distinct_names() -> None:
    for config in _configs():
        terms = applying_terms(config)
        names = [term.name for term in terms]
        assert len(names) == len(set(names)), names
        groups = [term.optimizer.name for term in terms if term.optimizer]
        assert "model" not in groups and len(groups) == len(set(groups)), groups


def test_dp_refuses_batch_coupled_terms_and_own_optimizers_naming_the_setting() -> None:
    refused = {
        "tc": {"preset": "beta_tcvae"},
        "free_bits": {"preset": "vae"},
        "sparsity_kl": {"preset": "ae", "sparsity_kl": 0.1},
        "mmd": {"preset": "fds", "free_bits": 0.0},
        "gradient_reversal": {  # the alternating adversary has its own optimizer
            "preset": "fds",
            "privacy": {"epsilon": 1},
            "independence": 0.0,
            "adversary": "alternating",
        },
    }
    for culprit, params in refused.items():
        with pytest.raises(ConfigError, match=culprit):
            check_trainable_under_dp(make_config(**params).resolved())
    # free bits only couple the batch through the KL they clamp
    check_trainable_under_dp(make_config(preset="ae", free_bits=0.5).resolved())
    check_trainable_under_dp(
        make_config(preset="fds", privacy={"epsilon": 1}, independence=0.0).resolved()
    )


def _critic_loss(inputs: TermInputs) -> torch.Tensor:
    return inputs.networks["critic"](inputs.post.z.detach()).pow(2).mean()


# A term brought by one definition: its own network, trained by its own optimizer.
CRITIC = LossTerm(
    name="critic_score",
    weight="sparsity_l1",
    value=lambda inputs, weight: weight * inputs.networks["critic"](inputs.post.z)[:, 0],
    network=Network(
        "critic", lambda config, attributes, layout: torch.nn.Linear(config.latent_dim, 1)
    ),
    optimizer=OptimizerGroup(
        "critic", loss=_critic_loss, dp_refusal="the critic trains outside DP-SGD", lr_scale=2.0
    ),
)


def test_a_registered_term_is_summed_trained_and_checked_without_other_changes(
    monkeypatch,
) -> None:
    import numpy as np

    from fds.data.codec import Block
    from fds.data.stream import Rows
    from fds.models import build_model
    from fds.objectives import registry
    from fds.training.trainer import Trainer

    monkeypatch.setattr(registry, "TERMS", (*registry.TERMS, CRITIC))
    params = {"preset": "ae", "sparsity_l1": 0.1, "latent_dim": 3, "hidden_dims": (16,)}
    config = make_config(**params, epochs=2, batch_size=16).resolved()
    torch.manual_seed(0)
    net = build_model(config, [Block("real", 0, 5, "x")], None)
    assert set(net.state_dict()) >= {"critic.weight", "critic.bias"}  # saved with the model
    before = net.critic.weight.detach().clone()
    rows = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    trainer = Trainer(net, config, Rows(rows, np.arange(64)), show_progress=False)
    assert trainer.optimizers["critic"].param_groups[0]["lr"] == 2 * trainer.config.lr
    critic = {id(p) for p in net.critic.parameters()}
    assert not critic & {
        id(p) for group in trainer.optimizers["model"].param_groups for p in group["params"]
    }

    last = trainer.fit()[-1]
    assert "train_critic_score" in last and "train_critic" in last  # its term and its own loss
    assert not torch.equal(net.critic.weight, before)  # moved by its own optimizer only
    terms = net.loss_terms(torch.from_numpy(rows[:8]), dataset_size=64)
    summed = terms["nll"] + terms["sparsity_l1"] + terms["critic_score"]
    assert torch.allclose(terms["loss"], summed)
    with pytest.raises(ConfigError, match="the critic trains outside DP-SGD"):
        check_trainable_under_dp(config)
