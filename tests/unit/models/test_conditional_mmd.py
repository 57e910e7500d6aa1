"""The MMD conditioned on given columns (`mmd_given`): the public block may keep what those
columns reveal of the sensitive attribute, and only what goes beyond them is penalised."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from fds import FDS
from fds.config import FDSConfig
from fds.errors import ConfigError, DataError
from fds.nn.likelihoods import Gaussian
from fds.nn.posteriors import PosteriorSample
from fds.objectives import AttributeSpec
from fds.objectives.base import DataLayout, TermInputs
from fds.objectives.mmd import conditional_group_mmd, given_strata, group_mmd
from fds.objectives.private_spread import given_without_key, swapped_within_groups
from tests.conftest import FAST

SEX = [AttributeSpec("sex", "categorical", 2)]
KEY = FAST | {"preset": "fds", "sensitive": ("sex",), "latent_dim": 4}


def _batch(seed: int, n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """A stratum y in 0..3 and a sensitive s that depends on it (P(s=1 | y) = 0.1 + 0.25 y)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    s = (torch.rand(n, generator=g) < 0.1 + 0.25 * y).float()
    return y, s


def test_a_block_that_carries_only_the_stratum_is_not_penalised():
    y, s = _batch(0)
    noise = 0.3 * torch.randn(len(y), 2, generator=torch.Generator().manual_seed(1))
    public = y[:, None].float() + noise  # reveals s only through y
    assert group_mmd(public, s[:, None], SEX) > 0.05  # the plain MMD pushes y out
    assert abs(conditional_group_mmd(public, s[:, None], SEX, y)) < 0.01
    leaky = public + 2 * s[:, None]  # reveals s beyond y
    assert conditional_group_mmd(leaky, s[:, None], SEX, y) > 0.1


def test_the_conditional_estimate_is_unbiased_so_collapse_does_not_pay():
    # codes independent of s within each stratum: the estimate averages to 0, as for a collapsed
    # block (a biased estimate would be positive here and 0 only at the collapse)
    values = []
    for seed in range(20):
        y, s = _batch(seed, n=128)
        public = torch.randn(len(y), 3, generator=torch.Generator().manual_seed(100 + seed))
        values.append(float(conditional_group_mmd(public, s[:, None], SEX, y)))
    assert abs(sum(values) / len(values)) < 0.01
    y, s = _batch(0, n=128)
    collapsed = torch.zeros(len(y), 3)
    assert float(conditional_group_mmd(collapsed, s[:, None], SEX, y)) == pytest.approx(0.0)


def test_the_swapped_key_comes_from_another_row_of_the_same_group():
    torch.manual_seed(0)
    groups = torch.tensor([0, 1, 0, 1, 1, 0, 2, 1])
    private = torch.arange(8.0)[:, None].repeat(1, 2)
    swapped = swapped_within_groups(private, groups)
    rows = swapped[:, 0].long()
    assert sorted(rows.tolist()) == list(range(8))  # a permutation
    assert torch.equal(groups[rows], groups)  # within each group
    assert not torch.equal(rows, torch.arange(8))


def _given_inputs(decode_from_key: bool) -> TermInputs:
    """A batch whose one given column (slot 0) the decoder reads from the public block, or from
    the key: the key holds the column and s, the public block the column alone."""
    torch.manual_seed(0)
    config = FDSConfig(preset="fds", sensitive=("sex",), latent_dim=4, private_only=True)
    config = config.resolved()
    y, s = _batch(0, n=256)
    column = y.float() + 0.1 * torch.randn(len(y))
    z = torch.stack([column, column, column, s], 1)

    def decode(codes: torch.Tensor) -> torch.Tensor:
        return codes[:, 2:3] if decode_from_key else codes[:, 0:1]

    return TermInputs(
        config,
        PosteriorSample(z=z, mean=z, logvar=torch.zeros_like(z)),
        s[:, None],
        SEX,
        len(z),
        {},
        column[:, None],
        decode(z),
        decode,
        torch.nn.Identity(),
        Gaussian(1),
        DataLayout(1, given_slots=((0,),)),
    )


