"""Federated runs as jobs: the simulation driver (Flower's simulation engine on Ray) writing a run
directory through `fds.federated.run` (config.yaml, metrics.jsonl, model/), its summary, and the
per-site files for a real deployment.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fds.data.files import write_output
from fds.errors import ConfigError, DataError, FDSError
from fds.federated.rounds import Outcome, run_rounds
from fds.federated.run import RunWriter, make_plan
from fds.federated.settings import (
    FederatedSettings,
    load_federated_yaml,
    model_config,
    with_overrides,
)
from fds.federated.site import split_sites
from fds.federated.warm import load_init_model
from fds.rundir import MODEL_DIR
from fds.tracking import Tracker, run_files, tracked_run


# ----------------------------------------------------------------------------- simulation
def simulate(
    config_path: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
    verbose: bool = True,
    client_mods: list[Any] | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
    tracker: Tracker | None = None,
    compression: str | None = None,
    init_model: str | Path | None = None,
) -> dict[str, Any]:
    """`fds federated simulate`: N simulated sites on Flower's simulation engine (Ray).

    `compression` (none | float16 | topk:FRACTION) and `init_model` (a model or run directory
    the global model starts from), when given, replace fed.yaml's `federated.compression` and
    `federated.init_model`. `tracker` (`fds.tracking.open_tracker`) records the parameters, each round's metrics at its
    round, the summary's figures and the run's files."""
    params, settings = load_federated_yaml(config_path)
    init = None if init_model is None else str(init_model)
    settings = with_overrides(settings, compression=compression, init_model=init)
    resolved = params | {"federated": settings.model_dump(mode="json")}
    with tracked_run(tracker, Path(out).name, resolved):
        summary = simulate_params(
            params,
            settings,
            out,
            overwrite=overwrite,
            verbose=verbose,
            client_mods=client_mods,
            on_round=_round_logger(tracker, on_round),
        )
        if tracker is not None:
            tracker.log_metrics(summary)
            tracker.log_artifacts(run_files(Path(summary["run_dir"])))
    return summary


def _round_logger(
    tracker: Tracker | None, then: Callable[[dict[str, Any]], None] | None
) -> Callable[[dict[str, Any]], None] | None:
    """`on_round`: log the round's record at its round number, then call `then`."""
    if tracker is None:
        return then

    def on_round(record: dict[str, Any]) -> None:
        tracker.log_metrics(record, step=int(record["round"]))
        if then is not None:
            then(record)

    return on_round


