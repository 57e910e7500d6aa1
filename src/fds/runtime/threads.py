"""How many threads torch and the native thread pools (BLAS, OpenMP) get.

On a machine shared with other jobs, a thread pool sized to every core oversubscribes them: each
parallel region waits for its slowest thread, and a thread the scheduler has parked behind
another job stalls all the others (issue 19 saw `fds quickstart` go from 30 s to 137–253 s beside
two single-threaded jobs). So FDS sizes its pools from the cores that are free when the work
starts, sampled from /proc/stat over a tenth of a second (the load average where there is no
/proc), and gives small models one thread, whose steps are too short to be worth splitting.
`threads=N` (`--threads N`) or OMP_NUM_THREADS in the environment override the choice.

The last bits of the weights can depend on the count (parallel reductions add in another
order), so a training run keeps the count it started with in its checkpoints and a resume reuses
it (training/trainer.py); pass `threads` to get the same numbers on another machine or load.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits

# A training step whose parameters × batch rows stay below this is "small": on a 2-core machine
# a 117k-parameter MLP at batch 128 (1.5e7) ran no faster on 2 threads than on 1.
SMALL_WORK = 2**24
MAX_THREADS = 4096  # a count read from a checkpoint beyond this is not trusted
_SAMPLE_S = 0.1


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, which containers and taskset set)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies summed over the machine's CPUs, from /proc/stat's first line."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    return fields[3] + fields[4], sum(fields)  # idle + iowait, everything


def busy_cores(sample_s: float = _SAMPLE_S) -> float:
    """How many of the machine's cores other work keeps busy now: the non-idle share of CPU time
    over `sample_s` seconds (this process sleeps meanwhile), else the 1-minute load average."""
    before = _cpu_times()
    if before is not None:
        time.sleep(sample_s)
        after = _cpu_times()
        total = after[1] - before[1] if after is not None else 0
        if after is not None and total > 0:
            return (1.0 - (after[0] - before[0]) / total) * (os.cpu_count() or 1)
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0


def choose_threads(requested: int | None = None, *, work: float | None = None) -> int:
    """The thread count for a job: `requested` if given, else OMP_NUM_THREADS if set, else 1 for
    small work (`work` = parameters × batch rows, below SMALL_WORK), else the free cores."""
    if requested is not None:
        return max(1, int(requested))
    from_env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if from_env.isdigit() and int(from_env) > 0:
        return int(from_env)
    if work is not None and work < SMALL_WORK:
        return 1
    cores = usable_cores()
    free = cores - busy_cores()
    return max(1, min(cores, math.floor(free + 0.5)))


def choose_workers(requested: int | None = None) -> int:
    """How many independent one-core fits to run side by side (`fds.runtime.concurrent`):
    `requested` if given, else OMP_NUM_THREADS if set, else every usable core, busy or not.
    Unlike a parallel region, whose threads wait for the slowest at every barrier, independent
    fits never wait for each other: beside two busy loops on 2 cores, two fits get a core
    between them where one got two thirds of a core."""
    if requested is not None:
        return max(1, int(requested))
    from_env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if from_env.isdigit() and int(from_env) > 0:
        return int(from_env)
    return usable_cores()


@contextmanager
def threads_in_use(n: int) -> Iterator[int]:
    """Run the block with torch's intra-op pool and the BLAS and OpenMP pools (scikit-learn's,
    numpy's) at `n` threads; the previous sizes are restored afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n):
            yield n
    finally:
        torch.set_num_threads(previous)