def test_the_given_columns_must_decode_without_the_rows_own_key():
    """With `mmd_given` the key may hold anything, but the decoder must read the given columns
    from the public block: another row's key of the same group costs nothing then, and much when
    the decoder took them from the key."""
    assert float(given_without_key(_given_inputs(decode_from_key=False))) == 0.0
    assert float(given_without_key(_given_inputs(decode_from_key=True))) > 0.5


def test_strata_from_a_category_and_a_number_cross():
    onehot = torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])]
    number = torch.arange(8.0)[:, None]
    x = torch.cat([number, onehot], 1)
    assert given_strata(x, [[1, 2, 3]]).tolist() == [0, 1, 2, 0, 1, 2, 0, 1]
    assert given_strata(x, [[0]]).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]  # quartiles
    crossed = given_strata(x, [[0], [1, 2, 3]])
    assert len(set(crossed.tolist())) == len({(a // 2, a % 3) for a in range(8)})


def test_fit_with_mmd_given_trains_the_conditional_term_and_reloads(census, tmp_path):
    model = FDS(**KEY, mmd_given=("income",)).fit(census)
    assert model.model_.layout.given_slots and len(model.model_.layout.given_slots[0]) == 1
    assert model.history_[-1]["train_mmd"] != 0
    model.save(tmp_path / "model")
    loaded = FDS.load(tmp_path / "model")
    assert list(loaded.get_params()["mmd_given"]) == ["income"]
    pd.testing.assert_frame_equal(
        pd.DataFrame(loaded.transform(census)), pd.DataFrame(model.transform(census))
    )


@pytest.mark.parametrize(
    ("params", "error", "culprit"),
    [
        ({"mmd_given": ("salary",)}, DataError, "'salary'"),
        ({"mmd_given": ("sex",)}, ConfigError, "'sex' is sensitive"),
        ({"mmd_given": ("income",), "mmd": 0.0}, ConfigError, "set mmd > 0"),
    ],
)
def test_mmd_given_refuses_what_it_cannot_condition_on(census, params, error, culprit):
    with pytest.raises(error, match=culprit):
        FDS(**KEY | params).fit(census)


def test_cli_mmd_given_reaches_the_config_and_an_unknown_column_is_one_line(census, tmp_path):
    from tests.cli_helpers import fds, one_line_error

    census.to_csv(tmp_path / "census.csv", index=False)
    (tmp_path / "fast.yaml").write_text("latent_dim: 4\nhidden_dims: [32]\nepochs: 1\n")
    args = ["train", "--data", tmp_path / "census.csv", "--config", tmp_path / "fast.yaml"]
    args += ["--preset", "fds", "--sensitive", "sex", "--quiet", "--json"]
    ok = fds(*args, "--mmd-given", "income", "--out", tmp_path / "run")
    assert ok.exit_code == 0, ok.output
    assert "mmd_given:\n- income" in (tmp_path / "run" / "config.yaml").read_text()
    bad = fds(*args, "--mmd-given", "salary", "--out", tmp_path / "bad")
    one_line_error(bad, "salary")
    assert not (tmp_path / "bad" / "model").exists()


def test_under_mmd_given_the_preset_key_is_wider_and_the_blocks_may_depend():
    """The key holds what the public block gives up, not the attributes alone: half the latent
    (2 to 4 wide) and no independence between the blocks, unless the user sets them."""
    plain = FDSConfig(preset="fds", sensitive=("sex",)).resolved()
    given = FDSConfig(preset="fds", sensitive=("sex",), mmd_given=("income",)).resolved()
    assert (plain.private_dim, plain.independence) == (2, 1.0)
    assert (given.private_dim, given.independence) == (4, 0.0)
    small = FDSConfig(preset="fds", latent_dim=4, mmd_given=("income",)).resolved()
    assert small.private_dim == 2
    mine = FDSConfig(preset="fds", mmd_given=("income",), private_dim=3, independence=0.5)
    assert (mine.resolved().private_dim, mine.resolved().independence) == (3, 0.5)
