"""`fds federated simulate|partition|app`: training across sites that never pool their data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fds.cli.common import JsonFlag, LogOpt, OverwriteOpt, emit, new_typer

app = new_typer(
    help="Federated training on Flower: sites train one FDS without pooling their data.\n\n"
    "Example: `FLWR_TELEMETRY_ENABLED=0 fds federated simulate --config fed.yaml --out runs/fed`",
)
FedConfigOpt = Annotated[
    Path, typer.Option("--config", "-c", help="fed.yaml: model options plus a federated: section.")
]


@app.command("simulate")
def federated_simulate_command(
    config: FedConfigOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to write.")],
    overwrite: OverwriteOpt = False,
    log: LogOpt = None,
    compression: Annotated[
        str | None,
        typer.Option(
            "--compression",
            help="Compress the sites' updates: none, float16 or topk:FRACTION (error feedback "
            "kept at each site); overrides federated.compression in fed.yaml.",
        ),
    ] = None,
    init_model: Annotated[
        Path | None,
        typer.Option(
            "--init-model",
            help="Start the global model from this model or run directory (trained centrally, "
            "e.g. on public data; same preset, network and data layout); overrides "
            "federated.init_model in fed.yaml.",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """N simulated sites on Flower's simulation engine (Ray); writes RUN/config.yaml,
    RUN/metrics.jsonl (one line per round) and RUN/model/.

    Example: `FLWR_TELEMETRY_ENABLED=0 fds federated simulate --config fed.yaml --out runs/fed`

    Tracked: `fds federated simulate --config fed.yaml --out runs/fed --log tensorboard`

    Compressed updates: `fds federated simulate -c fed.yaml -o runs/fed --compression topk:0.01`

    Warm start: `fds federated simulate -c fed.yaml -o runs/fed --init-model runs/public`
    """
    from fds.tracking import open_tracker
    from fds.workflows.federated import simulate

    tracker = open_tracker(log, experiment="fds-federated")
    summary = simulate(
        config,
        out,
        overwrite=overwrite,
        verbose=not as_json,
        tracker=tracker,
        compression=compression,
        init_model=init_model,
    )
    summary["site_rows"] = ", ".join(f"{k}: {v}" for k, v in summary["site_rows"].items())
    if not as_json:
        summary.pop("val_elbo_per_site")
    emit(summary, as_json, "federated simulation")


@app.command("partition")
def federated_partition_command(
    config: FedConfigOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for one file per site.")],
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Split the config's data into one file per site (for a real deployment or a demo).

    Example: `fds federated partition --config fed.yaml --out sites/`
    """
    from fds.workflows.federated import write_partitions

    summary = write_partitions(config, out, overwrite=overwrite)
    if not as_json:
        summary["files"] = ", ".join(summary["files"].values())
        summary["rows"] = ", ".join(f"{k}: {v}" for k, v in summary["rows"].items())
    emit(summary, as_json, "site files")


@app.command("app")
def federated_app_command(
    config: FedConfigOpt,
    out: Annotated[Path, typer.Option("--out", "-o", help="Flower app directory to create.")],
    run: Annotated[Path, typer.Option("--run", help="Run directory the ServerApp will write.")],
    overwrite: OverwriteOpt = False,
    as_json: JsonFlag = False,
) -> None:
    """Create the Flower app directory (pyproject.toml) for `flwr run` against a SuperLink.

    Example: `fds federated app --config fed.yaml --out fedapp --run runs/fed && flwr run fedapp`
    """
    from fds.workflows.federated_app import write_app

    emit(write_app(config, out, run, overwrite=overwrite), as_json, "Flower app")
