"""The best validation epoch's weights are what a run ends with, and it says which epoch that was,
also after a resume; a DP run keeps its last weights (its accountant does not cover choosing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fds import FDS
from fds.training.trainer import Trainer, TrainingInterrupted
from tests.conftest import FAST

# the validation loss of each epoch: best at epoch 3, worse after
SCRIPT = [5.0, 4.0, 3.0, 3.5, 6.0]


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, torch.Tensor]]:
    """Validation returns SCRIPT's losses in turn and records the weights it was called with."""
    seen: list[dict[str, torch.Tensor]] = []

    def validate(self: Trainer, rows) -> dict[str, float]:
        seen.append({k: v.detach().clone() for k, v in self.model.state_dict().items()})
        return {"val_loss": SCRIPT[len(seen) - 1], "val_nll": 0.0, "val_elbo": 0.0}

    monkeypatch.setattr(Trainer, "validate", validate)
    return seen


def _table(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=n), "y": rng.integers(0, 5, n)})


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_run_ends_with_its_best_epochs_weights_and_says_which(scripted) -> None:
    model = FDS(**FAST | {"epochs": len(SCRIPT)}).fit(_table())
    assert model.best_epoch_ == 3
    assert [h["val_loss"] for h in model.history_] == SCRIPT
    assert _same(model.model_.state_dict(), scripted[2])
    assert not _same(model.model_.state_dict(), scripted[-1])


def test_a_resumed_run_restores_the_same_best_weights(scripted, tmp_path: Path) -> None:
    params = FAST | {"epochs": len(SCRIPT)}
    for name in ("whole", "split"):
        (tmp_path / name).mkdir()
    whole = FDS(**params).fit(_table(), run_dir=tmp_path / "whole")
    scripted.clear()

    stopped = FDS(**params)
    original = Trainer._end_epoch

    def stop_after_four(self: Trainer, loop, seconds):
        record = original(self, loop, seconds)
        if record["epoch"] == 4:
            self._stop_requested = True  # as Ctrl-C: a checkpoint inside epoch 5, then stop
        return record

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "_end_epoch", stop_after_four)
        with pytest.raises(TrainingInterrupted):
            stopped.fit(_table(), run_dir=tmp_path / "split")
    resumed = FDS(**params).fit(_table(), run_dir=tmp_path / "split", resume=True)
    assert resumed.best_epoch_ == whole.best_epoch_ == 3
    assert _same(resumed.model_.state_dict(), whole.model_.state_dict())


def test_without_validation_rows_the_last_epoch_is_kept() -> None:
    model = FDS(**FAST | {"val_fraction": 0.0}).fit(_table())
    assert model.best_epoch_ is None


def test_epochs_inside_a_warmup_are_not_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    losses = iter([1.0, 2.0, 4.0, 3.0, 5.0])  # epoch 1 looks best only because KL weighs ~0 then

    def validate(self: Trainer, rows) -> dict[str, float]:
        return {"val_loss": next(losses), "val_nll": 0.0, "val_elbo": 0.0}

    monkeypatch.setattr(Trainer, "validate", validate)
    model = FDS(**FAST | {"epochs": 5, "kl_warmup_epochs": 3}).fit(_table())
    assert model.best_epoch_ == 4
