"""Training loop of a multimodal fusion model: Adam on the mean of its per-record objective over
shuffled mini-batches of aligned records, with the mask of the modalities each record has.

Separate from `Trainer` because a fusion model's batch is a dict of modalities and a mask,
and it has no registered loss terms; it logs the same records (`epoch`, `train_loss`).

With a run directory it keeps the Trainer's files: one JSON line per epoch in `metrics.jsonl`
and, after every epoch, `checkpoints/last.safetensors` (`fds.training.checkpoint`: weights,
Adam's state, torch's RNG, the epoch history). The batch order of epoch e depends only on
(seed, e), so `resume=True` continues from the last checkpoint to the same weights as an
uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fds.config import FDSConfig, with_training_defaults
from fds.errors import ConfigError, TrainingDivergedError
from fds.models.fusion import FusionModel
from fds.rundir import LAST_CHECKPOINT_FILE, METRICS_FILE
from fds.training.checkpoint import load_checkpoint, save_checkpoint
from fds.training.ema import WeightAverage
from fds.training.progress import TrainingProgress

__all__ = ["train_fusion"]


def train_fusion(
    model: FusionModel,
    x: dict[str, np.ndarray],
    mask: np.ndarray,
    config: FDSConfig,
    show_progress: bool = False,
    run_dir: Path | None = None,
    resume: bool = False,
    sensitive: np.ndarray | None = None,
) -> list[dict[str, Any]]:
    """Train in place; `mask` (M, N) bool in `model.kinds` order. Returns one record per epoch.

    `sensitive`: (N, attributes) encoded sensitive values, for a model with a key.

    `run_dir`: where the log and the checkpoint go; `resume` continues from its checkpoint
    (a run without one starts from the beginning). An unset batch size and learning rate are
    the non-table defaults (fds.config.TRAINING_DEFAULTS). With `ema_decay` the model ends
    with the moving average of its weights (fds.training.ema), kept in the checkpoint too."""
    config = with_training_defaults(config, "other")
    if resume and run_dir is None:
        raise ConfigError("resume needs the run directory (run_dir) that holds the checkpoint")
    torch.manual_seed(config.seed)
    tensors = {kind: torch.from_numpy(x[kind]) for kind in model.kinds}
    present = torch.from_numpy(mask).float()
    s = None if sensitive is None else torch.from_numpy(sensitive)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = mask.shape[1]
    steps = -(-n // config.batch_size)
    history: list[dict[str, Any]] = []
    ema = WeightAverage(model, config.ema_decay) if config.ema_decay else None
    checkpoint = None if run_dir is None else Path(run_dir) / LAST_CHECKPOINT_FILE
    if checkpoint is not None and resume and checkpoint.is_file():
        history = load_checkpoint(checkpoint, model, {"adam": optimizer}, ema=ema)["history"]
    if run_dir is not None:
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        _write_log(Path(run_dir) / METRICS_FILE, history)
    model.train()
    with TrainingProgress(show_progress, config.epochs) as progress:
        for epoch in range(len(history), config.epochs):
            progress.start_epoch(epoch, steps, 0)
            total = 0.0
            order = np.random.default_rng([config.seed, epoch]).permutation(n)
            for b, index in enumerate(np.array_split(order, steps)):
                batch = {kind: t[index] for kind, t in tensors.items()}
                loss = model.objective(batch, present[:, index], None if s is None else s[index])
                if not torch.isfinite(loss):
                    raise TrainingDivergedError(
                        f"the fusion objective became {loss.item()} in epoch {epoch + 1}; "
                        "lower lr or the modalities' weights",
                        f"{len(history)} epochs are in {checkpoint}"
                        if history and checkpoint
                        else "",
                    )
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                if ema is not None:
                    ema.update(epoch * steps + b)
                value = loss.item()
                total += value * len(index)
                progress.advance({"loss": value})
            history.append({"epoch": epoch + 1, "train_loss": total / n})
            if checkpoint is not None:
                _save(checkpoint, model, optimizer, history, steps, ema)
            progress.end_epoch(history[-1])
    if ema is not None:
        ema.copy_to_model()
    return history


def _save(
    path: Path,
    model: FusionModel,
    optimizer: torch.optim.Optimizer,
    history: list[dict[str, Any]],
    steps: int,
    ema: WeightAverage | None,
) -> None:
    """The checkpoint (loop fields as the Trainer writes them), then the epoch's log line."""
    epoch = len(history)
    loop = {"epoch": epoch, "batch": 0, "step": epoch * steps, "bad_epochs": 0, "sums": {}}
    loop |= {"best_val": None, "best_epoch": None, "history": history}
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        path, model, {"adam": optimizer}, loop, ema=None if ema is None else ema.state()
    )
    _write_log(path.parent.parent / METRICS_FILE, history)


def _write_log(path: Path, history: list[dict[str, Any]]) -> None:
    """metrics.jsonl holds exactly the epochs the checkpoint has (a kill between the two writes
    leaves no line the resumed run would repeat)."""
    path.write_text("".join(json.dumps(record) + "\n" for record in history))
