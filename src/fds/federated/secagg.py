"""Secure aggregation with Flower's SecAgg+: the server learns only the weighted sum of the sites'
weights, never one site's update.

In Flower 1.42 SecAgg+ exists only for the legacy server API: `SecAggPlusWorkflow` runs inside
`DefaultWorkflow` with a `LegacyContext` and a `flwr.server.strategy` strategy, and the client's
`secaggplus_mod` masks the legacy `fitres.*` records. So a `secagg` run uses that path — with
legacy FedAvg, the only aggregation that a sum can feed (medians, Krum and the malformed-update
guard need individual updates, which SecAgg+ exists to hide) — and the ClientApp answers the
legacy records with the same local training. Each site's weights are clipped to ±clipping_range
and quantized before masking.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from flwr.app import Context, Message, MessageType, RecordDict
from flwr.clientapp.typing import ClientAppCallable

from fds.federated.messages import SITE

PLAN_KEY = "fds-plan"


# ----------------------------------------------------------------------------- client side
def secagg_mod(msg: Message, context: Context, call_next: ClientAppCallable) -> Message:
    """Flower's `secaggplus_mod` for the messages of a SecAgg+ round, a pass-through otherwise."""
    from flwr.client.mod import secaggplus_mod
    from flwr.common.secure_aggregation.secaggplus_constants import RECORD_KEY_CONFIGS

    if (
        msg.metadata.message_type == MessageType.TRAIN
        and RECORD_KEY_CONFIGS in msg.content.config_records
    ):
        return secaggplus_mod(msg, context, call_next)
    return call_next(msg, context)


def is_legacy(content: RecordDict) -> bool:
    return (
        "fitins.parameters" in content.array_records
        or "evaluateins.parameters" in content.array_records
    )


def legacy_train(
    msg: Message, train: Callable[[dict[str, Any], dict[str, torch.Tensor]], tuple]
) -> Message:
    """Unpack FitIns, train with `train(plan, state) -> (state, metrics, n)`, pack FitRes."""
    from flwr.common import Code, FitRes, Status, ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.compat.common import recorddict_compat as compat

    fitins = compat.recorddict_to_fitins(msg.content, keep_input=True)
    plan = json.loads(str(fitins.config[PLAN_KEY]))
    plan["server-round"] = int(fitins.config["server-round"])
    state = dict(
        zip(
            plan["keys"],
            map(torch.from_numpy, parameters_to_ndarrays(fitins.parameters)),
            strict=True,
        )
    )
    new_state, metrics, n = train(plan, state)
    arrays = [new_state[k].numpy() for k in plan["keys"]]
    fitres = FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), n, metrics)
    return Message(compat.fitres_to_recorddict(fitres, keep_input=False), reply_to=msg)


def legacy_evaluate(
    msg: Message, evaluate: Callable[[dict[str, Any], dict[str, torch.Tensor]], tuple]
) -> Message:
    """Unpack EvaluateIns, validate with `evaluate(plan, state) -> (metrics, n, site)`."""
    from flwr.common import Code, EvaluateRes, Status, parameters_to_ndarrays
    from flwr.compat.common import recorddict_compat as compat

    ins = compat.recorddict_to_evaluateins(msg.content, keep_input=True)
    plan = json.loads(str(ins.config[PLAN_KEY]))
    state = dict(
        zip(
            plan["keys"], map(torch.from_numpy, parameters_to_ndarrays(ins.parameters)), strict=True
        )
    )
    metrics, n, site = evaluate(plan, state)
    res = EvaluateRes(Status(Code.OK, ""), float(metrics["val_loss"]), n, metrics | {SITE: site})
    return Message(compat.evaluateres_to_recorddict(res), reply_to=msg)


# ----------------------------------------------------------------------------- server side
def secagg_rounds(
    grid: Any,
    context: Context,
    plan: dict[str, Any],
    state: dict[str, torch.Tensor],
    settings: Any,
    on_round: Callable[[dict[str, Any]], None],
) -> tuple[dict[str, torch.Tensor], list[dict[str, Any]]]:
    """Run the rounds with legacy FedAvg under SecAggPlusWorkflow; returns (weights, history)."""
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.compat.common import recorddict_compat as compat
    from flwr.server import LegacyContext, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
    from flwr.server.workflow.constant import MAIN_PARAMS_RECORD

    keys = list(state)
    plan = plan | {"keys": keys}
    history: list[dict[str, Any]] = []
    clock = {"start": time.perf_counter()}
    train_losses: dict[int, tuple[float | None, int]] = {}

    def round_config(server_round: int) -> dict[str, Any]:
        return {PLAN_KEY: json.dumps(plan), "server-round": server_round}

    def fit_metrics(results: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        total = sum(n for n, _ in results)
        loss = sum(n * m["train_loss"] for n, m in results) / total if total else None
        train_losses[len(train_losses) + 1] = (loss, len(results))
        return {} if loss is None else {"train_loss": loss}

    def eval_metrics(results: list[tuple[int, dict[str, Any]]]) -> dict[str, Any]:
        total = sum(n for n, _ in results)
        record = {
            "round": len(history) + 1,
            "secure_aggregation": "SecAgg+",
            "sites_asked": train_losses.get(len(history) + 1, (None, 0))[1],
            "sites_aggregated": train_losses.get(len(history) + 1, (None, 0))[1],
            "train_loss": train_losses.get(len(history) + 1, (None, 0))[0],
            "val_elbo": sum(n * m["val_elbo"] for n, m in results) / total if total else None,
            "val_loss": sum(n * m["val_loss"] for n, m in results) / total if total else None,
            "val_elbo_per_site": {str(m[SITE]): float(m["val_elbo"]) for _, m in results},
            "failed": [],
            "rejected": [],
            "seconds": round(time.perf_counter() - clock["start"], 3),
        }
        clock["start"] = time.perf_counter()
        history.append(record)
        on_round(record)
        return {"val_elbo": record["val_elbo"]} if record["val_elbo"] is not None else {}

    strategy = FedAvg(
        fraction_fit=settings.fraction,
        fraction_evaluate=1.0,
        min_fit_clients=settings.min_sites,
        min_evaluate_clients=settings.min_sites,
        min_available_clients=settings.min_sites,
        initial_parameters=ndarrays_to_parameters([state[k].numpy() for k in keys]),
        on_fit_config_fn=round_config,
        on_evaluate_config_fn=round_config,
        fit_metrics_aggregation_fn=fit_metrics,
        evaluate_metrics_aggregation_fn=eval_metrics,
    )
    options = settings.secagg
    legacy = LegacyContext(
        context, config=ServerConfig(num_rounds=settings.rounds), strategy=strategy
    )
    workflow = DefaultWorkflow(
        fit_workflow=SecAggPlusWorkflow(
            num_shares=options.num_shares,
            reconstruction_threshold=options.reconstruction_threshold,
            clipping_range=options.clipping_range,
            quantization_range=options.quantization_range,
            timeout=settings.timeout,
        )
    )
    workflow(grid, legacy)
    record = legacy.state.array_records[MAIN_PARAMS_RECORD]
    arrays = parameters_to_ndarrays(compat.arrayrecord_to_parameters(record, keep_input=True))
    return {k: torch.from_numpy(np.array(a)) for k, a in zip(keys, arrays, strict=True)}, history
