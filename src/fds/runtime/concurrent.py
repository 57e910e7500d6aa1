"""Independent measurements run side by side on threads, one core each.

The leakage estimator fits a dozen attackers that share nothing (each block, the necessary
leakage, the utility), each a few to tens of seconds of small-matrix work that one thread runs
as fast as two. Splitting their matrices over cores buys little; running two fits at once on two
cores halves the wall time. Threads, not processes: torch, scikit-learn's boosting and BLAS
release the GIL in their kernels, and the codes need no copying. Every native pool is held at one
thread meanwhile, so `workers` fits use `workers` cores, not workers × pool size.

Each call must be seeded on its own (the estimator's fits are), so the results are the same
whatever the number of workers and the order the calls finish in. Torch's global generator is
the one thing they share: whoever seeds it holds `seeded_torch`'s lock meanwhile.

A measurement made of several fits (a learning curve, an evaluation's groups) is a `Plan`: its
fits and how to combine their results. `run_plans` runs the fits of many plans in one pool,
every plan's first (largest) fit before any plan's second, so the longest work starts first.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from typing import Any, Generic, ParamSpec, TypeVar

import torch
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from fds.runtime.threads import threads_in_use

__all__ = ["Plan", "run_now", "run_plans", "run_side_by_side", "seeded_torch"]

T = TypeVar("T")
P = ParamSpec("P")
K = TypeVar("K", bound=Hashable)
_TORCH_RNG = threading.RLock()


@contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Torch's global generator seeded with `seed` for the block and restored after it, held by
    this thread alone meanwhile: `nn.Module` initialisers draw from it, and fits running side by
    side would otherwise seed it for each other."""
    with _TORCH_RNG, torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@dataclass(frozen=True)
class Plan(Generic[T]):
    """Independent, separately seeded fits, and how their results (in order) make the figure."""

    fits: tuple[Callable[[], Any], ...]
    combine: Callable[[list[Any]], T]

    @classmethod
    def single(cls, call: Callable[[], T]) -> Plan[T]:
        """One call whose result is the figure."""
        return cls((call,), lambda results: results[0])

    def run(self, workers: int = 1) -> T:
        return self.combine(run_side_by_side(self.fits, workers))


def run_now(planner: Callable[P, Plan[T]], name: str) -> Callable[P, T]:
    """The function `name` that makes `planner`'s plan and runs it at once, in the caller's
    thread: the figure for callers that have nothing to run beside it."""

    @wraps(planner)
    def now(*args: P.args, **kwargs: P.kwargs) -> T:
        return planner(*args, **kwargs).run()

    now.__name__ = now.__qualname__ = name
    now.__doc__ = f"`{planner.__name__}`'s figure, computed now.\n\n{planner.__doc__}"
    return now


def run_plans(plans: Mapping[K, Plan[Any]], workers: int) -> dict[K, Any]:
    """Every plan's figure, its fits run side by side on up to `workers` threads: the first fit
    of every plan (in the mapping's order), then every second fit, and so on."""
    order = [
        (key, rank)
        for rank in range(max((len(p.fits) for p in plans.values()), default=0))
        for key, plan in plans.items()
        if rank < len(plan.fits)
    ]
    results = run_side_by_side([plans[key].fits[rank] for key, rank in order], workers)
    done: dict[K, dict[int, Any]] = {key: {} for key in plans}
    for (key, rank), result in zip(order, results, strict=True):
        done[key][rank] = result
    return {
        key: plan.combine([done[key][r] for r in range(len(plan.fits))])
        for key, plan in plans.items()
    }


def run_side_by_side(calls: Sequence[Callable[[], T]], workers: int) -> list[T]:
    """Each of `calls`' results, in order, computed on up to `workers` threads (1: one after the
    other, in the caller's thread). Each call runs on one core either way: a conv net's last
    bits depend on its thread count, so the results do not depend on `workers`. The first
    exception raised (or Ctrl-C) is raised here once the calls already running have finished;
    the calls not yet started are dropped. Put the longest calls first: the pool hands them out
    in order."""
    workers = max(1, min(workers, len(calls)))
    if workers == 1:
        with threads_in_use(1), threadpool_limits(limits=1):
            return [call() for call in calls]
    # Warning filters are process-wide: set the one the fits ask for (logistic regression's
    # convergence) before the threads start, so their own catch_warnings blocks, which can
    # interleave, never lose it, and restore everything once they have all finished.
    with threads_in_use(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        pool = ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="fds-fit", initializer=_one_core
        )
        try:
            futures = [pool.submit(call) for call in calls]
            return [future.result() for future in futures]
        finally:  # on an error, the queue is not worth waiting for
            pool.shutdown(wait=True, cancel_futures=True)


def _one_core() -> None:
    """A pool thread's OpenMP pools at one thread. OpenMP keeps the count per thread, and a new
    thread starts at the default (every core), whatever the caller set for its own: unset,
    boosting ran two threads in each of two workers and cost a third more CPU."""
    threadpool_limits(limits=1)
