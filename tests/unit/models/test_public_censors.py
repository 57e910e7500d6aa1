"""Censors of the public block beside the preset's MMD: the nearest-neighbour censor
(`local_censor`), whose bank of recent public codes lets the penalty see differences between the
sensitive groups finer than a batch shows and never leaves the training process, and the unbiased
plain MMD (`mmd_estimate`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fds import FDS
from fds.errors import ConfigError
from fds.objectives import AttributeSpec
from fds.objectives.local_censor import MIN_BANK, CodeBank, local_censor, neighbour_divergence
from fds.objectives.mmd import group_mmd
from tests.conftest import FAST

SHAPE = [AttributeSpec("shape", "categorical", 3)]


def _comb(n: int, seed: int, offset: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Codes on 6 levels (a sprite's size) plus a small shift by group: the groups' levels
    interleave, so a batch's spread hides them while a fine attacker reads them."""
    g = torch.Generator().manual_seed(seed)
    level = torch.randint(0, 6, (n,), generator=g).float()
    group = torch.randint(0, 3, (n,), generator=g)
    other = torch.randn(n, 2, generator=g)
    size = level + offset * group.float() + 0.005 * torch.randn(n, generator=g)
    return torch.cat([size[:, None], other], 1), group


def test_the_divergence_reads_a_fine_comb_that_the_batch_mmd_misses():
    bank, bank_groups = _comb(4096, 0, offset=0.1)
    codes, groups = _comb(128, 1, offset=0.1)
    fine = neighbour_divergence(codes[:, :1], bank[:, :1], bank_groups, 3).mean()
    plain, plain_groups = _comb(4096, 0, offset=0.0)
    unshifted, _ = _comb(128, 1, offset=0.0)
    none = neighbour_divergence(unshifted[:, :1], plain[:, :1], plain_groups, 3).mean()
    assert fine > 0.5  # close to log 3 = 1.1: each code's neighbours are of its own group
    assert none < 0.1 and none < fine / 5  # the same levels without the shift: only noise
    assert group_mmd(codes, groups[:, None].float(), SHAPE) < 0.05


def test_the_gradient_moves_codes_towards_the_other_groups():
    bank, bank_groups = _comb(4096, 0, offset=0.1)
    codes, _ = _comb(128, 1, offset=0.1)
    codes = codes[:, :1].clone().requires_grad_(True)
    neighbour_divergence(codes, bank[:, :1], bank_groups, 3).mean().backward()
    stepped = (codes - 0.01 * codes.grad.sign()).detach()
    after = neighbour_divergence(stepped, bank[:, :1], bank_groups, 3).mean()
    before = neighbour_divergence(codes.detach(), bank[:, :1], bank_groups, 3).mean()
    assert after < before


def test_the_term_is_silent_until_the_bank_fills_and_the_bank_is_first_in_first_out():
    bank = CodeBank(dim=3, n_attributes=1, size=MIN_BANK + 64)
    codes, groups = _comb(64, 0, offset=0.1)
    s = groups[:, None].float()
    for _ in range(MIN_BANK // 64):
        assert float(local_censor(codes, s, SHAPE, bank, update=True)) == 0.0
    assert bank.filled == MIN_BANK
    assert float(local_censor(codes, s, SHAPE, bank, update=False)) > 0.0
    assert bank.filled == MIN_BANK  # update=False (validation) leaves it alone
    for _ in range(3):
        local_censor(codes + 1, s, SHAPE, bank, update=True)
    assert bank.filled == MIN_BANK + 64  # full: the oldest codes made room
    assert (bank.view()[0][:, 1:] > 0).float().mean() > 0.5


def test_a_fitted_model_trains_it_and_saves_no_codes(tmp_path):
    images = (np.random.default_rng(0).random((300, 16, 16)) > 0.5).astype(np.uint8) * 255
    s = np.arange(300) % 3
    params = FAST | {"preset": "fds", "latent_dim": 4, "local_censor": 10.0, "batch_size": 64}
    model = FDS(**params | {"epochs": 3}).fit(images, sensitive=s)
    assert any(k == "train_local_censor" for k in model.history_[-1])
    assert model.model_.code_bank.filled > 0
    assert not [k for k in model.model_.state_dict() if "code_bank" in k]
    path = model.save(tmp_path / "m")
    assert FDS.load(path).transform(images[:5]).shape == (5, 4)


def test_dp_sgd_refuses_it_naming_the_field(digits):
    params = FAST | {"preset": "fds", "latent_dim": 4, "independence": 0.0, "epochs": 1}
    params |= {"local_censor": 1.0, "privacy": {"epsilon": 1.0}}
    with pytest.raises(ConfigError, match="local_censor"):
        FDS(**params).fit(digits[:200], sensitive=np.arange(200) % 2)


def test_the_unbiased_plain_mmd_does_not_reward_a_collapsed_block():
    """`mmd_estimate="unbiased"`: codes independent of the groups cost nothing on average, as a
    collapsed block does, while the biased estimate charges them and so pays for collapse (the
    shapes block collapsed at `mmd` 100 with it)."""
    from fds.objectives.mmd import conditional_group_mmd

    biased, unbiased = [], []
    for seed in range(20):
        g = torch.Generator().manual_seed(seed)
        codes, groups = torch.randn(128, 3, generator=g), torch.randint(0, 3, (128,), generator=g)
        s, one = groups[:, None].float(), torch.zeros(128, dtype=torch.long)
        biased.append(float(group_mmd(codes, s, SHAPE)))
        unbiased.append(float(conditional_group_mmd(codes, s, SHAPE, one)))
    assert min(biased) > 0.01
    assert abs(sum(unbiased) / len(unbiased)) < 0.005
    assert float(group_mmd(torch.zeros(128, 3), s, SHAPE)) == pytest.approx(0.0, abs=1e-6)


def test_fit_with_the_unbiased_mmd_trains(census):
    params = FAST | {"preset": "fds", "sensitive": ("sex",), "latent_dim": 4}
    biased = FDS(**params).fit(census).history_[-1]["train_mmd"]
    unbiased = FDS(**params | {"mmd_estimate": "unbiased"}).fit(census).history_[-1]["train_mmd"]
    assert biased > 0 and unbiased != biased
