"""Fits run side by side: results come back in the callers' order, an error is not swallowed,
torch's pool gets its size back, plans combine their own fits, and a seeded block is not
disturbed by another thread seeding torch's generator."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from fds.runtime.concurrent import Plan, run_plans, run_side_by_side, seeded_torch
from fds.runtime.threads import threads_in_use


def test_results_keep_the_order_of_the_calls_whatever_finishes_first() -> None:
    def call(i: int, pause: float):
        def run() -> tuple[int, int]:
            time.sleep(pause)
            return i, torch.get_num_threads()

        return run

    results = run_side_by_side([call(0, 0.2), call(1, 0.0), call(2, 0.1)], workers=2)
    assert [i for i, _ in results] == [0, 1, 2]
    assert {threads for _, threads in results} == {1}  # one core per fit, not a pool each


def test_two_workers_really_run_at_once() -> None:
    both = threading.Barrier(2, timeout=10)  # breaks (raises) unless two calls wait together
    assert sorted(run_side_by_side([both.wait, both.wait], workers=2)) == [0, 1]


def test_an_error_in_one_fit_reaches_the_caller_and_the_pool_is_restored() -> None:
    before = torch.get_num_threads()

    def fails() -> None:
        raise ValueError("attacker failed")

    with pytest.raises(ValueError, match="attacker failed"):
        run_side_by_side([lambda: 1, fails], workers=2)
    assert torch.get_num_threads() == before


def test_an_error_drops_the_calls_not_yet_started() -> None:
    started: list[int] = []

    def call(i: int):
        def run() -> int:
            started.append(i)
            if i == 0:
                raise ValueError("first fit failed")
            time.sleep(0.2)
            return i

        return run

    with pytest.raises(ValueError, match="first fit failed"):
        run_side_by_side([call(i) for i in range(20)], workers=2)
    assert len(started) < 5  # not the 20 a full queue would have run before the error came back


def test_one_worker_runs_in_the_callers_thread_on_one_core_as_a_pool_thread_would() -> None:
    caller = threading.get_ident()

    def where() -> tuple[int, int]:
        return threading.get_ident(), torch.get_num_threads()

    with threads_in_use(2):
        assert run_side_by_side([where], workers=1) == [(caller, 1)]
        assert torch.get_num_threads() == 2


def test_plans_combine_their_own_fits_whatever_the_workers() -> None:
    started: list[str] = []

    def fit(name: str, value: int):
        def run() -> int:
            started.append(name)
            return value

        return run

    plans = {
        "curve": Plan((fit("curve-all", 4), fit("curve-half", 2)), lambda r: r[0] - r[1]),
        "alone": Plan.single(fit("alone", 7)),
    }
    assert run_plans(plans, workers=1) == {"curve": 2, "alone": 7}
    assert started == ["curve-all", "alone", "curve-half"]  # every first fit before any second
    assert run_plans(plans, workers=2) == {"curve": 2, "alone": 7}


def test_a_seeded_block_draws_its_seeds_numbers_while_another_thread_seeds_too() -> None:
    def draws(seed: int) -> list[float]:
        out = []
        for _ in range(200):
            with seeded_torch(seed):
                out.append(float(torch.rand(1)))
        return out

    alone = [draws(1)[0], draws(2)[0]]
    side_by_side = run_side_by_side([lambda: draws(1), lambda: draws(2)], workers=2)
    assert {value for value in side_by_side[0]} == {alone[0]}
    assert {value for value in side_by_side[1]} == {alone[1]}


def test_each_fit_gets_one_core_even_where_openmp_defaults_to_every_core() -> None:
    """OpenMP's thread count is per thread: a pool thread must be capped itself. Checked in a
    fresh interpreter without OMP_NUM_THREADS, where the default is every core."""
    script = (
        "import sklearn.ensemble, torch\n"
        "from threadpoolctl import threadpool_info\n"
        "from fds.runtime.concurrent import run_side_by_side\n"
        "def counts():\n"
        "    return torch.get_num_threads(), [i['num_threads'] for i in threadpool_info()]\n"
        "for threads, pools in run_side_by_side([counts, counts], workers=2):\n"
        "    assert threads == 1 and set(pools) == {1}, (threads, pools)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
