"""The key prior: public-only decodings draw keys per sensitive group, so the attributes follow
their marginal; `private="neutral"` gives every row the mean key."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from fds import FDS
from fds.cli import app
from fds.errors import ModelFormatError
from fds.models.key_prior import KeyPrior, group_index
from fds.objectives import AttributeSpec


def test_the_key_prior_draws_each_group_as_often_as_it_occurs() -> None:
    rng = np.random.default_rng(0)
    groups = (rng.random(2000) < 0.3).astype(int)
    keys = np.where(groups[:, None] == 1, [[3.0, -1.0]], [[-2.0, 0.5]]) + rng.normal(
        0, 0.1, (2000, 2)
    )
    prior = KeyPrior.fit(keys, groups)
    drawn = prior.sample(4000, np.random.default_rng(1)).numpy()
    assert np.mean(drawn[:, 0] > 0.5) == pytest.approx(0.3, abs=0.03)
    np.testing.assert_allclose(prior.mean().numpy(), keys.mean(0), atol=1e-4)
    assert not torch.equal(
        prior.sample(5, np.random.default_rng()), prior.sample(5, np.random.default_rng())
    )
    assert torch.equal(
        prior.sample(5, np.random.default_rng(7)), prior.sample(5, np.random.default_rng(7))
    )
    tensors = prior.tensors()
    restored = KeyPrior.from_tensors(dict(tensors), 2)
    assert torch.equal(restored.locs, prior.locs)
    assert KeyPrior.from_tensors({}, 2) is None
    with pytest.raises(ModelFormatError, match="does not fit a private block of 3"):
        KeyPrior.from_tensors(dict(tensors), 3)
    with pytest.raises(ModelFormatError, match="part of the key prior"):
        KeyPrior.from_tensors({"fitted.key_locs": prior.locs}, 2)


def test_group_index_combines_classes_and_continuous_quartiles() -> None:
    s = torch.tensor([[0, 0.1], [1, 0.2], [0, 5.0], [1, 9.0]])
    specs = [AttributeSpec("a", "categorical", 2), AttributeSpec("b", "continuous")]
    assert len(set(group_index(s, specs).tolist())) == 4


def _table(n: int = 800, share: float = 0.3) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    s = (rng.random(n) < share).astype(int)
    return pd.DataFrame(
        {
            "x1": 2.0 * s + rng.normal(0, 0.5, n),
            "x2": rng.normal(size=n),
            "s": np.where(s, "yes", "no"),
        }
    )


@pytest.mark.slow
def test_public_only_decodings_follow_the_marginal_not_the_majority(tmp_path) -> None:
    table = _table()
    model = FDS(
        preset="fds", sensitive=("s",), latent_dim=4, epochs=60, hidden_dims=[32], batch_size=64,
        verbose=False, seed=0,
    ).fit(table)  # fmt: skip
    public = model.transform(table, part="public")
    drawn = model.inverse_transform(public, seed=0)
    assert (drawn["s"] == "yes").mean() == pytest.approx(0.3, abs=0.08)
    neutral = model.inverse_transform(public, private="neutral")
    assert neutral["s"].nunique() == 1  # one key for everyone
    again = model.inverse_transform(public, seed=0)
    pd.testing.assert_frame_equal(drawn, again)
    assert not model.inverse_transform(public)["s"].equals(model.inverse_transform(public)["s"])
    model.save(tmp_path / "m")
    loaded = FDS.load(tmp_path / "m")
    torch.testing.assert_close(loaded.key_prior_.locs, model.key_prior_.locs)
    pd.testing.assert_frame_equal(loaded.inverse_transform(public, seed=0), drawn)
    np.save(tmp_path / "public.npy", public)
    args = ["decode", "-m", str(tmp_path / "m"), "-l", str(tmp_path / "public.npy")]
    result = CliRunner().invoke(app, [*args, "--private", "neutral", "-o", str(tmp_path / "n.csv")])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(tmp_path / "n.csv")["s"].nunique() == 1
