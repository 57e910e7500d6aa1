"""The pieces a site and the server run without Flower: the shared codec pooled from per-site
statistics, FedProx's proximal term in the ordinary Trainer, and the CLI's config errors."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from fds.cli import app
from fds.config import make_config
from fds.data.datasets import make_census
from fds.data.image_codec import ImageCodec
from fds.data.tabular import TabularCodec
from fds.errors import ConfigError, DataError
from fds.federated.schema import merge_codecs, site_codec_state, usable_site_states
from fds.federated.site import SiteData, fit_local_codec, train_locally
from fds.models import build_model

runner = CliRunner()


def _state(frame) -> dict:
    return site_codec_state(TabularCodec.fit(frame), len(frame))


def test_pooled_codec_equals_the_codec_of_the_pooled_rows() -> None:
    table = make_census(n=300, seed=1)
    a, b = table.iloc[:100], table.iloc[100:]
    merged = merge_codecs([("a", _state(a)), ("b", _state(b))])
    pooled = TabularCodec.fit(table)
    for got, want in zip(merged.columns, pooled.columns, strict=True):
        assert got.name == want.name and got.kind == want.kind
        assert got.center == pytest.approx(want.center, rel=1e-9, abs=1e-9)
        assert got.scale == pytest.approx(want.scale, rel=1e-9)
        assert got.categories == want.categories
    assert merged.n_encoded == pooled.n_encoded
    assert np.allclose(merged.encode(table), pooled.encode(table), atol=1e-5)


def test_categories_seen_at_one_site_only_are_kept() -> None:
    table = make_census(n=400, seed=2)
    rare = table["occupation"].value_counts().index[-1]
    a, b = table[table["occupation"] != rare], table[table["occupation"] == rare]
    merged = merge_codecs([("a", _state(a)), ("b", _state(b))])
    column = next(c for c in merged.columns if c.name == "occupation")
    assert rare in column.categories and len(column.categories) == table["occupation"].nunique()


def test_sites_that_disagree_are_refused() -> None:
    table = make_census(n=200, seed=3)
    with pytest.raises(DataError, match="columns"):
        merge_codecs([("a", _state(table)), ("b", _state(table.drop(columns=["age"])))])
    images = ImageCodec.fit(np.zeros((2, 8, 8), np.uint8))
    other = ImageCodec.fit(np.zeros((2, 9, 9), np.uint8))
    with pytest.raises(DataError, match="site b holds images of another shape"):
        merge_codecs([("a", site_codec_state(images, 2)), ("b", site_codec_state(other, 2))])
    quantile = TabularCodec.fit(table, transform="quantile")
    with pytest.raises(ConfigError, match="continuous_transform: standard"):
        site_codec_state(quantile, len(table))


def _first_real(state: dict) -> dict:
    return next(c for c in state["codec"]["columns"] if c["kind"] == "continuous")


UNUSABLE = {
    "center-1e200": lambda s: _first_real(s).update(center=1e200),
    "scale-inf": lambda s: _first_real(s).update(scale=float("inf")),
    "scale-nan": lambda s: _first_real(s).update(scale=float("nan")),
    "center-text": lambda s: _first_real(s).update(center="0"),
    "rows-zero": lambda s: s.update(n=0),
    "categories-objects": lambda s: next(
        c for c in s["codec"]["columns"] if c["kind"] == "categorical"
    ).update(categories=[{"a": 1}]),
    "codec-a-list": lambda s: s.update(codec=[]),
}


@pytest.mark.parametrize("case", [*UNUSABLE, "not-json"])
def test_a_site_with_unusable_statistics_is_left_out_with_a_log_line(caplog, case) -> None:
    """Like a site whose query failed (its data held NaN): named in the log, the others merge."""
    table = make_census(n=300, seed=4)
    halves = (table.iloc[:150], table.iloc[150:])
    good = [(f"site-{i}", json.dumps(_state(part))) for i, part in enumerate(halves)]
    bad = _state(table.iloc[:60])
    if case == "not-json":
        report = "{not json"
    else:
        UNUSABLE[case](bad)
        report = json.dumps(bad)  # inf and NaN travel as JSON's Infinity / NaN
    with caplog.at_level(logging.WARNING, logger="fds.federated"):
        usable = usable_site_states([good[0], ("site-9", report), good[1]])
    assert [site for site, _ in usable] == ["site-0", "site-1"]
    assert "site site-9 is left out" in caplog.text
    merged, honest = merge_codecs(usable), merge_codecs([("a", _state(h)) for h in halves])
    assert np.array_equal(merged.encode(table), honest.encode(table))


def test_a_site_whose_column_holds_1e200_refuses_its_own_schema() -> None:
    """The site's schema query fails (the server logs it and goes on), as for a NaN."""
    table = make_census(n=100, seed=5)
    table["age"] = table["age"].astype(float)
    table.loc[7, "age"] = 1e200
    with pytest.raises(DataError, match=r"'age' holds 1e\+200 at row 7"):
        fit_local_codec(table, make_config())


