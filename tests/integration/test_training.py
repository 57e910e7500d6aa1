"""Training runs on disk: resume after a kill or Ctrl-C reaches the same weights; divergence stops cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from fds import FDS, TrainingDivergedError
from fds.data.datasets import make_census
from tests.conftest import FAST

FDS_CLI = [sys.executable, "-m", "fds.cli"]
# One thread in the child runs too: same numbers in every run, and no OpenMP stalls on a busy machine.
CHILD_ENV = os.environ | {"OMP_NUM_THREADS": "1"}
RUN_ARGS = ["--epochs", "12", "--seed", "3", "--quiet"]


@pytest.fixture(scope="module")
def table_csv(tmp_path_factory) -> Path:
    """Big enough that an epoch takes a noticeable fraction of a second."""
    path = tmp_path_factory.mktemp("data") / "census.csv"
    make_census(n=6000, seed=1).to_csv(path, index=False)
    return path


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*FDS_CLI, "train", *args], capture_output=True, text=True, timeout=300, env=CHILD_ENV
    )


def _wait_for_epochs(run: Path, n: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    log = run / "metrics.jsonl"
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and len(log.read_text().splitlines()) >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"run did not reach {n} epochs while running (exit {proc.poll()})")


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run / "model" / "weights.safetensors"))


def _assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory, table_csv: Path) -> Path:
    run = tmp_path_factory.mktemp("runs") / "reference"
    result = _train("--data", str(table_csv), *RUN_ARGS, "--out", str(run))
    assert result.returncode == 0, result.stderr
    return run


@pytest.mark.slow
def test_resume_after_kill_matches_uninterrupted_run(
    tmp_path, table_csv: Path, reference_run: Path
) -> None:
    run = tmp_path / "killed"
    proc = subprocess.Popen(
        [*FDS_CLI, "train", "--data", str(table_csv), *RUN_ARGS, "--out", str(run)], env=CHILD_ENV
    )
    _wait_for_epochs(run, 2, proc)
    proc.kill()
    proc.wait(timeout=30)
    assert not (run / "model").exists()
    result = _train("--resume", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    _assert_same_weights(run, reference_run)
    log = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == list(range(1, 13))


@pytest.mark.slow
def test_ctrl_c_saves_a_checkpoint_and_resume_matches(
    tmp_path, table_csv: Path, reference_run: Path
) -> None:
    run = tmp_path / "interrupted"
    proc = subprocess.Popen(
        [*FDS_CLI, "train", "--data", str(table_csv), *RUN_ARGS, "--out", str(run)],
        stderr=subprocess.PIPE,
        text=True,
        env=CHILD_ENV,
    )
    _wait_for_epochs(run, 1, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "checkpoint" in err
    assert (run / "checkpoints" / "last.safetensors").is_file()
    result = _train("--resume", str(run), "--quiet")
    assert result.returncode == 0, result.stderr
    _assert_same_weights(run, reference_run)


def test_nan_loss_names_the_term_and_keeps_the_checkpoint(tmp_path, census) -> None:
    m = FDS(**(FAST | {"epochs": 4}), lr=1e30)
    with pytest.raises(
        TrainingDivergedError, match=r"loss term '\w+' became (nan|inf) at epoch \d"
    ) as err:
        m.fit(census, run_dir=tmp_path)
    epoch = int(str(err.value).split("at epoch ")[1].split()[0])
    if epoch > 1:  # a checkpoint of the last good epoch is there
        assert (tmp_path / "checkpoints" / "last.safetensors").is_file()
    assert "checkpoint" in str(err.value)


def test_early_stopping_stops_before_the_last_epoch(digits) -> None:
    m = FDS(**(FAST | {"epochs": 200}), early_stopping_patience=1, lr=3e-2).fit(digits)
    assert len(m.history_) < 200


def test_max_steps_bounds_training(digits) -> None:
    m = FDS(**FAST, max_steps=3, val_fraction=0.0).fit(digits)
    assert m.history_[-1]["step"] == 3


@pytest.mark.parametrize("schedule", ["cosine", "step"])
def test_lr_schedules_decay(digits, schedule: str) -> None:
    m = FDS(**(FAST | {"epochs": 4}), lr_schedule=schedule).fit(digits)
    lrs = [r["lr"] for r in m.history_]
    assert lrs[-1] < lrs[0]


def test_each_epoch_is_logged(tmp_path, digits) -> None:
    FDS(**FAST).fit(digits, run_dir=tmp_path)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert {"train_loss", "train_nll", "train_kl", "val_loss", "val_elbo", "seconds"} <= records[
        0
    ].keys()
    assert np.isfinite(records[-1]["val_elbo"])
