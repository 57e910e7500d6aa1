"""The server's side of a federated run: wait for sites, build the shared codec from their schema
statistics, then per round: configure → send → guard + aggregate → evaluate at every site.

The loop is Flower's `Strategy.start` unrolled, so that each round's per-site metrics, rejected and
failed sites, bytes and seconds can be recorded and shown as the round ends.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from flwr.app import ArrayRecord, Context, Message, RecordDict
from flwr.serverapp import Grid

from fds.config import make_config
from fds.data.codec import Codec
from fds.errors import ConfigError, DataError
from fds.federated.accounting import client_dp_spent, server_dp_spent
from fds.federated.compression import Compression, expand, parse_compression
from fds.federated.guard import RejectMalformed, site_of
from fds.federated.messages import (
    ARRAYS,
    CONFIG,
    NUM_EXAMPLES,
    from_arrays,
    payload_bytes,
    plan_record,
    to_arrays,
)
from fds.federated.schema import merge_codecs, usable_site_states
from fds.federated.settings import FederatedSettings
from fds.federated.strategies import make_strategy
from fds.federated.warm import check_codec, load_init_model, load_into
from fds.models import FactorizedAutoencoder, build_model

log = logging.getLogger("fds.federated")
_POLL_SECONDS = 0.2


@dataclass
class Outcome:
    """What a federated run produced: the shared codec, the final model, one record per round."""

    codec: Codec
    model: FactorizedAutoencoder
    history: list[dict[str, Any]] = field(default_factory=list)
    privacy: dict[str, Any] | None = None
    # Gaussian fitted to the codes (deterministic posteriors); None → the prior N(0, I)
    latent: tuple[torch.Tensor, torch.Tensor] | None = None


def run_rounds(
    grid: Grid,
    plan: dict[str, Any],
    settings: FederatedSettings,
    on_round: Callable[[dict[str, Any]], None] = lambda record: None,
    context: Context | None = None,
) -> Outcome:
    """Run `settings.rounds` rounds; `plan` holds `params` (model options), the data plan, seed.
    With `settings.secagg` the rounds run under SecAgg+ (legacy workflow, needs `context`)."""
    nodes = _wait_for_sites(grid, settings)
    codec = _shared_codec(grid, nodes, plan, settings)
    config = make_config(**plan["params"]).resolved()
    if config.privacy is not None and codec.input_kind != "images":
        raise ConfigError(
            "client-side DP-SGD (privacy) in a federated run needs images: a table's pooled "
            "column statistics are not differentially private; train on images or without privacy"
        )
    init = None if settings.init_model is None else load_init_model(settings.init_model, config)
    if init is not None:
        check_codec(init, codec)
    torch.manual_seed(plan["seed"])
    chw = getattr(codec, "chw", None) if codec.input_kind == "images" else None
    model = build_model(config, codec.blocks, chw)
    if init is not None:  # a warm start: round 1 sends the init model's weights
        load_into(init, model)
    plan = plan | {"codec": codec.to_json()}
    if settings.secagg is not None:
        from fds.federated.secagg import secagg_rounds

        if context is None:
            raise ValueError("secure aggregation needs the ServerApp's context")
        state, history = secagg_rounds(grid, context, plan, model.state_dict(), settings, on_round)
        model.load_state_dict(state)
        return Outcome(
            codec, model.eval(), history, None, _code_gaussian(grid, model, plan, settings)
        )
    arrays = to_arrays(model.state_dict())
    strategy = make_strategy(settings, len(nodes))
    compression = parse_compression(settings.compression)
    assert isinstance(strategy, RejectMalformed)
    history, noisy_rounds = [], 0
    for server_round in range(1, settings.rounds + 1):
        started = time.perf_counter()
        messages = list(strategy.configure_train(server_round, arrays, plan_record(plan), grid))
        replies = list(grid.send_and_receive(messages, timeout=settings.timeout))
        wire = {
            r.metadata.src_node_id: payload_bytes(r.content) for r in replies if not r.has_error()
        }
        if compression.lossy:
            _expand_updates(server_round, replies, arrays, compression)
        new_arrays, _ = strategy.aggregate_train(server_round, replies)
        if new_arrays is not None:
            arrays, noisy_rounds = new_arrays, noisy_rounds + 1
        train_seconds = time.perf_counter() - started
        eval_messages = strategy.configure_evaluate(server_round, arrays, plan_record(plan), grid)
        eval_replies = list(grid.send_and_receive(eval_messages, timeout=settings.timeout))
        record = _round_record(server_round, strategy, messages, replies, eval_replies, wire)
        record |= {"aggregated": new_arrays is not None, "train_seconds": round(train_seconds, 3)}
        record["seconds"] = round(time.perf_counter() - started, 3)
        history.append(record)
        on_round(record)
    model.load_state_dict(from_arrays(arrays))
    privacy = None
    if settings.dp is not None:
        privacy = server_dp_spent(settings.dp.noise_multiplier, noisy_rounds, settings.dp.delta)
    if any(r.get("dp_epsilon_per_site") for r in history):
        privacy = (
            {"server": privacy, "sites": client_dp_spent(history)}
            if privacy
            else client_dp_spent(history)
        )
    return Outcome(
        codec, model.eval(), history, privacy, _code_gaussian(grid, model, plan, settings)
    )


def _code_gaussian(
    grid: Grid, model: FactorizedAutoencoder, plan: dict[str, Any], settings: FederatedSettings
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """For deterministic codes: pooled mean and Cholesky factor of the covariance from each site's
    (n, Σz, Σzzᵀ) — the same Gaussian `FDS.fit` fits to the training codes."""
    if model.stochastic or model.config.privacy is not None:
        return None  # under DP-SGD the code moments would be a non-private statistic: N(0, I)
    arrays = to_arrays(model.state_dict())
    messages = [
        Message(
            RecordDict({ARRAYS: arrays, CONFIG: plan_record(plan)}),
            dst_node_id=node,
            message_type="query.moments",
        )
        for node in grid.get_node_ids()
    ]
    n, total, outer = 0, 0.0, 0.0
    for reply in grid.send_and_receive(messages, timeout=settings.timeout):
        if reply.has_error():
            log.warning("site %s sent no code moments: %s", site_of(reply), reply.error.reason)
            continue
        n += int(next(iter(reply.content.metric_records.values()))[NUM_EXAMPLES])
        total = total + reply.content[ARRAYS]["sum"].numpy()
        outer = outer + reply.content[ARRAYS]["outer"].numpy()
    if n < 2:
        log.warning("fewer than 2 code vectors reported; sampling uses N(0, I)")
        return None
    mean = torch.as_tensor(total / n)
    cov = (torch.as_tensor(outer) - n * torch.outer(mean, mean)) / (n - 1)
    cov += 1e-6 * torch.eye(len(cov), dtype=cov.dtype)
    return mean.float(), torch.linalg.cholesky(cov).float()


def _wait_for_sites(grid: Grid, settings: FederatedSettings) -> list[int]:
    deadline = time.monotonic() + settings.timeout
    while len(nodes := list(grid.get_node_ids())) < settings.min_sites:
        if time.monotonic() > deadline:
            raise DataError(
                f"only {len(nodes)} site(s) connected within {settings.timeout:.0f} s; "
                f"min_sites = {settings.min_sites}"
            )
        time.sleep(_POLL_SECONDS)
    if settings.sites is not None:  # give the remaining sites a moment to register
        wait_all = time.monotonic() + min(settings.timeout, 30.0)
        while (
            len(nodes := list(grid.get_node_ids())) < settings.sites and time.monotonic() < wait_all
        ):
            time.sleep(_POLL_SECONDS)
    return nodes


def _shared_codec(
    grid: Grid, nodes: list[int], plan: dict[str, Any], settings: FederatedSettings
) -> Codec:
    """Ask every site for its schema statistics and merge them (see fds.federated.schema)."""
    messages = [
        Message(
            RecordDict({CONFIG: plan_record(plan)}), dst_node_id=node, message_type="query.schema"
        )
        for node in nodes
    ]
    states = []
    for reply in grid.send_and_receive(messages, timeout=settings.timeout):
        if reply.has_error():
            log.warning("site %s did not report its schema: %s", site_of(reply), reply.error.reason)
            continue
        content = reply.content[CONFIG]
        states.append((site_of(reply), content.get("schema")))
    states = usable_site_states(states)
    if len(states) < settings.min_sites:
        raise DataError(
            f"{len(states)} site(s) reported their data schema, fewer than min_sites = {settings.min_sites}"
        )
    return merge_codecs(states)


def _expand_updates(
    server_round: int, replies: list[Message], arrays: ArrayRecord, how: Compression
) -> None:
    """Compressed updates → full weights, in place; one that does not fit the model is left as
    it came, for the guard to reject."""
    for reply in replies:
        if reply.has_error() or ARRAYS not in reply.content.array_records:
            continue
        try:
            reply.content[ARRAYS] = expand(reply.content[ARRAYS], arrays, how)
        except ValueError as error:
            log.warning("round %d: site %s: %s", server_round, site_of(reply), error)


def _round_record(
    server_round: int,
    guard: RejectMalformed,
    messages: list[Message],
    replies: list[Message],
    eval_replies: list[Message],
    wire: dict[int, int],
) -> dict[str, Any]:
    """The round's metrics line; `wire` = the bytes of weights each site sent (node id → bytes),
    as they came, before any expansion of compressed updates."""
    accepted = [r for r in replies if not r.has_error() and site_of(r) in guard.accepted]
    answered = {r.metadata.src_node_id for r in replies}
    silent = [
        {"site": f"node {m.metadata.dst_node_id}", "reason": "no reply within the timeout"}
        for m in messages
        if m.metadata.dst_node_id not in answered
    ]
    for gone in silent:
        log.warning("round %d: site %s sent no reply", server_round, gone["site"])
    record: dict[str, Any] = {
        "round": server_round,
        "sites_asked": len(messages),
        "sites_aggregated": len(accepted),
        "failed": guard.failed + silent,
        "rejected": guard.rejected,
        "train_loss": _weighted(accepted, "train_loss"),
        "bytes_down_per_site": payload_bytes(messages[0].content) if messages else 0,
        "bytes_up_per_site": (
            round(sum(wire[r.metadata.src_node_id] for r in accepted) / len(accepted))
            if accepted
            else 0
        ),
    }
    spent = {site_of(r): _metrics(r) for r in accepted if "dp_epsilon" in _metrics(r)}
    if spent:
        record["dp_epsilon_per_site"] = {s: m["dp_epsilon"] for s, m in spent.items()}
        record["dp_delta_per_site"] = {s: m["dp_delta"] for s, m in spent.items()}
    evaluated = [r for r in eval_replies if not r.has_error()]
    record["val_elbo"] = _weighted(evaluated, "val_elbo")
    record["val_loss"] = _weighted(evaluated, "val_loss")
    record["val_elbo_per_site"] = {site_of(r): _metrics(r)["val_elbo"] for r in evaluated}
    return record


def _metrics(reply: Message) -> dict[str, Any]:
    return dict(next(iter(reply.content.metric_records.values())))


def _weighted(replies: list[Message], key: str) -> float | None:
    """Mean of a metric over sites, weighted by their example counts."""
    pairs = [(_metrics(r)[NUM_EXAMPLES], _metrics(r).get(key)) for r in replies]
    pairs = [(n, v) for n, v in pairs if v is not None]
    total = sum(n for n, _ in pairs)
    return float(sum(n * v for n, v in pairs) / total) if total else None
