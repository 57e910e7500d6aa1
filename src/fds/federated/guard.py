"""Malformed updates never reach aggregation: wrong keys or shapes, non-float or non-finite values,
or a missing/invalid example count are rejected with one log line naming the site and the reason.

A Flower strategy averages whatever it receives, and one NaN poisons every weight of the mean; a
wrapper (like Flower's own DP wrappers) keeps the check independent of the strategy chosen.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid
from flwr.serverapp.strategy import Strategy

from fds.federated.messages import NUM_EXAMPLES

log = logging.getLogger("fds.federated")


def site_of(reply: Message) -> str:
    """The site's name as it reported it, else its Flower node id."""
    if not reply.has_error():
        for record in reply.content.config_records.values():
            if "site" in record:
                return str(record["site"])
    return f"node {reply.metadata.src_node_id}"


def check_update(reply: Message, expected: dict[str, tuple[tuple[int, ...], str]]) -> str | None:
    """Why `reply` cannot be averaged in, or None when it is well formed."""
    content = reply.content
    if len(content.array_records) != 1:
        return f"expected one ArrayRecord, got {len(content.array_records)}"
    arrays = next(iter(content.array_records.values()))
    if set(arrays.keys()) != set(expected):
        missing = sorted(set(expected) - set(arrays.keys()))
        extra = sorted(set(arrays.keys()) - set(expected))
        return f"weights do not match the model (missing {missing[:3]}, unexpected {extra[:3]})"
    for key, array in arrays.items():
        shape, _ = expected[key]
        if tuple(array.shape) != shape:
            return f"{key} has shape {tuple(array.shape)}, expected {shape}"
        values = array.numpy()
        if not np.issubdtype(values.dtype, np.floating):
            return f"{key} has dtype {values.dtype}, expected floating point"
        if not np.isfinite(values).all():
            return f"{key} holds NaN or inf"
    if len(content.metric_records) != 1:
        return f"expected one MetricRecord, got {len(content.metric_records)}"
    count = next(iter(content.metric_records.values())).get(NUM_EXAMPLES)
    if isinstance(count, bool) or not isinstance(count, int | float) or not count > 0:
        return f"{NUM_EXAMPLES} is {count!r}, expected a positive number"
    if not math.isfinite(count):
        return f"{NUM_EXAMPLES} is {count}"
    return None


class RejectMalformed(Strategy):
    """Wraps a strategy: drops failed and malformed replies, aggregates only if ≥ `min_sites`
    well-formed updates remain (else the global model is kept for this round)."""

    def __init__(self, strategy: Strategy, min_sites: int) -> None:
        self.strategy, self.min_sites = strategy, min_sites
        self.expected: dict[str, tuple[tuple[int, ...], str]] = {}
        self.rejected: list[dict[str, str]] = []  # of the last round: [{"site", "reason"}]
        self.failed: list[dict[str, str]] = []
        self.accepted: list[str] = []

    def configure_train(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        self.expected = {k: (tuple(a.shape), a.dtype) for k, a in arrays.items()}
        return self.strategy.configure_train(server_round, arrays, config, grid)

    def aggregate_train(
        self, server_round: int, replies: Iterable[Message]
    ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        self.rejected, self.failed, self.accepted = [], [], []
        good: list[Message] = []
        for reply in replies:
            site = site_of(reply)
            if reply.has_error():
                reason = reply.error.reason.strip().splitlines()[-1][:200]
                self.failed.append({"site": site, "reason": reason})
                log.warning("round %d: site %s failed: %s", server_round, site, reason)
                continue
            reason = check_update(reply, self.expected)
            if reason is not None:
                self.rejected.append({"site": site, "reason": reason})
                log.warning(
                    "round %d: rejected update from site %s: %s", server_round, site, reason
                )
                continue
            good.append(reply)
            self.accepted.append(site)
        if len(good) < self.min_sites:
            log.warning(
                "round %d: %d well-formed update(s), fewer than min_sites = %d; the global "
                "model is kept",
                server_round,
                len(good),
                self.min_sites,
            )
            return None, None
        return self.strategy.aggregate_train(server_round, good)

    def configure_evaluate(
        self, server_round: int, arrays: ArrayRecord, config: ConfigRecord, grid: Grid
    ) -> Iterable[Message]:
        return self.strategy.configure_evaluate(server_round, arrays, config, grid)

    def aggregate_evaluate(
        self, server_round: int, replies: Iterable[Message]
    ) -> MetricRecord | None:
        return self.strategy.aggregate_evaluate(server_round, replies)

    def summary(self) -> None:
        self.strategy.summary()

    def __getattr__(self, name: str) -> Any:  # e.g. noise_multiplier of a DP wrapper
        if name == "strategy":
            raise AttributeError(name)
        return getattr(self.strategy, name)
