"""Weights and settings on the wire: torch state dicts ↔ Flower ArrayRecords, and the plan (model
options, shared codec, data plan) as JSON strings in a ConfigRecord — so a ClientApp needs nothing
but its own rows, whether it runs in Flower's simulation or under a SuperNode."""

from __future__ import annotations

import json
from typing import Any

import torch
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

ARRAYS, CONFIG, METRICS, SITE = "arrays", "config", "metrics", "site"
NUM_EXAMPLES = "num-examples"  # a site's example count, the weight of its update
# With DP every site weighs the same (the sensitivity bound assumes it); clients report this key.
UNIT_WEIGHT = "unit-weight"


def to_arrays(state: dict[str, torch.Tensor]) -> ArrayRecord:
    return ArrayRecord({k: Array(v.detach().cpu().numpy()) for k, v in state.items()})


def from_arrays(record: ArrayRecord) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(a.numpy().copy()) for k, a in record.items()}


def payload_bytes(record: RecordDict) -> int:
    """Bytes of the weights a message carries (the serialized tensors, without framing)."""
    return sum(len(a.data) for r in record.array_records.values() for a in r.values())


def plan_record(plan: dict[str, Any]) -> ConfigRecord:
    """The run's plan as one JSON string (ConfigRecords hold flat scalars only)."""
    return ConfigRecord({"fds-plan": json.dumps(plan)})


def read_plan(config: ConfigRecord) -> dict[str, Any]:
    return json.loads(str(config["fds-plan"]))


def site_record(name: str) -> ConfigRecord:
    return ConfigRecord({SITE: name})