def test_proximal_term_keeps_local_weights_near_the_global_ones(digits) -> None:
    params = make_config(latent_dim=3, hidden_dims=(16,), batch_size=32, lr=1e-2).model_dump()
    codec = ImageCodec.fit(digits)
    config = make_config(**params).resolved()
    torch.manual_seed(0)
    start = {
        k: v.clone() for k, v in build_model(config, codec.blocks, codec.chw).state_dict().items()
    }
    site = SiteData("s", digits)

    def moved(mu: float) -> float:
        state, metrics, n = train_locally(site, params, codec, start, epochs=2, seed=1, mu=mu)
        assert n > 0 and np.isfinite(metrics["train_loss"])
        return sum(float((state[k] - start[k]).pow(2).sum()) for k in start) ** 0.5

    assert moved(1000.0) < 0.5 * moved(0.0)


def test_kept_optimizer_state_carries_adams_moments_into_the_next_round(digits) -> None:
    """With keep_optimizer_state the site's Adam continues: its step count adds up over rounds
    and its first update differs from a fresh Adam's from the same weights."""
    params = make_config(latent_dim=3, hidden_dims=(16,), batch_size=32).model_dump()
    codec = ImageCodec.fit(digits)
    config = make_config(**params).resolved()
    torch.manual_seed(0)
    start = build_model(config, codec.blocks, codec.chw).state_dict()
    site, moments = SiteData("s", digits), {}
    state, _, n = train_locally(
        site, params, codec, start, epochs=1, seed=1, optimizer_state=moments
    )
    steps = n // 32
    assert {float(m["step"]) for m in moments.values()} == {steps}
    kept, _, _ = train_locally(
        site, params, codec, state, epochs=1, seed=2, optimizer_state=moments
    )
    fresh, _, _ = train_locally(site, params, codec, state, epochs=1, seed=2)
    assert {float(m["step"]) for m in moments.values()} == {2 * steps}
    assert all(torch.isfinite(v).all() for v in kept.values())
    assert any(not torch.allclose(kept[k], fresh[k]) for k in kept)


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_a_learning_rate_schedule_spans_the_rounds(digits_plan, schedule) -> None:
    """Under cosine a site's last-round update from the same weights is far smaller than its
    first-round update (the schedule decays once over the federation, not within each round);
    under constant the two are alike."""
    from fds.federated.client_app import _train
    from fds.federated.settings import make_settings

    model = {"latent_dim": 3, "hidden_dims": [16], "batch_size": 32, "lr_schedule": schedule}
    plan, start = digits_plan(model, make_settings(sites=2, rounds=10, seed=0))

    def moved(server_round: int) -> float:
        state, _, _, _ = _train(plan, start, {"partition-id": 0}, server_round, 0.0)
        return sum(float((state[k] - start[k]).pow(2).sum()) for k in start) ** 0.5

    first, last = moved(1), moved(10)
    if schedule == "cosine":
        assert last < 0.1 * first
    else:
        assert 0.5 * first < last < 2 * first


