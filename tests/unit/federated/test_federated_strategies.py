"""Aggregation with real Flower strategies and constructed replies: malformed updates rejected with
a log line, a ×100 poisoning site moves FedAvg but not FedMedian or Krum, too few sites keeps the
model, config errors are one clear line."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)

from fds.errors import ConfigError
from fds.federated.settings import make_settings
from fds.federated.strategies import make_strategy


@pytest.fixture(autouse=True)
def _task_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flower stamps messages with the run id of the current task; give this process one."""
    from flwr.supercore.task_identity import TaskIdentity

    monkeypatch.setattr(TaskIdentity, "_run_id", 1)
    monkeypatch.setattr(TaskIdentity, "_node_id", 0)
    monkeypatch.setattr(TaskIdentity, "_task_id", 1)


class _Grid:
    """The two Grid calls configure_train makes."""

    def __init__(self, n: int) -> None:
        self.n = n

    def get_node_ids(self) -> list[int]:
        return list(range(1, self.n + 1))


def _reply(site: int, weights: dict[str, np.ndarray], n: int = 100) -> Message:
    content = RecordDict(
        {
            "arrays": ArrayRecord({k: Array(v) for k, v in weights.items()}),
            "metrics": MetricRecord({"num-examples": n, "unit-weight": 1, "train_loss": 1.0}),
            "site": ConfigRecord({"site": f"site-{site}"}),
        }
    )
    return Message(content, dst_node_id=site, message_type=MessageType.TRAIN)


def _aggregate(strategy_name: str, replies_weights: list[dict[str, np.ndarray]], **extra):
    n = len(replies_weights)
    settings = make_settings(sites=n, min_sites=2, strategy=strategy_name, **extra)
    strategy = make_strategy(settings, n)
    global_w = {"w": np.zeros((3, 2), dtype=np.float32), "b": np.zeros(2, dtype=np.float32)}
    list(
        strategy.configure_train(
            1, ArrayRecord({k: Array(v) for k, v in global_w.items()}), ConfigRecord(), _Grid(n)
        )
    )
    replies = [_reply(i + 1, w) for i, w in enumerate(replies_weights)]
    arrays, _ = strategy.aggregate_train(1, replies)
    return strategy, (None if arrays is None else {k: a.numpy() for k, a in arrays.items()})


def _honest(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w": (1 + 0.1 * rng.standard_normal((3, 2))).astype(np.float32),
        "b": (1 + 0.1 * rng.standard_normal(2)).astype(np.float32),
    }


def test_poisoning_site_moves_fedavg_but_not_median_or_krum() -> None:
    updates = [_honest(i) for i in range(4)]
    updates.append({k: v * 100 for k, v in _honest(9).items()})
    shifts = {}
    for name, extra in (
        ("fedavg", {}),
        ("fedmedian", {}),
        ("krum", {"strategy_params": {"num_malicious_nodes": 1}}),
    ):
        _, agg = _aggregate(name, updates, **extra)
        shifts[name] = float(np.abs(agg["w"] - 1.0).max())
    assert shifts["fedavg"] > 10  # the ×100 site drags the mean ~20 units away
    assert shifts["fedmedian"] < 0.5
    assert shifts["krum"] < 0.5


def test_malformed_updates_are_rejected_with_a_log_line(caplog: pytest.LogCaptureFixture) -> None:
    good = [_honest(i) for i in range(3)]
    nan = _honest(5)
    nan["w"][0, 0] = np.nan
    wrong_shape = {"w": np.ones((2, 2), dtype=np.float32), "b": np.ones(2, dtype=np.float32)}
    with caplog.at_level(logging.WARNING, logger="fds.federated"):
        guard, agg = _aggregate("fedavg", [*good, nan, wrong_shape])
    assert np.isfinite(agg["w"]).all()
    assert np.allclose(agg["w"], np.mean([g["w"] for g in good], axis=0), atol=1e-5)
    reasons = {r["site"]: r["reason"] for r in guard.rejected}
    assert "NaN" in reasons["site-4"] and "shape (2, 2)" in reasons["site-5"]
    assert "rejected update from site site-4" in caplog.text


def test_fewer_well_formed_sites_than_min_sites_keeps_the_model() -> None:
    nan = _honest(1)
    nan["b"][:] = np.inf
    guard, agg = _aggregate("fedavg", [_honest(0), nan])
    assert agg is None and guard.accepted == ["site-1"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"strategy": "fedavgg"}, "did you mean 'fedavg'"),
        ({"strategy": "fedprox", "strategy_params": {"mu": 0.1}}, "proximal_mu"),
        ({"strategy": "krum", "strategy_params": {"num_malicious_nodes": 0.5}}, "integer"),
        (
            {"strategy": "fedmedian", "dp": {"noise_multiplier": 1.0, "clipping_norm": 1.0}},
            "mean aggregation",
        ),
        ({"secagg": True, "strategy": "krum"}, "only in the legacy workflow with FedAvg"),
        ({"roundz": 3}, "did you mean 'rounds'"),
        ({"sites": 2, "min_sites": 3}, "exceeds sites"),
    ],
)
def test_bad_federated_options_fail_with_one_line(options: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_settings(**options)


def test_server_side_dp_clips_each_update_and_adds_calibrated_noise() -> None:
    big = [{"w": np.full((3, 2), 50.0, np.float32), "b": np.full(2, 50.0, np.float32)}] * 4
    dp = {"noise_multiplier": 0.0001, "clipping_norm": 1.0}
    _, agg = _aggregate("fedavg", big, dp=dp)
    norm = float(np.sqrt(sum((v**2).sum() for v in agg.values())))
    assert norm == pytest.approx(1.0, abs=0.01)  # the update was clipped to norm C (noise tiny)
    dp = {"noise_multiplier": 2.0, "clipping_norm": 1.0}
    small = [{"w": np.full((3, 2), 1e-3, np.float32), "b": np.full(2, 1e-3, np.float32)}] * 4
    spreads = [
        np.std(np.concatenate([v.ravel() for v in _aggregate("fedavg", small, dp=dp)[1].values()]))
        for _ in range(20)
    ]
    assert np.mean(spreads) == pytest.approx(2.0 * 1.0 / 4, rel=0.3)  # std z·C/m
