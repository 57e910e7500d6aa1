"""`ema_decay`: a run ends with the moving average of its weights, computed after every step with
TensorFlow's warm-up of the decay; validation and best-epoch selection see the average, training
itself is unchanged, and a resumed run ends bit for bit where an uninterrupted one does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from fds import FDS
from fds.config import make_config
from fds.errors import ConfigError, ModelFormatError
from fds.training.ema import decay_at
from fds.training.trainer import Trainer, TrainingInterrupted
from tests.cli_helpers import refuses_train_config
from tests.conftest import FAST


def _table(n: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"x": rng.normal(size=n), "y": rng.integers(0, 5, n)})


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_the_decay_warms_up_from_a_tenth_to_its_cap() -> None:
    assert decay_at(0, 0.999) == pytest.approx(0.1)
    assert decay_at(90, 0.999) == pytest.approx(91 / 100)
    assert decay_at(10**6, 0.999) == 0.999
    assert decay_at(5, 0.2) == 0.2


def test_a_run_ends_with_the_average_of_its_steps_and_trains_as_without_it(monkeypatch) -> None:
    """The weights after every step, averaged by hand, are what the model ends with and what the
    end-of-epoch check saw; the trained (not averaged) weights are those of a run without it."""
    steps: list[dict[str, torch.Tensor]] = []
    seen: list[dict[str, torch.Tensor]] = []
    step, validate = Trainer._step, Trainer.validate

    def recording_step(self: Trainer, *args, **kwargs):
        if not steps:
            steps.append(_state(self))  # the start, where the average starts
        values = step(self, *args, **kwargs)
        steps.append(_state(self))
        return values

    def recording_validate(self: Trainer, rows):
        seen.append(_state(self))
        return validate(self, rows)

    monkeypatch.setattr(Trainer, "_step", recording_step)
    monkeypatch.setattr(Trainer, "validate", recording_validate)
    params = FAST | {"val_fraction": 0.0, "seed": 4}
    decay = 0.2  # the warm-up's (1 + t) / (10 + t) passes it at t = 2: both branches are used
    model = FDS(**params, ema_decay=decay).fit(_table())
    average = {k: v.clone() for k, v in steps[0].items()}
    by_epoch = []
    for t, weights in enumerate(steps[1:]):
        d = decay_at(t, decay)
        average = {k: d * average[k] + (1 - d) * weights[k] for k in average}
        if (t + 1) % (len(steps[1:]) // 2) == 0:
            by_epoch.append(average)
    for got, want in zip([*seen, model.model_.state_dict()], [*by_epoch, average], strict=True):
        for name, value in want.items():
            torch.testing.assert_close(got[name], value, rtol=0, atol=1e-6, msg=name)
    assert not _same(model.model_.state_dict(), steps[-1])  # the average, not the last step
    monkeypatch.undo()
    plain = FDS(**params).fit(_table())
    assert _same(plain.model_.state_dict(), steps[-1])


def test_the_best_epoch_kept_is_its_averaged_weights(monkeypatch) -> None:
    script = [5.0, 4.0, 3.0, 3.5, 6.0]  # best at epoch 3
    seen: list[dict[str, torch.Tensor]] = []

    def validate(self: Trainer, rows) -> dict[str, float]:
        seen.append(_state(self))
        return {"val_loss": script[len(seen) - 1], "val_nll": 0.0, "val_elbo": 0.0}

    monkeypatch.setattr(Trainer, "validate", validate)
    model = FDS(**FAST | {"epochs": len(script), "ema_decay": 0.9}).fit(_table())
    assert model.best_epoch_ == 3
    assert _same(model.model_.state_dict(), seen[2])


def _interrupted(params: dict, run_dir: Path, after_epoch: int) -> None:
    """Train in `run_dir` and stop as Ctrl-C would, one step into epoch after_epoch + 1."""
    original = Trainer._end_epoch

    def stop(self: Trainer, loop, seconds):
        record = original(self, loop, seconds)
        if record["epoch"] == after_epoch:
            self._stop_requested = True
        return record

    run_dir.mkdir()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "_end_epoch", stop)
        with pytest.raises(TrainingInterrupted):
            FDS(**params).fit(_table(), run_dir=run_dir)


def test_a_resumed_run_ends_bit_for_bit_with_the_uninterrupted_ones_average(tmp_path) -> None:
    params = FAST | {"epochs": 4, "ema_decay": 0.9, "seed": 2}
    (tmp_path / "whole").mkdir()
    whole = FDS(**params).fit(_table(), run_dir=tmp_path / "whole")
    _interrupted(params, tmp_path / "split", after_epoch=2)
    resumed = FDS(**params).fit(_table(), run_dir=tmp_path / "split", resume=True)
    assert _same(resumed.model_.state_dict(), whole.model_.state_dict())
    assert resumed.history_[-1]["val_loss"] == whole.history_[-1]["val_loss"]
    assert resumed.best_epoch_ == whole.best_epoch_


def test_resuming_with_averaging_from_a_checkpoint_without_it_is_refused(tmp_path) -> None:
    _interrupted(FAST | {"epochs": 3}, tmp_path / "run", after_epoch=1)
    with pytest.raises(ModelFormatError, match=r"'ema\..*' is missing"):
        FDS(**FAST | {"epochs": 3, "ema_decay": 0.9}).fit(
            _table(), run_dir=tmp_path / "run", resume=True
        )


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, "0.9", True])
def test_a_decay_outside_0_to_1_is_a_config_error_naming_it(bad) -> None:
    with pytest.raises(ConfigError, match="ema_decay"):
        make_config(ema_decay=bad)


def test_the_cli_refuses_a_bad_decay_in_one_line_and_writes_nothing(tmp_path: Path) -> None:
    refuses_train_config(tmp_path, "ema_decay: 1.0\n", "ema_decay")
