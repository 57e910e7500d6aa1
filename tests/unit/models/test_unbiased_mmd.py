"""The unbiased plain MMD of the public block (`mmd_estimate`), beside the preset's biased one."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from fds import FDS
from fds.cli import app
from fds.errors import ConfigError
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


def test_an_unknown_estimate_is_refused_naming_the_field(census, tmp_path):
    """A misspelt `mmd_estimate` fails before training with one ConfigError naming it, and the
    CLI answers it with one line and exit 2, writing no run directory."""
    params = FAST | {"preset": "fds", "sensitive": ("sex",), "latent_dim": 4}
    with pytest.raises(ConfigError, match="mmd_estimate"):
        FDS(**params | {"mmd_estimate": "unbaised"}).fit(census)
    config = tmp_path / "fds.yaml"
    config.write_text("preset: fds\nmmd_estimate: unbaised\nepochs: 1\n")
    out = tmp_path / "run"
    result = CliRunner().invoke(
        app,
        [
            "train",
            "--data",
            "census",
            "--sensitive",
            "sex",
            "--config",
            str(config),
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 2
    assert "mmd_estimate" in result.output and "Traceback" not in result.output
    assert not out.exists()