def test_cli_rejects_an_unknown_federated_key_with_one_line(tmp_path) -> None:
    config = tmp_path / "fed.yaml"
    config.write_text(
        yaml.safe_dump({"data": "digits", "federated": {"strategy": "fedavg", "round": 2}})
    )
    result = runner.invoke(
        app, ["federated", "simulate", "--config", str(config), "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    assert "unknown option 'round' (did you mean 'rounds'?)" in result.output
    assert not (tmp_path / "run").exists()
    help_text = runner.invoke(app, ["federated", "simulate", "--help"]).output
    assert "Example" in help_text


@pytest.mark.parametrize(
    ("fed", "message"),
    [
        # the proximal term has no per-example form, so DP-SGD could not clip it
        (
            {"strategy": "fedprox", "strategy_params": {"proximal_mu": 0.01}},
            "fedprox cannot be combined with client-side DP-SGD",
        ),
        # each round is a fresh DP-SGD run, accounted from a fresh optimizer
        (
            {"keep_optimizer_state": True},
            "keep_optimizer_state cannot be combined with client-side DP-SGD",
        ),
    ],
)
def test_options_at_odds_with_client_dp_sgd_are_refused(tmp_path, fed, message) -> None:
    config = tmp_path / "fed.yaml"
    config.write_text(
        yaml.safe_dump({"data": "digits", "privacy": {"epsilon": 1.0}, "federated": fed})
    )
    result = runner.invoke(
        app, ["federated", "simulate", "--config", str(config), "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "run").exists()


def test_server_dp_epsilon_grows_with_rounds_and_shrinks_with_noise() -> None:
    from fds.federated.accounting import server_dp_spent

    base = server_dp_spent(1.0, 10, 1e-5)
    assert base["unit"] == "site" and base["delta"] == 1e-5
    assert server_dp_spent(1.0, 20, 1e-5)["epsilon"] > base["epsilon"] > 0
    assert server_dp_spent(4.0, 10, 1e-5)["epsilon"] < base["epsilon"]


def test_client_dp_composes_each_sites_rounds() -> None:
    from fds.federated.accounting import client_dp_spent

    history = [
        {"dp_epsilon_per_site": {"a": 1.0, "b": 0.5}, "dp_delta_per_site": {"a": 1e-6, "b": 1e-6}},
        {"dp_epsilon_per_site": {"a": 1.5}, "dp_delta_per_site": {"a": 1e-6}},
    ]
    spent = client_dp_spent(history)
    assert spent["per_site"]["a"] == {"epsilon": 2.5, "delta": 2e-6}
    assert spent["per_site"]["b"]["epsilon"] == 0.5
    assert spent["epsilon"] == 2.5 and spent["unit"] == "record"


def test_a_private_block_is_refused_in_federated_runs(tmp_path) -> None:
    config = tmp_path / "fed.yaml"
    config.write_text(
        yaml.safe_dump({"data": "digits", "preset": "fds", "federated": {"strategy": "fedavg"}})
    )
    result = runner.invoke(
        app, ["federated", "simulate", "--config", str(config), "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    assert "private block" in result.output
    assert not (tmp_path / "run").exists()


def test_weight_averaging_is_refused_in_federated_runs_naming_the_field(tmp_path) -> None:
    config = tmp_path / "fed.yaml"
    config.write_text(yaml.safe_dump({"data": "digits", "ema_decay": 0.99, "federated": {}}))
    result = runner.invoke(
        app, ["federated", "simulate", "--config", str(config), "--out", str(tmp_path / "run")]
    )
    assert result.exit_code == 2
    assert "ema_decay" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "run").exists()


def test_partition_and_app_refuse_bad_input_and_never_overwrite(tmp_path) -> None:
    config = tmp_path / "fed.yaml"
    config.write_text(yaml.safe_dump({"data": "digits", "federated": {"sites": 2}}))
    sites, app_dir = tmp_path / "sites", tmp_path / "app"
    missing = runner.invoke(
        app, ["federated", "partition", "--config", str(tmp_path / "no.yaml"), "--out", str(sites)]
    )
    assert missing.exit_code == 2 and "config file not found" in missing.output
    assert not sites.exists()
    for command in (
        ["federated", "partition", "--config", str(config), "--out", str(sites)],
        ["federated", "app", "--config", str(config), "--out", str(app_dir), "--run", "r"],
    ):
        assert runner.invoke(app, command).exit_code == 0
        again = runner.invoke(app, command)
        assert again.exit_code == 2 and "pass --overwrite" in again.output


def test_a_sites_data_error_stays_in_its_own_log(caplog) -> None:
    """The server hears that a site's data is unusable, never the cell values that say why."""
    from fds.federated.client_app import site_schema

    table = pd.DataFrame({"income": [1.0, 2.0, 7.25e201, 3.0] * 5, "job": list("abcd") * 5})
    with (
        caplog.at_level("ERROR", logger="fds.federated.client_app"),
        pytest.raises(DataError) as refused,
    ):
        site_schema(SiteData("site-7", table), {"preset": "vae"})
    assert "site-7" in str(refused.value) and "7.25e+201" not in str(refused.value)
    assert "income" not in str(refused.value)
    assert any("7.25e+201" in record.getMessage() for record in caplog.records)
