"""Federated runs on disk: RUN/config.yaml (model options + `federated:`), RUN/metrics.jsonl (one
line per round), RUN/model/ (a normal FDS model directory that every command accepts), and the
simulation driver (Flower's simulation engine on Ray) and per-site files for a real deployment.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from fds.config import dump_yaml
from fds.data.files import write_output
from fds.errors import ConfigError, DataError, FDSError
from fds.estimator import FDS
from fds.federated.rounds import Outcome, run_rounds
from fds.federated.settings import FederatedSettings, load_federated_yaml, model_config
from fds.federated.site import split_sites
from fds.rundir import (
    CONFIG_FILE,
    METRICS_FILE,
    MODEL_DIR,
    claim_run_dir,
    split_run_params,
    write_text,
)


# ----------------------------------------------------------------------------- plan
def make_plan(params: dict[str, Any], settings: FederatedSettings) -> dict[str, Any]:
    """What every site is told: model options, data plan (simulation), local epochs, seed."""
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
        "seed": seed,
    }


# ----------------------------------------------------------------------------- run directory
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

    def save(self, outcome: Outcome, params: dict[str, Any]) -> Path:
        return save_federated_model(outcome, params, self.out / MODEL_DIR)


def save_federated_model(outcome: Outcome, params: dict[str, Any], path: Path) -> Path:
    """The global model as an FDS model directory (fds.io), with the DP budget in the manifest."""
    config = model_config(params)
    estimator = FDS(**split_run_params(params)[0], verbose=False)
    estimator.config_, estimator.codec_, estimator.model_ = config, outcome.codec, outcome.model
    estimator.history_, estimator.sensitive_ = outcome.history, []
    estimator.privacy_ = outcome.privacy  # written to the manifest's privacy field
    estimator.input_kind_ = outcome.codec.input_kind
    if outcome.codec.input_kind == "images":
        estimator.n_features_in_ = int(outcome.codec.n_encoded)
    else:
        names = list(outcome.codec.feature_names)
        estimator.n_features_in_ = len(names)
        if not outcome.codec.from_array:
            estimator.feature_names_in_ = np.asarray(names, dtype=object)
    # Stochastic posteriors sample from their prior N(0, I); deterministic codes from the Gaussian
    # pooled from the sites' code moments.
    if outcome.latent is not None:
        estimator.latent_loc_, estimator.latent_scale_tril_ = outcome.latent
    else:
        estimator.latent_loc_ = torch.zeros(config.latent_dim)
        estimator.latent_scale_tril_ = torch.eye(config.latent_dim)
    return estimator.save(path)


# ----------------------------------------------------------------------------- simulation
def simulate(
    config_path: str | Path,
    out: str | Path,
    *,
    overwrite: bool = False,
    verbose: bool = True,
    client_mods: list[Any] | None = None,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """`fds federated simulate`: N simulated sites on Flower's simulation engine (Ray)."""
    params, settings = load_federated_yaml(config_path)
    return simulate_params(
        params,
        settings,
        out,
        overwrite=overwrite,
        verbose=verbose,
        client_mods=client_mods,
        on_round=on_round,
    )


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
    writer = RunWriter(Path(out), params, settings, overwrite)
    started = time.perf_counter()
    try:
        outcome = _simulate(plan, settings, len(parts), writer, verbose, client_mods, on_round)
    except FDSError:
        if not (writer.out / METRICS_FILE).read_text():  # refused before any round: leave nothing
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
