"""A federated run on the server's side: the plan every site is told, and the run directory it
writes — RUN/config.yaml (model options + `federated:`), RUN/metrics.jsonl (one line per round)
and RUN/model/ (a normal FDS model directory that every command accepts).

Both the deployed ServerApp (`server_app`) and the simulation (`fds.workflows.federated`) use it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from fds.config import dump_yaml
from fds.federated.rounds import Outcome
from fds.federated.settings import FederatedSettings, model_config
from fds.models.trained import model_tensors, save_trained
from fds.rundir import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_DIR,
    claim_run_dir,
    split_run_params,
    write_text,
)


def make_plan(params: dict[str, Any], settings: FederatedSettings) -> dict[str, Any]:
    """What every site is told: model options, data plan (simulation), local epochs, the number
    of rounds (a learning-rate schedule spans them), seed."""
    _, data_args = split_run_params(params)
    config = model_config(params)
    seed = config.seed if settings.seed is None else settings.seed
    return {
        "params": config.model_dump(mode="json"),
        "data": data_args.get("data"),
        "data_root": data_args.get("data_root"),
        "partition": settings.partition,
        "sites": settings.sites,
        "alpha": settings.alpha,
        "column": settings.column,
        "label_column": settings.label_column,
        "local_epochs": settings.local_epochs,
        "rounds": settings.rounds,
        "compression": settings.compression,
        "keep_optimizer_state": settings.keep_optimizer_state,
        "seed": seed,
    }


class RunWriter:
    """config.yaml at the start, one metrics line per round, the model directory at the end."""

    def __init__(
        self,
        out: Path,
        params: dict[str, Any],
        settings: FederatedSettings,
        overwrite: bool = False,
    ) -> None:
        self.out = Path(out)
        claim_run_dir(self.out, overwrite)
        resolved = model_config(params).model_dump(mode="json") | split_run_params(params)[1]
        resolved["federated"] = settings.model_dump(mode="json", exclude_none=True)
        write_text(self.out / CONFIG_FILE, dump_yaml(resolved))
        (self.out / METRICS_FILE).write_text("")

    def log_round(self, record: dict[str, Any]) -> None:
        with (self.out / METRICS_FILE).open("a") as handle:
            handle.write(json.dumps(record) + "\n")

    def rounds_logged(self) -> bool:
        return bool((self.out / METRICS_FILE).read_text())

    def save(self, outcome: Outcome, params: dict[str, Any]) -> Path:
        return save_federated_model(outcome, params, self.out / MODEL_DIR)


def save_federated_model(outcome: Outcome, params: dict[str, Any], path: Path) -> Path:
    """The global model as an FDS model directory (fds.io), with the DP budget in the manifest."""
    config, codec = model_config(params), outcome.codec
    if codec.input_kind == "images":
        n_features, names = int(codec.n_encoded), None
    else:
        names = [str(name) for name in codec.feature_names]
        n_features, names = len(names), None if codec.from_array else names
    # Stochastic posteriors sample from their prior N(0, I); deterministic codes from the Gaussian
    # pooled from the sites' code moments.
    latent = outcome.latent or (torch.zeros(config.latent_dim), torch.eye(config.latent_dim))
    return save_trained(
        path,
        config,
        codec,
        model_tensors(outcome.model, *latent),
        n_features_in=n_features,
        feature_names_in=names,
        epochs_trained=len(outcome.history),
        sensitive=[],
        privacy=outcome.privacy,  # the manifest's privacy field
    )
