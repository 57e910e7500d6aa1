"""`local_epochs` below 1: a site trains on 1/k of its rows per round and visits each of its
training rows once every k rounds (more rounds of fewer local steps at the same data budget)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from fds.cli import app
from fds.errors import ConfigError
from fds.federated.settings import make_settings
from fds.federated.site import epoch_share

runner = CliRunner()


@pytest.mark.parametrize("k", [2, 3, 4])
def test_each_row_is_visited_once_in_every_pass_of_k_rounds(k: int) -> None:
    n = 103  # not a multiple of k: the parts differ by one row at most
    passes = []
    for first in (1, k + 1):
        parts = [epoch_share(n, 1 / k, r, seed=7) for r in range(first, first + k)]
        assert max(len(p) for p in parts) - min(len(p) for p in parts) <= 1
        visited = np.concatenate(parts)
        assert np.array_equal(np.sort(visited), np.arange(n))  # each row exactly once
        passes.append(parts)
    # a new pass shuffles again, so a round's part is not the same rows as k rounds before
    assert not np.array_equal(passes[0][0], passes[1][0])
    # the same seed gives the same parts: a site needs no state between rounds
    assert np.array_equal(epoch_share(n, 1 / k, 2, seed=7), passes[0][1])
    assert epoch_share(n, 1.0, 1, seed=7) is None and epoch_share(n, 3.0, 5, seed=7) is None


def test_a_site_trains_on_its_share_and_is_weighed_by_it(digits_plan) -> None:
    """Through the ClientApp's training path: the examples a site reports per round are its
    share, and over k rounds they add up to its training rows."""
    from fds.federated.client_app import _train

    model = {"latent_dim": 3, "hidden_dims": [16], "batch_size": 32}
    plan, start = digits_plan(model, make_settings(sites=2, rounds=4, seed=0, local_epochs=0.25))
    whole, _ = digits_plan(model, make_settings(sites=2, rounds=1, seed=0))
    _, _, n_all, _ = _train(whole, start, {"partition-id": 0}, 1, 0.0)
    counts = [_train(plan, start, {"partition-id": 0}, r, 0.0)[2] for r in range(1, 5)]
    assert sum(counts) == n_all and max(counts) - min(counts) <= 1


@pytest.mark.parametrize("bad", [0.3, 1.5, 0, -1, 0.0001 + 0.5])
def test_a_local_epoch_that_is_not_whole_or_1_over_k_is_refused(bad: float) -> None:
    with pytest.raises(ConfigError, match=r"federated\.local_epochs"):
        make_settings(local_epochs=bad)


def test_the_cli_refuses_a_bad_local_epochs_with_exit_2_and_one_line(tmp_path) -> None:
    config = tmp_path / "fed.yaml"
    config.write_text(yaml.safe_dump({"data": "digits", "federated": {"local_epochs": 0.3}}))
    result = runner.invoke(
        app, ["federated", "simulate", "--config", str(config), "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    assert "local_epochs must be a whole number of epochs or 1/k of one" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
