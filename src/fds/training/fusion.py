"""Training loop of a multimodal fusion model: Adam on the mean of its per-record objective over
shuffled mini-batches of aligned records, with the mask of the modalities each record has.

Separate from `Trainer` because a fusion model's batch is a dict of modalities and a mask,
and it has no registered loss terms; it logs the same records (`epoch`, `train_loss`)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from fds.config import FDSConfig
from fds.models.fusion import FusionModel
from fds.training.progress import TrainingProgress

__all__ = ["train_fusion"]


def train_fusion(
    model: FusionModel,
    x: dict[str, np.ndarray],
    mask: np.ndarray,
    config: FDSConfig,
    show_progress: bool = False,
) -> list[dict[str, Any]]:
    """Train in place; `mask` (M, N) bool in `model.kinds` order. Returns one record per epoch."""
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    tensors = {kind: torch.from_numpy(x[kind]) for kind in model.kinds}
    present = torch.from_numpy(mask).float()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    n = mask.shape[1]
    steps = -(-n // config.batch_size)
    history: list[dict[str, Any]] = []
    model.train()
    with TrainingProgress(show_progress, config.epochs) as progress:
        for epoch in range(config.epochs):
            progress.start_epoch(epoch, steps, 0)
            total = 0.0
            for index in np.array_split(rng.permutation(n), steps):
                batch = {kind: t[index] for kind, t in tensors.items()}
                loss = model.loss(batch, present[:, index]).mean()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                value = loss.item()
                total += value * len(index)
                progress.advance({"loss": value})
            history.append({"epoch": epoch + 1, "train_loss": total / n})
            progress.end_epoch(history[-1])
    return history