def simulate_params(
    params: dict[str, Any],
    settings: FederatedSettings,
    out: str | Path,
    *,
    overwrite: bool = False,
    verbose: bool = True,
    client_mods: list[Any] | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    if "data" not in params:
        raise DataError("no data given: set data: in the config")
    plan = make_plan(params, settings)
    parts, names, _ = split_sites(plan)  # every site non-empty, before Ray starts
    if settings.min_sites > len(parts):
        raise ConfigError(
            f"federated.min_sites = {settings.min_sites} but there are {len(parts)} sites"
        )
    if settings.init_model is not None:  # a mismatched network is refused before Ray starts
        load_init_model(settings.init_model, model_config(params))
    writer = RunWriter(Path(out), params, settings, overwrite)
    started = time.perf_counter()
    try:
        outcome = _simulate(plan, settings, len(parts), writer, verbose, client_mods, on_round)
    except FDSError:
        if not writer.rounds_logged():  # refused before any round: leave nothing
            shutil.rmtree(writer.out, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    writer.save(outcome, params)
    return summarize(outcome, writer.out, names, [len(p) for p in parts], seconds)


def _simulate(
    plan: dict[str, Any],
    settings: FederatedSettings,
    n_sites: int,
    writer: RunWriter,
    verbose: bool,
    client_mods: list[Any] | None,
    on_round: Callable[[dict[str, Any]], None] | None,
) -> Outcome:
    """Flower's simulation engine runs the ServerApp in this process (errors are re-raised here)
    and one Ray actor per CPU for the sites' ClientApps."""
    from flwr.serverapp import ServerApp
    from flwr.simulation import run_simulation

    from fds.federated.client_app import make_client_app
    from fds.federated.progress import RoundProgress

    os.environ.setdefault("FLWR_TELEMETRY_ENABLED", "0")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    result: dict[str, Any] = {}
    server_app = ServerApp()

    @server_app.main()
    def main(grid: Any, context: Any) -> None:
        try:
            with RoundProgress(verbose, settings.rounds) as progress:

                def record(round_record: dict[str, Any]) -> None:
                    writer.log_round(round_record)
                    progress.update(round_record)
                    if on_round is not None:
                        on_round(round_record)

                result["outcome"] = run_rounds(grid, plan, settings, record, context)
        except BaseException as exc:  # re-raised in the caller's thread below
            result["error"] = exc

    backend = {
        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
        "init_args": {
            "num_cpus": max(1, min(n_sites, os.cpu_count() or 1)),
            "include_dashboard": False,
        },
    }
    with _quiet_flower(verbose):
        run_simulation(
            server_app, make_client_app(client_mods), num_supernodes=n_sites, backend_config=backend
        )
    if "error" in result:
        if isinstance(result["error"], FDSError):
            raise result["error"]
        raise RuntimeError(f"the federated run failed: {result['error']}") from result["error"]
    if "outcome" not in result:
        raise RuntimeError("the Flower simulation ended without running the server app")
    return result["outcome"]


class _quiet_flower:
    """Flower logs every message at INFO; keep WARNING (failed/rejected sites) unless verbose."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose

    def __enter__(self) -> None:
        self.logger = logging.getLogger("flwr")
        self.level = self.logger.level
        if not self.verbose:
            self.logger.setLevel(logging.WARNING)

    def __exit__(self, *exc: object) -> None:
        self.logger.setLevel(self.level)


def summarize(
    outcome: Outcome, out: Path, names: list[str], sizes: list[int], seconds: float
) -> dict[str, Any]:
    last = outcome.history[-1] if outcome.history else {}
    rounds = outcome.history
    return {
        "run_dir": str(out),
        "model_dir": str(out / MODEL_DIR),
        "sites": len(names),
        "site_rows": dict(zip(names, sizes, strict=True)),
        "rounds": len(rounds),
        "train_loss": last.get("train_loss"),
        "val_elbo": last.get("val_elbo"),
        "val_elbo_per_site": last.get("val_elbo_per_site"),
        "rejected_updates": sum(len(r["rejected"]) for r in rounds),
        "failed_updates": sum(len(r["failed"]) for r in rounds),
        "bytes_down_per_site_per_round": last.get("bytes_down_per_site"),
        "bytes_up_per_site_per_round": last.get("bytes_up_per_site"),
        "seconds_per_round": round(sum(r["seconds"] for r in rounds) / max(1, len(rounds)), 3),
        "seconds": round(seconds, 2),
        "privacy": outcome.privacy,
    }


# ----------------------------------------------------------------------------- deployment
def write_partitions(
    config_path: str | Path, out: str | Path, overwrite: bool = False
) -> dict[str, Any]:
    """Per-site files (site-NAME.npy for images, .parquet for tables) for a real deployment."""
    params, settings = load_federated_yaml(config_path)
    if "data" not in params:
        raise DataError("no data given: set data: in the config")
    plan = make_plan(params, settings)
    parts, names, X = split_sites(plan)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, rows in zip(names, parts, strict=True):
        if isinstance(X, pd.DataFrame):
            path = out / f"{name}.parquet"
            write_output(X.iloc[rows].reset_index(drop=True), path, overwrite=overwrite)
        else:
            path = out / f"{name}.npy"
            write_output(np.asarray(X[rows]), path, overwrite=overwrite)
        files[name] = str(path)
    return {
        "out": str(out),
        "sites": len(files),
        "files": files,
        "rows": dict(zip(names, map(len, parts), strict=True)),
    }
