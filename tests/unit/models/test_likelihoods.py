"""Decoder heads in `fds.nn.likelihoods`: each NLL is checked against the matching
`torch.distributions` log-probability, plus the shapes/ranges of means and samples."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import distributions as D

from fds.data.codec import Block
from fds.errors import ConfigError
from fds.nn import likelihoods as L

BATCH = 7


def _randn(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _one_hot(batch: int, k: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.one_hot(torch.randint(0, k, (batch,), generator=g), k).double()


# ------------------------------------------------------------------------------ NLL vs torch
def test_bernoulli_nll_is_minus_log_prob_with_logits() -> None:
    head = L.Bernoulli(4)
    logits = _randn(BATCH, 4) * 3
    x = (_randn(BATCH, 4, seed=1) > 0).double()
    expected = -D.Bernoulli(logits=logits).log_prob(x).sum(-1)
    got = head.nll(logits, x)
    assert got.shape == (BATCH,)
    assert torch.allclose(got, expected)


@pytest.mark.parametrize("scale", [1.0, 0.3])
def test_gaussian_fixed_scale_nll_is_minus_normal_log_prob(scale: float) -> None:
    head = L.Gaussian(3, scale=scale)
    mean, x = _randn(BATCH, 3), _randn(BATCH, 3, seed=1)
    expected = -D.Normal(mean, scale).log_prob(x).sum(-1)
    assert torch.allclose(head.nll(mean, x), expected)


def test_gaussian_learned_nll_uses_softplus_scale_with_floor() -> None:
    dim = 3
    head = L.GaussianLearned(dim)
    assert head.n_params == 2 * dim
    params = _randn(BATCH, 2 * dim) * 2
    x = _randn(BATCH, dim, seed=1)
    mean, raw = params[:, :dim], params[:, dim:]
    expected = -D.Normal(mean, F.softplus(raw) + 1e-3).log_prob(x).sum(-1)
    assert torch.allclose(head.nll(params, x), expected)


def test_gaussian_learned_scale_never_vanishes() -> None:
    head = L.GaussianLearned(1)
    params = torch.tensor([[0.0, -1e4]], dtype=torch.float64)  # raw scale → softplus ≈ 0
    nll = head.nll(params, torch.zeros(1, 1, dtype=torch.float64))
    assert torch.isfinite(nll).all()  # the floor keeps log σ finite at a perfect fit


def test_categorical_nll_is_minus_log_prob_of_the_one_hot_class() -> None:
    k = 5
    head = L.Categorical(k)
    logits = _randn(BATCH, k) * 2
    x = _one_hot(BATCH, k)
    expected = -D.Categorical(logits=logits).log_prob(x.argmax(-1))
    assert torch.allclose(head.nll(logits, x), expected)


def test_mixture_nll_matches_mixture_same_family() -> None:
    dim, k = 3, 4
    head = L.MixtureOfGaussians(dim, components=k)
    assert head.n_params == 3 * k * dim
    params = _randn(BATCH, 3 * k * dim)
    x = _randn(BATCH, dim, seed=1) * 2
    logits, means, raw = params.view(BATCH, 3, k, dim).unbind(1)  # (logits, means, scales) × K × D
    # one mixture per column: put the component axis last, as MixtureSameFamily expects
    mix = D.MixtureSameFamily(
        D.Categorical(logits=logits.transpose(1, 2)),
        D.Normal(means.transpose(1, 2), F.softplus(raw.transpose(1, 2)) + 1e-3),
    )
    expected = -mix.log_prob(x).sum(-1)
    assert torch.allclose(head.nll(params, x), expected)
    assert torch.allclose(head.mean(params), mix.mean)


# ----------------------------------------------------------------------------- means, samples
def test_means_have_the_data_shape_and_range() -> None:
    bern = L.Bernoulli(4).mean(_randn(BATCH, 4) * 10)
    assert bern.shape == (BATCH, 4) and ((bern >= 0) & (bern <= 1)).all()
    gauss = _randn(BATCH, 3)
    assert torch.equal(L.Gaussian(3).mean(gauss), gauss)
    learned = _randn(BATCH, 6)
    assert torch.equal(L.GaussianLearned(3).mean(learned), learned[:, :3])
    cat = L.Categorical(5).mean(_randn(BATCH, 5))
    assert cat.shape == (BATCH, 5) and (cat > 0).all()
    assert torch.allclose(cat.sum(-1), torch.ones(BATCH, dtype=cat.dtype))


def _heads_and_params() -> list[tuple[L.Likelihood, torch.Tensor]]:
    heads = [
        L.Bernoulli(4),
        L.Gaussian(3, scale=0.5),
        L.GaussianLearned(3),
        L.MixtureOfGaussians(3, components=2),
        L.Categorical(5),
    ]
    return [(h, _randn(BATCH, h.n_params, seed=i)) for i, h in enumerate(heads)]


@pytest.mark.parametrize("index", range(5))
def test_sample_shape_and_seeded_reproducibility(index: int) -> None:
    head, params = _heads_and_params()[index]
    a = head.sample(params, torch.Generator().manual_seed(3))
    b = head.sample(params, torch.Generator().manual_seed(3))
    c = head.sample(params, torch.Generator().manual_seed(4))
    assert a.shape == (BATCH, head.dim)
    assert torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_bernoulli_samples_are_binary_and_follow_the_probabilities() -> None:
    logits = torch.tensor([[-20.0, 20.0, 0.0]]).repeat(2000, 1)
    draws = L.Bernoulli(3).sample(logits, torch.Generator().manual_seed(0))
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    freq = draws.mean(0)
    assert freq[0] == 0.0 and freq[1] == 1.0
    assert 0.45 < freq[2] < 0.55


def test_categorical_samples_are_one_hot_and_follow_the_probabilities() -> None:
    logits = torch.log(torch.tensor([[0.7, 0.2, 0.1]])).repeat(3000, 1)
    draws = L.Categorical(3).sample(logits, torch.Generator().manual_seed(0))
    assert draws.shape == (3000, 3)
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(draws.sum(-1), torch.ones(3000))
    assert torch.allclose(draws.mean(0), torch.tensor([0.7, 0.2, 0.1]), atol=0.03)


def test_gaussian_samples_have_the_requested_spread() -> None:
    mean = torch.full((4000, 1), 2.0)
    fixed = L.Gaussian(1, scale=0.5).sample(mean, torch.Generator().manual_seed(0))
    assert fixed.mean().item() == pytest.approx(2.0, abs=0.05)
    assert fixed.std().item() == pytest.approx(0.5, rel=0.05)
    raw = torch.full((4000, 1), 1.0)
    learned = L.GaussianLearned(1).sample(
        torch.cat([mean, raw], 1), torch.Generator().manual_seed(0)
    )
    assert learned.std().item() == pytest.approx(F.softplus(raw[0]).item() + 1e-3, rel=0.05)


def test_mixture_samples_land_on_the_chosen_component() -> None:
    # one column, two components: weight ~1 on the component at +5 with a tiny scale
    logits = torch.tensor([[-30.0, 30.0]])
    means = torch.tensor([[-5.0, 5.0]])
    raw = torch.tensor([[-30.0, -30.0]])
    params = torch.cat([logits, means, raw], 1).repeat(100, 1)
    draws = L.MixtureOfGaussians(1, components=2).sample(params, torch.Generator().manual_seed(0))
    assert torch.allclose(draws, torch.full((100, 1), 5.0), atol=0.05)


# ----------------------------------------------------------------------------------- Mixed
def _tabular_blocks() -> list[Block]:
    return [
        Block("real", 0, 2, "real"),
        Block("binary", 2, 4, "binary"),
        Block("categorical", 4, 7, "colour"),
        Block("categorical", 7, 9, "size"),
    ]


def _mixed_heads() -> list[L.Likelihood]:
    return [L.GaussianLearned(2), L.Bernoulli(2), L.Categorical(3), L.Categorical(2)]


def _row_data(batch: int) -> torch.Tensor:
    real = _randn(batch, 2, seed=5)
    binary = (_randn(batch, 2, seed=6) > 0).double()
    return torch.cat([real, binary, _one_hot(batch, 3, seed=7), _one_hot(batch, 2, seed=8)], 1)


def test_mixed_routes_blocks_and_adds_their_nlls() -> None:
    blocks, heads = _tabular_blocks(), _mixed_heads()
    mixed = L.Mixed(blocks, heads)
    assert mixed.n_params == sum(h.n_params for h in heads) == 4 + 2 + 3 + 2
    params = _randn(BATCH, mixed.n_params, seed=9)
    x = _row_data(BATCH)

    expected, offset = torch.zeros(BATCH, dtype=torch.float64), 0
    per_block = {}
    for block, head in zip(blocks, heads, strict=True):
        p = params[:, offset : offset + head.n_params]
        offset += head.n_params
        per_block[block.name] = head.nll(p, x[:, block.start : block.stop])
        expected = expected + per_block[block.name]
    assert torch.allclose(mixed.nll(params, x), expected)
    got_blocks = mixed.nll_per_block(params, x)
    assert got_blocks.keys() == per_block.keys()
    for name, value in per_block.items():
        assert torch.allclose(got_blocks[name], value)


def test_mixed_nll_matches_torch_distributions_end_to_end() -> None:
    mixed = L.Mixed(_tabular_blocks(), _mixed_heads())
    params = _randn(BATCH, mixed.n_params, seed=10)
    x = _row_data(BATCH)
    mean, raw = params[:, 0:2], params[:, 2:4]
    expected = (
        -D.Normal(mean, F.softplus(raw) + 1e-3).log_prob(x[:, 0:2]).sum(-1)
        - D.Bernoulli(logits=params[:, 4:6]).log_prob(x[:, 2:4]).sum(-1)
        - D.Categorical(logits=params[:, 6:9]).log_prob(x[:, 4:7].argmax(-1))
        - D.Categorical(logits=params[:, 9:11]).log_prob(x[:, 7:9].argmax(-1))
    )
    assert torch.allclose(mixed.nll(params, x), expected)


def test_mixed_mean_and_sample_have_the_row_layout() -> None:
    mixed = L.Mixed(_tabular_blocks(), _mixed_heads())
    params = _randn(BATCH, mixed.n_params, seed=11)
    mean = mixed.mean(params)
    assert mean.shape == (BATCH, 9)
    assert torch.equal(mean[:, 0:2], params[:, 0:2])  # real block: the predicted means
    assert torch.allclose(mean[:, 4:7].sum(-1), torch.ones(BATCH, dtype=mean.dtype))
    draw = mixed.sample(params, torch.Generator().manual_seed(0))
    again = mixed.sample(params, torch.Generator().manual_seed(0))
    assert draw.shape == (BATCH, 9) and torch.equal(draw, again)
    assert set(draw[:, 2:9].unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(draw[:, 4:7].sum(-1), torch.ones(BATCH, dtype=draw.dtype))
    assert torch.equal(draw[:, 7:9].sum(-1), torch.ones(BATCH, dtype=draw.dtype))


# --------------------------------------------------------------------------- build_likelihood
@pytest.mark.parametrize(
    ("real", "cls"),
    [
        ("gaussian", L.Gaussian),
        ("gaussian_learned", L.GaussianLearned),
        ("mixture", L.MixtureOfGaussians),
        ("bernoulli", L.Bernoulli),
    ],
)
def test_build_likelihood_single_real_block_is_the_plain_head(real: str, cls: type) -> None:
    head = L.build_likelihood([Block("real", 0, 4, "real")], real, scale=0.5, components=3)
    assert type(head) is cls
    assert head.dim == 4
    if cls is L.Gaussian:
        assert head.scale == 0.5
    if cls is L.MixtureOfGaussians:
        assert head.components == 3 and head.n_params == 3 * 3 * 4


def test_build_likelihood_for_a_table_routes_each_block_to_its_head() -> None:
    blocks = _tabular_blocks()
    head = L.build_likelihood(blocks, "mixture", scale=1.0, components=2)
    assert isinstance(head, L.Mixed)
    kinds = [type(h) for h in head.heads]
    assert kinds == [L.MixtureOfGaussians, L.Bernoulli, L.Categorical, L.Categorical]
    assert [h.dim for h in head.heads] == [2, 2, 3, 2]
    assert head.dim == 9
    params = _randn(BATCH, head.n_params)
    nll = head.nll(params, _row_data(BATCH))
    assert nll.shape == (BATCH,) and torch.isfinite(nll).all()


def test_build_likelihood_single_categorical_block() -> None:
    head = L.build_likelihood([Block("categorical", 0, 4, "c")], "gaussian", scale=1, components=2)
    assert type(head) is L.Categorical and head.dim == 4


def test_build_likelihood_rejects_an_unknown_real_head_by_name() -> None:
    with pytest.raises(ConfigError, match="gausian"):
        L.build_likelihood([Block("real", 0, 2, "real")], "gausian", scale=1.0, components=2)
