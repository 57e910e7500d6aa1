"""Independent measurements run side by side on threads, one core each.

The leakage estimator fits a dozen attackers that share nothing (each block, the necessary
leakage, the utility), each a few to tens of seconds of small-matrix work that one thread runs
as fast as two. Splitting their matrices over cores buys little; running two fits at once on two
cores halves the wall time. Threads, not processes: torch, scikit-learn's boosting and BLAS
release the GIL in their kernels, and the codes need no copying. Every native pool is held at one
thread meanwhile, so `workers` fits use `workers` cores, not workers × pool size.

Each call must be seeded on its own (the estimator's fits are), so the results are the same
whatever the number of workers and the order the calls finish in.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from fds.runtime.threads import threads_in_use

__all__ = ["run_side_by_side"]

T = TypeVar("T")


def run_side_by_side(calls: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Each of `calls`' results, in order, computed on up to `workers` threads (1: one after the
    other, in the caller's thread pools). The first exception raised is raised here. Put the
    longest calls first: the pool hands them out in order."""
    workers = max(1, min(workers, len(calls)))
    if workers == 1:
        return [call() for call in calls]
    # Warning filters are process-wide: set the one the fits ask for (logistic regression's
    # convergence) before the threads start, so their own catch_warnings blocks, which can
    # interleave, never lose it, and restore everything once they have all finished.
    with threads_in_use(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        with ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="fds-fit", initializer=_one_core
        ) as pool:
            futures = [pool.submit(call) for call in calls]
            return [future.result() for future in futures]


def _one_core() -> None:
    """A pool thread's OpenMP pools at one thread. OpenMP keeps the count per thread, and a new
    thread starts at the default (every core), whatever the caller set for its own: unset,
    boosting ran two threads in each of two workers and cost a third more CPU."""
    threadpool_limits(limits=1)
