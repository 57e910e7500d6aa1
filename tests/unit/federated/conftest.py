"""Shared set-up of the federated unit tests: a site plan on digits and its global weights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from fds.config import make_config
from fds.data.image_codec import ImageCodec
from fds.federated.run import make_plan
from fds.federated.settings import FederatedSettings
from fds.models import build_model

PlanFactory = Callable[[dict[str, Any], FederatedSettings], tuple[dict[str, Any], dict]]


@pytest.fixture
def digits_plan(digits: np.ndarray) -> PlanFactory:
    """(plan, global weights) for `model` on digits under `settings`, the codec fitted on all of
    digits and the weights drawn under seed 0: what a ClientApp's `_train` receives."""

    def make(model: dict[str, Any], settings: FederatedSettings) -> tuple[dict[str, Any], dict]:
        plan = make_plan(model | {"data": "digits"}, settings)
        codec = ImageCodec.fit(digits)
        plan["codec"] = codec.to_json()
        config = make_config(**plan["params"]).resolved()
        torch.manual_seed(0)
        return plan, build_model(config, codec.blocks, codec.chw).state_dict()

    return make
