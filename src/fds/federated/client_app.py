"""The ClientApp a site runs: `query.schema` (its column statistics), `train` (local epochs from the
global weights, FedProx's term when the server sends `proximal-mu`) and `evaluate` (held-out ELBO).

`app` is what `flwr run` / a SuperNode loads (`fds.federated.client_app:app`); `make_client_app`
takes Flower mods (e.g. for fault-injection tests or Flower's DP clipping mods).
"""

from __future__ import annotations

import json

from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.clientapp.typing import Mod

from fds.config import make_config
from fds.data.codec import codec_from_json
from fds.federated.messages import (
    ARRAYS,
    CONFIG,
    METRICS,
    SITE,
    from_arrays,
    read_plan,
    site_record,
    to_arrays,
)
from fds.federated.schema import site_codec_state
from fds.federated.site import evaluate_locally, fit_local_codec, site_data, train_locally
from fds.federated.strategies import NUM_EXAMPLES, UNIT_WEIGHT


def make_client_app(mods: list[Mod] | None = None) -> ClientApp:
    app = ClientApp(mods=mods or [])

    @app.query("schema")
    def schema(msg: Message, context: Context) -> Message:
        plan = read_plan(msg.content[CONFIG])
        site = site_data(dict(context.node_config), plan)
        codec = fit_local_codec(site.X, make_config(**plan["params"]))
        state = site_codec_state(codec, len(site.X))
        content = RecordDict({CONFIG: ConfigRecord({SITE: site.name, "schema": json.dumps(state)})})
        return Message(content, reply_to=msg)

    @app.train()
    def train(msg: Message, context: Context) -> Message:
        config = msg.content[CONFIG]
        plan = read_plan(config)
        site = site_data(dict(context.node_config), plan)
        server_round = int(config["server-round"])
        seed = plan["seed"] + 1000 * server_round + int(context.node_config.get("partition-id", 0))
        state, metrics, n = train_locally(
            site,
            plan["params"],
            codec_from_json(plan["codec"]),
            from_arrays(msg.content[ARRAYS]),
            epochs=plan["local_epochs"],
            seed=seed,
            mu=float(config.get("proximal-mu", 0.0)),
        )
        record = MetricRecord(metrics | {NUM_EXAMPLES: n, UNIT_WEIGHT: 1})
        content = RecordDict(
            {ARRAYS: to_arrays(state), METRICS: record, SITE: site_record(site.name)}
        )
        return Message(content, reply_to=msg)

    @app.evaluate()
    def evaluate(msg: Message, context: Context) -> Message:
        plan = read_plan(msg.content[CONFIG])
        site = site_data(dict(context.node_config), plan)
        metrics, n = evaluate_locally(
            site, plan["params"], codec_from_json(plan["codec"]), from_arrays(msg.content[ARRAYS])
        )
        record = MetricRecord(metrics | {NUM_EXAMPLES: n, UNIT_WEIGHT: 1})
        content = RecordDict({METRICS: record, SITE: site_record(site.name)})
        return Message(content, reply_to=msg)

    return app


app = make_client_app()
