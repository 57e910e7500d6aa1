"""Stopping a fit at a chosen step as Ctrl-C would, for the tests that resume it bit for bit."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from fds.training.trainer import Trainer


def fit_stopped_at(step: int, fit: Callable[[], Any]) -> None:
    """Run `fit()` with a stop requested at training step `step` (1-based): the trainer writes
    its checkpoint and raises KeyboardInterrupt, which this expects."""
    original, calls = Trainer._step, {"n": 0}

    def step_then_stop(self: Trainer, *args: Any, **kwargs: Any) -> dict[str, float]:
        calls["n"] += 1
        if calls["n"] == step:
            self._stop_requested = True
        return original(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "_step", step_then_stop)
        with pytest.raises(KeyboardInterrupt):
            fit()
