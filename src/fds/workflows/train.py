"""A training run on disk: validate everything first, then config.yaml, training (log, checkpoints),
the model directory and the figures, and a summary of the numbers a person checks first.

RUN/config.yaml holds the resolved parameters plus `data` (and `data_root`), so `--resume` needs
nothing but the run directory. Nothing is lost: a new run goes into a missing or empty directory,
and `overwrite` builds the replacement in a hidden sibling that takes the old run's place only
once it is complete, so a retrain that fails, diverges or is interrupted leaves the old run whole.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from fds.config import FDSConfig, check_run_keys, dump_yaml, load_yaml, make_config
from fds.data.files import LoadedData, check_creatable, open_data
from fds.data.stream import split_indices
from fds.data.table_stream import TableSource
from fds.data.tabular import rows_kept
from fds.errors import ConfigError, DataError, TrainingDivergedError
from fds.estimator import FDS
from fds.report.plots import column_comparison, image_grid, reconstruction_grid
from fds.rundir import (
    COLUMNS_PNG,
    CONFIG_FILE,
    DP_CODEC_FILE,
    LAST_CHECKPOINT_FILE,
    MODEL_DIR,
    PROBES_DIR,
    RECONSTRUCTIONS_PNG,
    RUN_KEYS,
    SAMPLES_CSV,
    SAMPLES_PNG,
    atomic_write,
    write_text,
)
from fds.tracking import Tracker, epoch_logger, run_files, tracked_run
from fds.training import distributed
from fds.training.trainer import TrainingInterrupted
from fds.workflows.leakage import sensitive_values

SUMMARY_ROWS = 10_000  # streamed run: held-out rows the summary and figures are computed on


def split_run_params(params: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """(model parameters, data arguments) from a mapping that mixes both; the data arguments are
    checked to be paths or built-in names."""
    model = {k: v for k, v in params.items() if k not in RUN_KEYS}
    return model, check_run_keys(params)


def train_run(
    params: dict[str, Any],
    out: str | Path,
    *,
    resume: bool = False,
    overwrite: bool = False,
    verbose: bool = True,
    tracker: Tracker | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train into run directory `out` (or continue it with `resume`) and return the summary.

    A resumed run takes its parameters from its config.yaml, except `threads` when given (else
    it keeps the thread count its checkpoint records; another count may change the last bits).
    `tracker` (`fds.tracking.open_tracker`) records the parameters, every epoch's metrics, the
    summary's figures and the finished run's files; `on_epoch(record)` sees each epoch too (an
    exception it raises, such as Optuna's TrialPruned, stops training after the checkpoint)."""
    out = Path(out)
    if resume:
        threads = params.get("threads")
        params = _resume_params(out) | ({"threads": threads} if threads is not None else {})
    model_params, data_args = split_run_params(params)
    if "data" not in data_args:
        raise DataError("no data given: pass --data PATH|BUILTIN or set data: in the config")
    config = make_config(**model_params).resolved()  # bad options fail before any file is touched
    with distributed.session(config.device) as world:
        if world.world_size > 1:
            _check_distributed(config)
        replacing = not resume and _check_out(out, overwrite)
        world.barrier()  # every rank has checked `out` before rank 0 writes into it
        if not world.main:  # trains alongside rank 0, which alone writes the run directory
            return _train_rank(model_params, data_args, config, out, resume, world)
        return _train_main(
            model_params, data_args, config, out, resume, replacing, verbose, tracker, on_epoch
        )


def _open(data_args: dict[str, Any], config: FDSConfig) -> LoadedData:
    """The run's data: read whole, or opened as a stream (a Parquet folder, a big file)."""
    data = open_data(
        data_args["data"],
        stream=data_args.get("stream"),
        seed=config.seed,
        root=data_args.get("data_root"),
    )
    if data.table is not None:
        data_args["stream"] = True  # a resumed run streams again, whatever the file's size now
    return data


