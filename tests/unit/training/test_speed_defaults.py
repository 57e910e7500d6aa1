"""What makes training fast by default — fused Adam, image rows encoded once in memory — keeps a
run resumable bit for bit, and changes no batch."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fds import FDS
from fds.data.stream import Rows
from fds.training.trainer import Trainer
from tests.conftest import FAST
from tests.interrupting import fit_stopped_at


def test_the_trainer_uses_fused_adam(digits: np.ndarray, monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[Trainer] = []
    original = Trainer.__init__

    def record(self: Trainer, *args: object, **kwargs: object) -> None:
        original(self, *args, **kwargs)
        built.append(self)

    monkeypatch.setattr(Trainer, "__init__", record)
    FDS(**(FAST | {"epochs": 1})).fit(digits)
    assert all(group["fused"] for group in built[0].optimizers["model"].param_groups)


def test_rows_in_memory_give_the_same_batches(digits: np.ndarray) -> None:
    index = np.arange(3, 300, 2)
    streamed = Rows(digits, index, lambda x: x.reshape(len(x), -1) / 255.0)
    held = streamed.in_memory()
    assert held.encode is None and isinstance(held.source, np.ndarray)
    positions = np.random.default_rng(0).permutation(len(index))[:50]
    assert torch.equal(held.take(positions), streamed.take(positions))


def test_rows_too_large_or_memory_mapped_stay_streamed(digits: np.ndarray, tmp_path) -> None:
    encode = lambda x: x.reshape(len(x), -1) / 255.0  # noqa: E731
    rows = Rows(digits, np.arange(100), encode)
    assert rows.in_memory(max_bytes=100) is rows
    np.save(tmp_path / "d.npy", digits)
    mapped = np.load(tmp_path / "d.npy", mmap_mode="r")
    mapped_rows = Rows(mapped, np.arange(100), encode)
    assert mapped_rows.in_memory() is mapped_rows


def test_an_image_run_cut_mid_epoch_resumes_bit_for_bit(digits: np.ndarray, tmp_path) -> None:
    params = FAST | {"epochs": 3, "batch_size": 32, "seed": 5}
    (tmp_path / "ref").mkdir()
    (tmp_path / "cut").mkdir()
    reference = FDS(**params).fit(digits, run_dir=tmp_path / "ref")
    # mid second epoch (11 steps per epoch)
    fit_stopped_at(15, lambda: FDS(**params).fit(digits, run_dir=tmp_path / "cut"))
    resumed = FDS(**params).fit(digits, run_dir=tmp_path / "cut", resume=True)
    for a, b in zip(resumed.model_.parameters(), reference.model_.parameters(), strict=True):
        assert torch.equal(a, b)
