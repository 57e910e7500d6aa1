"""An exponential moving average of the weights (config `ema_decay`), the model training ends with.

Under a constant learning rate the last iterate carries the noise of the last steps; an average of
the recent iterates removes it without lowering the rate (Polyak & Juditsky 1992; the EMA of timm's
ModelEmaV2, TensorFlow's `ExponentialMovingAverage` and diffusion models). After every optimizer
step the average moves towards the weights by 1 − d, with TensorFlow's warm-up of the decay,
d = min(ema_decay, (1 + t) / (10 + t)) at step t (from 0), so a short run is not dragged back to
its random start. It covers the parameters and the floating-point buffers (running statistics);
integer buffers (counters) are the model's own.

The trainer validates, keeps and returns the averaged weights (`applied`), and trains on its own
ones; the checkpoint stores both, so a resumed run continues bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

# the checkpoint's names of the averaged tensors: "ema." + the model's state_dict key
PREFIX = "ema."


def decay_at(step: int, decay: float) -> float:
    """The decay of update `step` (0-based): TensorFlow's `num_updates` warm-up, capped at `decay`."""
    return min(decay, (1 + step) / (10 + step))


class WeightAverage:
    """The running average of `model`'s floating-point state, starting at its current values."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        # the model's live tensors (parameters update in place, so these stay theirs)
        self.names = [k for k, v in model.state_dict().items() if v.is_floating_point()]
        self.live = [model.state_dict()[k] for k in self.names]
        self.average = [t.detach().clone() for t in self.live]

    @torch.no_grad()
    def update(self, step: int) -> None:
        """Move the average towards the model's weights after optimizer step `step`."""
        torch._foreach_lerp_(self.average, self.live, 1.0 - decay_at(step, self.decay))

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block and its own ones again after."""
        own = [t.clone() for t in self.live]
        self.copy_to_model()
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.live, own)

    @torch.no_grad()
    def copy_to_model(self) -> None:
        """Load the averaged weights into the model (for good: the end of training)."""
        torch._foreach_copy_(self.live, self.average)

    def state(self) -> dict[str, torch.Tensor]:
        """The averaged tensors under their checkpoint names."""
        return {PREFIX + k: v for k, v in zip(self.names, self.average, strict=True)}

    @torch.no_grad()
    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        """Restore the average from a checkpoint's tensors (KeyError names a missing one,
        ValueError a shape that does not fit)."""
        for name, average in zip(self.names, self.average, strict=True):
            saved = tensors[PREFIX + name]
            if saved.shape != average.shape:
                raise ValueError(f"its averaged weights {name!r} do not match the model's")
            average.copy_(saved)
