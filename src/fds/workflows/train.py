"""A training run on disk: validate everything first, then config.yaml, training (log, checkpoints),
the model directory and the figures, and a summary of the numbers a person checks first.

RUN/config.yaml holds the resolved parameters plus `data` (and `data_root`), so `--resume` needs
nothing but the run directory.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from fds.config import dump_yaml, make_config
from fds.data.files import LoadedData, read_data
from fds.data.stream import split_indices
from fds.errors import ConfigError, DataError
from fds.estimator import FDS
from fds.report.plots import column_comparison, image_grid, reconstruction_grid
from fds.rundir import (
    COLUMNS_PNG,
    CONFIG_FILE,
    DP_CODEC_FILE,
    MODEL_DIR,
    RECONSTRUCTIONS_PNG,
    SAMPLES_CSV,
    SAMPLES_PNG,
    atomic_write,
    claim_run_dir,
    split_run_params,
    write_text,
)
from fds.workflows.leakage import sensitive_values


def train_run(
    params: dict[str, Any],
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    verbose: bool = True,
) -> dict[str, Any]:
    """Train into run directory `out` (or continue it with `resume`) and return the summary."""
    out = Path(out)
    if resume:
        if not (out / CONFIG_FILE).is_file():
            raise DataError(
                f"cannot resume: {out / CONFIG_FILE} not found (is {out} a run directory?)"
            )
        params = yaml.safe_load((out / CONFIG_FILE).read_text())
    model_params, data_args = split_run_params(params)
    if "data" not in data_args:
        raise DataError("no data given: pass --data PATH|BUILTIN or set data: in the config")
    config = make_config(**model_params).resolved()  # bad options fail before any file is touched
    data = read_data(data_args["data"], seed=config.seed, root=data_args.get("data_root"))
    sensitive = sensitive_values(data, config.sensitive)  # unknown names fail before any write
    if not resume:
        claim_run_dir(out, overwrite)
        resolved = config.model_dump(mode="json") | data_args
        write_text(out / CONFIG_FILE, dump_yaml(resolved))
    started = time.perf_counter()
    model = FDS(**model_params, verbose=verbose)
    try:
        model.fit(
            data.X, run_dir=out, resume=resume, sensitive=sensitive, codec_store=DPCodecFile(out)
        )
    except (DataError, ConfigError):
        if not resume:  # rejected before training started: leave no half-made run behind
            shutil.rmtree(out, ignore_errors=True)
        raise
    seconds = time.perf_counter() - started
    model.save(out / MODEL_DIR)
    summary = _summarize(model, data, out, seconds)
    if model.privacy_ is not None:
        from fds.workflows.release import record_training

        summary |= record_training(model, data, out) or {}
    return summary


def _summarize(model: FDS, data: LoadedData, out: Path, seconds: float) -> dict[str, Any]:
    last = model.history_[-1] if model.history_ else {}
    _, val_idx = split_indices(len(data.X), model.config_.val_fraction, model.config_.seed)
    held_out = val_idx if len(val_idx) else np.arange(len(data.X))
    X_val = data.X.iloc[held_out] if isinstance(data.X, pd.DataFrame) else data.X[held_out]
    summary = {
        "run_dir": str(out),
        "model_dir": str(out / MODEL_DIR),
        "data": data.source,
        "preset": model.config_.preset,
        "latent_dim": model.config_.latent_dim,
        "epochs_trained": len(model.history_),
        "train_loss": last.get("train_loss"),
        "val_loss": last.get("val_loss"),
        "val_elbo": float(model.score(X_val)),
        "val_reconstruction_mse": model.reconstruction_mse(X_val),
        "seconds": round(seconds, 2),
        "artifacts": [str(p) for p in write_figures(model, X_val, out)],
    }
    if model.privacy_ is not None:
        summary |= {
            "privacy_epsilon": model.privacy_["epsilon"],
            "privacy_total_epsilon": model.privacy_["total_epsilon"],
            "privacy_delta": model.privacy_["delta"],
            "privacy_accountant": model.privacy_["accountant"],
        }
    return summary


def write_figures(model: FDS, X_val: Any, out: Path) -> list[Path]:
    """Reconstructions and samples as PNG (images), or real-vs-synthetic columns (tables)."""
    if model.input_kind_ == "images":
        originals = np.asarray(X_val[:10])
        reconstructions = model.inverse_transform(model.transform(originals))
        return [
            reconstruction_grid(
                originals, reconstructions, out / RECONSTRUCTIONS_PNG, "held-out reconstructions"
            ),
            image_grid(model.sample(50, seed=0), out / SAMPLES_PNG, "samples from the prior"),
        ]
    synthetic = model.sample(len(X_val), seed=0)
    if isinstance(synthetic, np.ndarray):
        synthetic = pd.DataFrame(synthetic, columns=[f"x{i}" for i in range(synthetic.shape[1])])
        X_val = pd.DataFrame(np.asarray(X_val), columns=synthetic.columns)
    samples = atomic_write(out / SAMPLES_CSV, lambda tmp: synthetic.to_csv(tmp, index=False))
    return [
        samples,
        column_comparison(
            X_val, synthetic, out / COLUMNS_PNG, "held-out rows vs. samples from the prior"
        ),
    ]


class DPCodecFile:
    """RUN/checkpoints/dp_codec.json: a DP run's codec, fitted from noisy statistics, kept so that
    `--resume` reuses it instead of drawing (and spending) again; see `FDS.fit(codec_store=)`."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / DP_CODEC_FILE

    def load(self) -> dict[str, Any] | None:
        return json.loads(self.path.read_text()) if self.path.is_file() else None

    def save(self, state: dict[str, Any]) -> None:
        write_text(self.path, json.dumps(state))
