"""Learning-rate schedules as pure functions of the step, so a resumed run needs no scheduler state."""

from __future__ import annotations

import math


def lr_at(step: int, total_steps: int, base_lr: float, schedule: str) -> float:
    progress = min(1.0, step / max(1, total_steps))
    if schedule == "cosine":
        return base_lr * 0.5 * (1 + math.cos(math.pi * progress))
    if schedule == "step":  # ×0.1 at half and at three quarters of training
        return base_lr * (0.1 ** ((progress >= 0.5) + (progress >= 0.75)))
    return base_lr
