"""One small end-to-end simulation on Flower's engine (Ray): 3 digit sites, 2 rounds, where one site
crashes and one sends NaN weights — training continues, both are recorded, and the model directory
is a normal one that `fds evaluate` and `fds sample` accept."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest
import torch
from flwr.app import Array, ArrayRecord, Context, Message

from fds.data.stream import split_indices
from fds.estimator import FDS
from fds.federated.run import make_plan
from fds.federated.settings import make_settings
from fds.federated.site import split_sites
from fds.workflows.federated import simulate_params

os.environ["FLWR_TELEMETRY_ENABLED"] = "0"


pytestmark = pytest.mark.slow  # Ray simulations: tens of seconds each


def _faulty_sites(msg: Message, context: Context, call_next) -> Message:
    """A Flower mod: site 1 crashes in round 2, site 2 always sends NaN weights."""
    site = int(context.node_config["partition-id"])
    if (
        msg.metadata.message_type == "train"
        and site == 1
        and int(msg.content["config"]["server-round"]) == 2
    ):
        raise RuntimeError("site 1 lost power")
    reply = call_next(msg, context)
    if msg.metadata.message_type == "train" and site == 2:
        arrays = reply.content["arrays"]
        reply.content["arrays"] = ArrayRecord(
            {k: Array(np.full(a.shape, np.nan, dtype=np.float32)) for k, a in arrays.items()}
        )
    return reply


def test_simulation_survives_a_crash_and_a_nan_site(tmp_path) -> None:
    params = {
        "data": "digits",
        "preset": "vae",
        "latent_dim": 3,
        "hidden_dims": [16],
        "batch_size": 64,
        "seed": 0,
    }
    settings = make_settings(sites=3, rounds=2, min_sites=1, local_epochs=1, timeout=300)
    summary = simulate_params(
        params, settings, tmp_path / "run", verbose=False, client_mods=[_faulty_sites]
    )
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["round"] for r in lines] == [1, 2]
    assert [r["rejected"][0]["site"] for r in lines] == ["site-2", "site-2"]
    assert "NaN" in lines[0]["rejected"][0]["reason"]
    assert lines[0]["sites_aggregated"] == 2 and lines[1]["sites_aggregated"] == 1
    assert lines[0]["failed"] == [] and len(lines[1]["failed"]) == 1
    assert "lost power" in lines[1]["failed"][0]["reason"]
    assert set(lines[1]["val_elbo_per_site"]) == {"site-0", "site-1", "site-2"}
    assert np.isfinite(summary["val_elbo"]) and summary["bytes_up_per_site_per_round"] > 0
    model = FDS.load(tmp_path / "run")
    assert model.sample(4).shape == (4, 8, 8)
    assert np.isfinite(model.score(np.zeros((2, 8, 8), dtype=np.uint8)))


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_secure_aggregation_runs_secaggplus_every_round(tmp_path) -> None:
    """Also a deterministic model: its sampling Gaussian is pooled from the sites' code moments."""
    params = {
        "data": "digits",
        "preset": "ae",
        "latent_dim": 3,
        "hidden_dims": [16],
        "batch_size": 64,
        "seed": 0,
    }
    settings = make_settings(sites=3, rounds=2, min_sites=3, secagg=True, timeout=300)
    handler = _Lines()
    flwr_log = logging.getLogger("flwr")
    flwr_log.addHandler(handler)
    try:
        summary = simulate_params(params, settings, tmp_path / "run", verbose=True)
    finally:
        flwr_log.removeHandler(handler)
    assert handler.lines.count("Secure aggregation completed.") == 2
    assert summary["rounds"] == 2 and np.isfinite(summary["val_elbo"])
    assert set(summary["val_elbo_per_site"]) == {"site-0", "site-1", "site-2"}
    model = FDS.load(tmp_path / "run")
    assert model.sample(2).shape == (2, 8, 8)
    parts, _, X = split_sites(make_plan(params, settings))
    codes = np.concatenate(
        [model.transform(X[part][split_indices(len(part), 0.1, 0)[0]]) for part in parts]
    )
    assert np.allclose(model.latent_loc_.numpy(), codes.mean(0), atol=1e-4)
    cov = model.latent_scale_tril_ @ model.latent_scale_tril_.T
    assert np.allclose(cov.numpy(), np.cov(codes.T), atol=1e-3)


def _out_of_range_schema(msg: Message, context: Context, call_next) -> Message:
    """A Flower mod: site 2 reports a column mean of 1e200 (beyond float32) in its schema."""
    reply = call_next(msg, context)
    if msg.metadata.message_type == "query.schema" and context.node_config["partition-id"] == 2:
        state = json.loads(str(reply.content["config"]["schema"]))
        column = next(c for c in state["codec"]["columns"] if c["kind"] == "continuous")
        column["center"] = 1e200
        reply.content["config"]["schema"] = json.dumps(state)
    return reply


def test_a_site_reporting_an_out_of_range_statistic_is_left_out_and_the_run_goes_on(
    tmp_path,
) -> None:
    params = {"data": "census", "latent_dim": 3, "hidden_dims": [16], "batch_size": 64, "seed": 0}
    settings = make_settings(sites=3, rounds=1, min_sites=2, local_epochs=1, timeout=300)
    handler = _Lines()
    logging.getLogger("fds.federated").addHandler(handler)
    try:
        summary = simulate_params(
            params, settings, tmp_path / "run", verbose=False, client_mods=[_out_of_range_schema]
        )
    finally:
        logging.getLogger("fds.federated").removeHandler(handler)
    assert [line for line in handler.lines if "site site-2 is left out" in line]
    assert summary["rounds"] == 1 and np.isfinite(summary["val_elbo"])
    codec = json.loads(
        (tmp_path / "run" / "model" / "codec.json").read_text(), parse_constant=float
    )
    assert all(abs(c["center"]) < 1e10 and np.isfinite(c["scale"]) for c in codec["columns"])


@pytest.mark.parametrize(
    ("strategy", "strategy_params", "compression"),
    [("fedyogi", {"eta": 0.01}, "topk:0.05"), ("fedavgm", {"server_momentum": 0.5}, "float16")],
)
def test_a_server_optimizer_with_compressed_updates_ends_with_a_usable_model(
    tmp_path, strategy, strategy_params, compression
) -> None:
    """The sites send compressed updates (error feedback kept in their context between rounds),
    the server expands them before the strategy: fewer bytes up, finite weights, a model that
    loads and scores."""
    params = {
        "data": "digits",
        "preset": "vae",
        "latent_dim": 3,
        "hidden_dims": [128],
        "batch_size": 64,
        "seed": 0,
    }
    settings = make_settings(
        sites=3,
        rounds=3,
        min_sites=3,
        strategy=strategy,
        strategy_params=strategy_params,
        compression=compression,
        timeout=300,
    )
    summary = simulate_params(params, settings, tmp_path / "run", verbose=False)
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all(r["sites_aggregated"] == 3 and not r["rejected"] for r in lines)
    down, up = summary["bytes_down_per_site_per_round"], summary["bytes_up_per_site_per_round"]
    assert up < (0.2 if compression.startswith("topk") else 0.6) * down
    model = FDS.load(tmp_path / "run")
    weights = model.model_.state_dict()
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert np.isfinite(model.score(np.zeros((2, 8, 8), dtype=np.uint8)))
    assert model.sample(2).shape == (2, 8, 8)
