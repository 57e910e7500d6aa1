"""Fits run side by side: results come back in the callers' order, an error is not swallowed,
and torch's pool gets its size back."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest
import torch

from fds.runtime.concurrent import run_side_by_side


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


def test_one_worker_runs_in_the_callers_thread() -> None:
    caller = threading.get_ident()
    assert run_side_by_side([threading.get_ident], workers=1) == [caller]


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
