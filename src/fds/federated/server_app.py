"""The ServerApp for a real deployment (`fds.federated.server_app:app`, run by `flwr run`).

Its run config (pyproject.toml `[tool.flwr.app.config]`, written by `fds federated app`) names
`fds-config` (fed.yaml) and `out` (the run directory the server writes). Simulation builds its own
ServerApp around the same `run_rounds` and `run.RunWriter` (see fds.workflows.federated).
"""

from __future__ import annotations

import logging
from pathlib import Path

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from fds.federated.rounds import run_rounds
from fds.federated.run import RunWriter, make_plan
from fds.federated.settings import load_federated_yaml

log = logging.getLogger("fds.federated")
app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    config = context.run_config
    params, settings = load_federated_yaml(str(config["fds-config"]))
    out = Path(str(config["out"]))
    writer = RunWriter(out, params, settings, overwrite=bool(config.get("overwrite", False)))

    def record(round_record: dict) -> None:
        writer.log_round(round_record)
        log.warning(
            "round %d: train_loss=%s val_elbo=%s sites=%d/%d",
            round_record["round"],
            round_record["train_loss"],
            round_record["val_elbo"],
            round_record["sites_aggregated"],
            round_record["sites_asked"],
        )

    outcome = run_rounds(grid, make_plan(params, settings), settings, record, context)
    writer.save(outcome, params)