def _train_main(
    model_params: dict[str, Any],
    data_args: dict[str, Any],
    config: FDSConfig,
    out: Path,
    resume: bool,
    replacing: bool,
    verbose: bool,
    tracker: Tracker | None,
    on_epoch: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any]:
    """The run of one process, or of rank 0 under torchrun: it writes the run directory."""
    data = _open(data_args, config)
    # unknown names fail before any write (a streamed table refuses them in fit_streamed)
    sensitive = sensitive_values(data, config.sensitive) if data.table is None else None
    if (
        config.modalities and data.table is None and isinstance(data.X, pd.DataFrame)
    ):  # paths: beside the table file
        from fds.multimodal import as_modalities

        data.X, rate = as_modalities(data.X, config, Path(data.source).parent)
        model_params.setdefault("sample_rate", rate)
    resolved = config.model_dump(mode="json") | data_args
    with tracked_run(tracker, out.name, resolved):
        hook = epoch_logger(tracker, on_epoch)
        summary = _train_resolved(
            model_params, resolved, data, sensitive, out, resume, replacing, verbose, hook
        )
        if tracker is not None:
            tracker.log_metrics(summary)
            tracker.log_artifacts(run_files(out))
    return summary


def _check_distributed(config: FDSConfig) -> None:
    """What torchrun cannot train yet, refused before anything is written."""
    if config.modalities:
        raise ConfigError("multimodal models are not trained under torchrun yet: use one process")
    if config.privacy is not None and config.privacy.statistics_epsilon is not None:
        raise ConfigError(
            "privacy.statistics_epsilon draws the codec's noisy statistics once per process; "
            "under torchrun declare the bounds and categories without it, or train in one process"
        )


def _train_rank(
    model_params: dict[str, Any],
    data_args: dict[str, Any],
    config: FDSConfig,
    out: Path,
    resume: bool,
    world: distributed.Single,
) -> dict[str, Any]:
    """A rank other than 0: the same data and model, its share of each batch (of a streamed
    table, its own row groups), no files written (it reads the checkpoint to resume). Its
    summary names only its rank."""
    data = _open(data_args, config)
    model, run_dir = FDS(**model_params, verbose=False), out if resume else None
    if data.table is not None:
        model.fit_streamed(data.table, run_dir=run_dir, resume=resume)
    else:
        sensitive = sensitive_values(data, config.sensitive)
        model.fit(data.X, run_dir=run_dir, resume=resume, sensitive=sensitive)
    return {"rank": world.rank, "world_size": world.world_size}


def _train_resolved(
    model_params: dict[str, Any],
    resolved: dict[str, Any],
    data: LoadedData,
    sensitive: Any,
    out: Path,
    resume: bool,
    replacing: bool,
    verbose: bool,
    hook: Callable[[dict[str, Any]], None] | None,
) -> dict[str, Any]:
    """A new run built in place (or beside the run it replaces), or a resumed one."""
    try:
        if resume:
            model, summary = _train(
                model_params, data, sensitive, out, out, verbose, hook, resume=True
            )
        else:
            with _new_run(out, replacing) as build:
                write_text(build / CONFIG_FILE, dump_yaml(resolved))
                model, summary = _train(model_params, data, sensitive, build, out, verbose, hook)
    except KeyboardInterrupt as exc:
        raise KeyboardInterrupt(_interrupted(exc, out, replacing)) from None
    if model.privacy_ is not None:
        from fds.workflows.release import record_training

        summary |= record_training(model, data, out) or {}
    return summary


def _resume_params(out: Path) -> dict[str, Any]:
    path = out / CONFIG_FILE
    if not path.is_file():
        raise DataError(f"cannot resume: {path} not found (is {out} a run directory?)")
    return load_yaml(path)  # an edited or broken config.yaml fails naming the file


