"""The unbiased plain MMD of the public block (`mmd_estimate`), beside the preset's biased one."""

from __future__ import annotations

import pytest
import torch

from fds import FDS
from fds.objectives import AttributeSpec
from fds.objectives.mmd import conditional_group_mmd, group_mmd
from tests.conftest import FAST

SHAPE = [AttributeSpec("shape", "categorical", 3)]


def test_the_unbiased_plain_mmd_does_not_reward_a_collapsed_block():
    """`mmd_estimate="unbiased"`: codes independent of the groups cost nothing on average, as a
    collapsed block does, while the biased estimate charges them and so pays for collapse (the
    shapes block collapsed at `mmd` 100 with it)."""
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
