"""Thread pools sized to the free cores: an explicit count or OMP_NUM_THREADS wins, small models
get one thread, a busy machine fewer threads (but side-by-side fits every usable core), and the
pools are restored after the work."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_info

from fds import FDS
from fds.runtime import threads
from fds.runtime.threads import SMALL_WORK, choose_threads, choose_workers, threads_in_use
from tests.conftest import FAST


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "usable_cores", lambda: 4)
    return monkeypatch


def test_an_explicit_count_wins_over_everything(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("OMP_NUM_THREADS", "3")
    assert choose_threads(2, work=1) == 2


def test_omp_num_threads_wins_over_the_choice(no_env: pytest.MonkeyPatch) -> None:
    no_env.setenv("OMP_NUM_THREADS", "3")
    assert choose_threads(None, work=10 * SMALL_WORK) == 3


def test_small_work_gets_one_thread_even_on_an_idle_machine(no_env: pytest.MonkeyPatch) -> None:
    no_env.setattr(threads, "busy_cores", lambda: 0.0)
    assert choose_threads(None, work=SMALL_WORK - 1) == 1
    assert choose_threads(None, work=SMALL_WORK) == 4


@pytest.mark.parametrize(("busy", "expected"), [(0.0, 4), (1.1, 3), (2.0, 2), (3.9, 1), (9.0, 1)])
def test_large_work_gets_the_free_cores(
    no_env: pytest.MonkeyPatch, busy: float, expected: int
) -> None:
    no_env.setattr(threads, "busy_cores", lambda: busy)
    assert choose_threads(None, work=10 * SMALL_WORK) == expected


def test_side_by_side_fits_take_every_usable_core_even_when_they_are_busy(
    no_env: pytest.MonkeyPatch,
) -> None:
    """Independent one-core fits never wait for each other, so a busy core costs them only its
    share: the pool is sized to the usable cores, not the free ones."""
    no_env.setattr(threads, "busy_cores", lambda: 9.0)
    assert choose_workers() == 4
    assert choose_workers(2) == 2
    no_env.setenv("OMP_NUM_THREADS", "1")
    assert choose_workers() == 1


def test_busy_cores_reads_a_busy_loop_beside_it() -> None:
    """A spinning thread of this process shows up as (about) one busy core."""
    import threading
    import time

    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            pass

    worker = threading.Thread(target=spin)
    worker.start()
    try:
        time.sleep(0.05)
        measured = threads.busy_cores(0.3)
    finally:
        stop.set()
        worker.join()
    assert measured >= 0.5, measured


def _openmp_threads() -> list[int]:
    return [p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"]


def test_the_pools_are_set_inside_and_restored_after() -> None:
    before, omp_before = torch.get_num_threads(), _openmp_threads()
    target = 1 if before > 1 else 2
    with threads_in_use(target):
        assert torch.get_num_threads() == target
        assert all(n == target for n in _openmp_threads())
    assert torch.get_num_threads() == before
    assert _openmp_threads() == omp_before


def test_a_resumed_run_keeps_the_thread_count_it_started_with(
    digits: np.ndarray, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last bits of the weights may depend on the count: the checkpoint carries it."""
    from fds.training import trainer

    used: list[int] = []
    real = trainer.threads_in_use

    def spy(n: int):
        used.append(n)
        return real(n)

    monkeypatch.setattr(trainer, "threads_in_use", spy)
    monkeypatch.setattr(trainer, "choose_threads", lambda requested, work: requested or 2)
    FDS(**FAST).fit(digits, run_dir=tmp_path)
    monkeypatch.setattr(trainer, "choose_threads", lambda requested, work: requested or 1)
    FDS(**(FAST | {"epochs": 3})).fit(digits, run_dir=tmp_path, resume=True)
    FDS(**(FAST | {"epochs": 4}), threads=1).fit(digits, run_dir=tmp_path, resume=True)
    assert used == [2, 2, 1]  # chosen, kept on resume, overridden by an explicit count