def _check_out(out: Path, overwrite: bool) -> bool:
    """Whether `out` holds a run to replace; refuses, before anything is written, a file, a path
    under a file, a folder that is not a run, and a run without `overwrite`."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file, not a run directory: choose another --out")
    if not out.exists():
        check_creatable(out)
        return False
    if not any(out.iterdir()):
        return False
    if not (out / CONFIG_FILE).is_file():
        raise DataError(f"refusing to write into {out}: it exists and is not an FDS run directory")
    if not overwrite:
        raise DataError(
            f"{out} already holds a run; use --resume to continue it or --overwrite to replace it"
        )
    return True


@contextmanager
def _new_run(out: Path, replacing: bool) -> Iterator[Path]:
    """The folder to build a new run in. Replacing a run: a hidden sibling, swapped in for the old
    run at the end and deleted on any failure. Else `out` itself, kept on failure only when it
    can be resumed (a checkpoint, or a Ctrl-C after config.yaml was written)."""
    if replacing:
        build = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
        try:
            yield build
        except BaseException as exc:
            shutil.rmtree(build, ignore_errors=True)
            if isinstance(exc, TrainingDivergedError):
                raise TrainingDivergedError(exc.reason, _kept_old(out)) from None
            raise
        _swap(build, out)
        return
    created = _make_dirs(out)
    try:
        yield out
    except BaseException as exc:
        interrupted = isinstance(exc, KeyboardInterrupt) and (out / CONFIG_FILE).is_file()
        if interrupted or (out / LAST_CHECKPOINT_FILE).is_file():
            raise
        _discard(out, created)
        if isinstance(exc, TrainingDivergedError):
            on_disk = f"no checkpoint was written, so nothing was kept in {out}"
            raise TrainingDivergedError(exc.reason, on_disk) from None
        raise


def _interrupted(exc: KeyboardInterrupt, out: Path, replacing: bool) -> str:
    """The Ctrl-C line: what the run directory holds now and how to go on."""
    if replacing:
        return _kept_old(out)
    if not (out / CONFIG_FILE).is_file():
        return f"nothing was written to {out}"
    if (out / LAST_CHECKPOINT_FILE).is_file():
        on_disk = (
            exc.on_disk
            if isinstance(exc, TrainingInterrupted)
            else f"a checkpoint is in {out / LAST_CHECKPOINT_FILE}"
        )
        return f"{on_disk}; continue with `fds train --resume {out}`"
    return (
        f"stopped before the first checkpoint, nothing was trained; "
        f"`fds train --resume {out}` starts it from the beginning"
    )


def _kept_old(out: Path) -> str:
    return f"the new run was discarded and {out} still holds the earlier run"


def _train(
    model_params: dict[str, Any],
    data: LoadedData,
    sensitive: Any,
    build: Path,
    out: Path,
    verbose: bool,
    on_epoch: Callable[[dict[str, Any]], None] | None,
    resume: bool = False,
) -> tuple[FDS, dict[str, Any]]:
    """Fit in `build`, save the model there; the summary names the paths the run will have at
    `out` (the same folder unless a replacement is built beside the old run)."""
    started = time.perf_counter()
    model = FDS(**model_params, verbose=verbose)
    if data.table is not None:
        model.fit_streamed(data.table, run_dir=build, resume=resume, on_epoch=on_epoch)
        data.X = held_out_rows(model, data.table)
    else:
        model.fit(
            data.X,
            run_dir=build,
            resume=resume,
            sensitive=sensitive,
            codec_store=DPCodecFile(build),
            on_epoch=on_epoch,
        )
    seconds = time.perf_counter() - started
    _save_keeping_probes(model, build / MODEL_DIR)
    return model, _summarize(model, data, build, out, seconds)


def _save_keeping_probes(model: FDS, model_dir: Path) -> None:
    """Write the model directory, keeping the probes saved in the one it replaces (a resumed run):
    each probe is tied to the weights it was fitted on, so one of other weights is refused when
    applied, never silently lost."""
    probes = model_dir / PROBES_DIR
    if not probes.is_dir():
        model.save(model_dir)
        return
    keep = Path(tempfile.mkdtemp(prefix=".probes.", dir=model_dir.parent))
    os.replace(probes, keep / PROBES_DIR)
    try:
        model.save(model_dir)
    finally:
        os.replace(keep / PROBES_DIR, probes)
        keep.rmdir()


def _make_dirs(out: Path) -> Path | None:
    """Create `out` and its missing parents; returns the topmost folder created (None if `out`
    existed), which is what a failed run removes."""
    missing = [p for p in (out, *out.parents) if not p.exists()]
    out.mkdir(parents=True, exist_ok=True)
    return missing[-1] if missing else None


def _discard(out: Path, created: Path | None) -> None:
    """Remove what a failed run wrote: the folders it created, or the contents of the empty
    folder it was given."""
    if created is not None:
        shutil.rmtree(created, ignore_errors=True)
        return
    for child in out.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


def _swap(build: Path, out: Path) -> None:
    """Put the finished run `build` in place of the run at `out`, then delete the old one."""
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    os.replace(out, old / out.name)
    os.replace(build, out)
    shutil.rmtree(old)


def _summarize(
    model: FDS, data: LoadedData, build: Path, out: Path, seconds: float
) -> dict[str, Any]:
    if model.input_kind_ == "multimodal":
        from fds.workflows.multimodal import multimodal_summary

        return multimodal_summary(model, data.X, data.source, build, out, seconds)
    last = model.history_[-1] if model.history_ else {}
    best = model.history_[model.best_epoch_ - 1] if model.best_epoch_ else last
    X = data.X
    keep = rows_kept(X, model.config_.missing) if model.input_kind_ == "table" else None
    if keep is not None:  # missing: drop trained on the rows kept, and split those
        X = X.iloc[keep] if isinstance(X, pd.DataFrame) else X[keep]
    if data.table is not None:  # already the held-out rows (held_out_rows)
        X_val = X
    else:
        _, val_idx = split_indices(len(X), model.config_.val_fraction, model.config_.seed)
        held_out = val_idx if len(val_idx) else np.arange(len(X))
        X_val = X.iloc[held_out] if isinstance(X, pd.DataFrame) else X[held_out]
    summary = {
        "run_dir": str(out),
        "model_dir": str(out / MODEL_DIR),
        "data": data.source,
        "preset": model.config_.preset,
        "latent_dim": model.config_.latent_dim,
        "epochs_trained": len(model.history_),
        # under torchrun, batch_size is each process's: a step trains on processes × batch_size
        "processes": distributed.current(model.config_.device).world_size,
        "global_batch": model.global_batch_,
        "best_epoch": model.best_epoch_ or len(model.history_),
        "train_loss": last.get("train_loss"),
        "val_loss": last.get("val_loss"),
        "best_val_loss": best.get("val_loss"),
        "val_elbo": float(model.score(X_val)),
        "val_reconstruction_mse": model.reconstruction_mse(X_val),
        "seconds": round(seconds, 2),
        "artifacts": [str(out / p.relative_to(build)) for p in write_figures(model, X_val, build)],
    }
    if model.privacy_ is not None:
        summary |= {
            "privacy_epsilon": model.privacy_["epsilon"],
            "privacy_total_epsilon": model.privacy_["total_epsilon"],
            "privacy_delta": model.privacy_["delta"],
            "privacy_accountant": model.privacy_["accountant"],
        }
    return summary


def held_out_rows(model: FDS, table: TableSource) -> pd.DataFrame:
    """Up to SUMMARY_ROWS raw rows of a streamed run's validation row groups (its first rows
    without validation), which the summary's figures are computed on."""
    units = model.validation_units_ or None
    frames, count = [], 0
    for frame in table.frames(units):
        frames.append(frame.iloc[: SUMMARY_ROWS - count])
        count += len(frames[-1])
        if count >= SUMMARY_ROWS:
            break
    return pd.concat(frames, ignore_index=True)


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
    synthetic = model.sample(len(X_val), seed=0, allow_fewer=True)  # constraints may reject
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
