"""The ClientApp a site runs: `query.schema` (its column statistics), `train` (local epochs from the
global weights, FedProx's term when the server sends `proximal-mu`) and `evaluate` (held-out ELBO).
Under SecAgg+ the same training answers the legacy records (see fds.federated.secagg).

`app` is what `flwr run` / a SuperNode loads (`fds.federated.client_app:app`); `make_client_app`
takes extra Flower mods (e.g. fault injection in tests, or Flower's client-side clipping mods).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from fds.config import make_config
from fds.data.codecs import codec_from_json
from fds.errors import DataError, FDSError
from fds.federated.compression import Compression, compress, parse_compression
from fds.federated.messages import (
    ARRAYS,
    CONFIG,
    METRICS,
    NUM_EXAMPLES,
    SITE,
    UNIT_WEIGHT,
    from_arrays,
    read_plan,
    site_record,
    to_arrays,
)
from fds.federated.schema import site_codec_state
from fds.federated.secagg import is_legacy, legacy_evaluate, legacy_train, secagg_mod
from fds.federated.site import (
    SiteData,
    code_moments,
    evaluate_locally,
    fit_local_codec,
    round_params,
    site_data,
    train_locally,
)

log = logging.getLogger(__name__)
_RESIDUAL = "fds-residual"  # the site's error-feedback residual, in its context.state
_MOMENTS = "fds-adam-moments"  # its Adam moments, with keep_optimizer_state


def _train(
    plan: dict[str, Any],
    state: dict[str, torch.Tensor],
    node_config: dict[str, Any],
    server_round: int,
    mu: float,
    site_state: RecordDict | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, float], int, str]:
    """Local training; with the plan's `keep_optimizer_state`, the site's Adam moments are read
    from and written back to `site_state` (its Flower context.state, kept between rounds)."""
    site = site_data(node_config, plan)
    site_seed = plan["seed"] + int(node_config.get("partition-id", 0))
    seed = site_seed + 1000 * server_round
    moments = None
    if plan.get("keep_optimizer_state") and site_state is not None:
        moments = _read_moments(site_state.array_records.get(_MOMENTS))
    new_state, metrics, n = train_locally(
        site,
        round_params(plan["params"], server_round, plan["rounds"]),
        codec_from_json(plan["codec"]),
        state,
        epochs=float(plan["local_epochs"]),
        seed=seed,
        mu=mu,
        optimizer_state=moments,
        server_round=server_round,
        share_seed=site_seed,
    )
    if moments and site_state is not None:
        site_state[_MOMENTS] = ArrayRecord(
            {f"{i}/{k}": Array(v.numpy()) for i, m in moments.items() for k, v in m.items()}
        )
    return new_state, metrics, n, site.name


def _read_moments(record: ArrayRecord | None) -> dict[int, dict[str, torch.Tensor]]:
    """The Adam state {parameter index: {step, exp_avg, exp_avg_sq}} from its flat record."""
    moments: dict[int, dict[str, torch.Tensor]] = {}
    for key, array in (record or {}).items():
        index, name = key.split("/", 1)
        moments.setdefault(int(index), {})[name] = torch.from_numpy(array.numpy().copy())
    return moments


def _evaluate(
    plan: dict[str, Any], state: dict[str, torch.Tensor], node_config: dict[str, Any]
) -> tuple[dict[str, float], int, str]:
    site = site_data(node_config, plan)
    metrics, n = evaluate_locally(site, plan["params"], codec_from_json(plan["codec"]), state)
    return metrics, n, site.name


def _compressed(
    start: dict[str, torch.Tensor],
    state: dict[str, torch.Tensor],
    how: Compression,
    context: Context,
) -> ArrayRecord:
    """The update state − start, compressed; the error-feedback residual lives in the site's
    Flower context (kept across rounds by the SuperNode, or by the simulation engine)."""
    delta = {k: (state[k] - start[k]).numpy() for k in state}
    old = context.state.array_records.get(_RESIDUAL)
    residual = {k: a.numpy() for k, a in old.items()} if old is not None else None
    sent, residual = compress(delta, how, residual)
    context.state[_RESIDUAL] = ArrayRecord({k: Array(v) for k, v in residual.items()})
    return sent


def site_schema(site: SiteData, params: dict[str, Any]) -> str:
    """The site's codec state as JSON. Why a data error is told in two ways: its text names cells
    of the site's rows, so it goes to the site's own log, and the server is told only that the
    site's data cannot be used."""
    try:
        codec = fit_local_codec(site.X, make_config(**params))
    except FDSError as error:
        log.error("site %s: its data cannot be used: %s", site.name, error)
        raise DataError(
            f"site {site.name}: its data cannot be used (the reason is in the site's own log)"
        ) from None
    return json.dumps(site_codec_state(codec, len(site.X)))


def make_client_app(mods: list[Mod] | None = None) -> ClientApp:
    app = ClientApp(mods=[secagg_mod, *(mods or [])])

    @app.query("schema")
    def schema(msg: Message, context: Context) -> Message:
        plan = read_plan(msg.content[CONFIG])
        site = site_data(dict(context.node_config), plan)
        state = site_schema(site, plan["params"])
        content = RecordDict({CONFIG: ConfigRecord({SITE: site.name, "schema": state})})
        return Message(content, reply_to=msg)

    @app.query("moments")
    def moments(msg: Message, context: Context) -> Message:
        plan = read_plan(msg.content[CONFIG])
        site = site_data(dict(context.node_config), plan)
        state = from_arrays(msg.content[ARRAYS])
        n, total, outer = code_moments(site, plan["params"], codec_from_json(plan["codec"]), state)
        arrays = ArrayRecord({"sum": Array(total), "outer": Array(outer)})
        content = RecordDict({ARRAYS: arrays, METRICS: MetricRecord({NUM_EXAMPLES: n})})
        return Message(content, reply_to=msg)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        node_config = dict(context.node_config)
        if is_legacy(msg.content):  # a SecAgg+ round
            return legacy_train(
                msg,
                lambda plan, state: _train(plan, state, node_config, plan["server-round"], 0.0)[:3],
            )
        config = msg.content[CONFIG]
        plan, start = read_plan(config), from_arrays(msg.content[ARRAYS])
        state, metrics, n, name = _train(
            plan,
            start,
            node_config,
            int(config["server-round"]),
            float(config.get("proximal-mu", 0.0)),
            context.state,
        )
        how = parse_compression(plan.get("compression", "none"))
        arrays = _compressed(start, state, how, context) if how.lossy else to_arrays(state)
        record = MetricRecord(metrics | {NUM_EXAMPLES: n, UNIT_WEIGHT: 1})
        content = RecordDict({ARRAYS: arrays, METRICS: record, SITE: site_record(name)})
        return Message(content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        node_config = dict(context.node_config)
        if is_legacy(msg.content):
            return legacy_evaluate(msg, lambda plan, state: _evaluate(plan, state, node_config))
        metrics, n, name = _evaluate(
            read_plan(msg.content[CONFIG]), from_arrays(msg.content[ARRAYS]), node_config
        )
        record = MetricRecord(metrics | {NUM_EXAMPLES: n, UNIT_WEIGHT: 1})
        return Message(RecordDict({METRICS: record, SITE: site_record(name)}), reply_to=msg)

    return app


app = make_client_app()
