"""`fds quickstart` on a quiet machine and beside busy-loop processes (issue 19, part 4).

Two single-threaded jobs beside the quickstart used to stretch it from 30 s to 137–253 s: torch's
OpenMP threads, one per core, oversubscribed the cores. FDS now sizes its thread pools from the
cores that are free (fds.runtime.threads). This script times the quickstart, each run a fresh
process, in conditions interleaved per repeat:

  quiet          nothing of ours beside it (other people's jobs may still run: see `other_load`);
  busy           `--busy` processes running `while True: pass` beside it, threads chosen by FDS;
  busy, forced   the same, with `--threads` fixed at every core (the old behaviour), when
                 `--forced` is given.

OMP_NUM_THREADS is removed from the quickstart's environment (it would override the choice).
Before each run the script samples how many cores other processes keep busy (`other_load`, over
1 s), so a disturbed repeat can be recognised. Goal: busy ≤ 1.5 × quiet (medians).

Beside the ratio it prints the fair-share floors: the busy run's CPU seconds divided by the share
of the cores a job gets beside the busy loops with one runnable thread (2/3 of a core for 2 loops
on 2 cores) and with one per core (1 core). Training runs on one thread there and the evaluation's
side-by-side fits on every core, so a busy time between the two floors means FDS lost nothing to
stalls; the floors exceed 1.5 × quiet whenever the quiet run keeps the second core busy part of
the time, which no thread count can undo.

    PYTHONPATH=src .venv/bin/python benchmarks/busy_quickstart.py [--repeats 3] [--busy 2]
        [--forced] [--epochs N] [--fit-steps N] [--quick]

`--fit-steps N` times only `FDS.fit` of the quickstart's model for N steps, in this process (no
evaluation, no report): on a saturated machine the whole quickstart takes tens of minutes.

Prints one line per run, a table of medians, then one JSON line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from _common import CpuPressure, emit_json, environment, median, print_table
from quickstart import run_once

from fds.runtime.threads import busy_cores, usable_cores

GOAL_RATIO = 1.5


@contextmanager
def busy_loops(n: int) -> Iterator[None]:
    """`n` processes spinning `while True: pass` for the duration of the block."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()


def fit_once(steps: int, threads: int | None) -> dict[str, Any]:
    """FDS.fit of the quickstart's model (its data, preset and networks) for `steps` steps."""
    from fds import FDS
    from fds.data.datasets import load_builtin
    from fds.workflows.quickstart import QUICKSTART

    data = load_builtin(QUICKSTART["data"], seed=QUICKSTART["seed"])
    params = {k: v for k, v in QUICKSTART.items() if k != "data"}
    model = FDS(**params, max_steps=steps, val_fraction=0.0, threads=threads, verbose=False)
    with CpuPressure() as pressure:
        started, cpu_started = time.perf_counter(), time.process_time()
        model.fit(data.X, sensitive=data.factors[["shape"]])
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {"seconds": seconds, "cpu_seconds": cpu_seconds, "cpu_pressure": pressure.value}


def fair_share(cores: int, busy: int, threads: int = 1) -> float:
    """Cores a job of `threads` runnable threads gets beside `busy` busy loops under a fair
    scheduler (Linux CFS shares CPU time equally among runnable threads)."""
    return min(threads, cores * threads / (busy + threads))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (medians)")
    parser.add_argument("--busy", type=int, default=2, help="busy-loop processes beside it")
    parser.add_argument(
        "--forced", action="store_true", help="also run busy with --threads = every core"
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="quickstart epochs (default: its own)"
    )
    parser.add_argument(
        "--fit-steps",
        type=int,
        default=None,
        help="time FDS.fit of the quickstart's model for this many steps (in this process) "
        "instead of the whole quickstart: a figure that finishes on a saturated machine",
    )
    parser.add_argument("--quick", action="store_true", help="1 repeat of a 1-epoch quickstart")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.epochs = 1, 1
    extra = ["--epochs", str(args.epochs)] if args.epochs else []
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    os.environ.pop("OMP_NUM_THREADS", None)  # for --fit-steps: FDS chooses, as in the quickstart
    cores = usable_cores()
    conditions: list[tuple[str, int, list[str]]] = [("quiet", 0, []), ("busy", args.busy, [])]
    if args.forced:
        conditions.append(("busy, forced", args.busy, ["--threads", str(cores)]))

    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in conditions}
    for r in range(args.repeats):
        for name, n_busy, flags in conditions:
            other = busy_cores(1.0)
            with busy_loops(n_busy):
                if args.fit_steps:
                    run = fit_once(args.fit_steps, cores if flags else None)
                else:
                    run = run_once(extra + flags, env=env)
            run = {
                "seconds": run["seconds"],
                "cpu_seconds": run["cpu_seconds"],
                "other_load": other,
                "cpu_pressure": run["cpu_pressure"],
            }
            runs[name].append(run)
            print(
                f"repeat {r + 1}/{args.repeats} {name:<13} {run['seconds']:6.1f} s  "
                f"other load before {other:.2f} cores",
                flush=True,
            )

    seconds = {name: median([run["seconds"] for run in rs]) for name, rs in runs.items()}
    quiet = seconds["quiet"]
    print()
    print(
        (
            f"FDS.fit of the quickstart's model, {args.fit_steps} steps"
            if args.fit_steps
            else f"`fds quickstart --quiet --json {' '.join(extra)}`"
        )
        + f", {args.repeats} interleaved repeats, "
        f"{cores} usable cores, {args.busy} busy loops"
    )
    print_table(
        ["", "median s", "min s", "max s", "÷ quiet", "other load (cores, median)", "goal"],
        [
            [
                name,
                seconds[name],
                min(run["seconds"] for run in rs),
                max(run["seconds"] for run in rs),
                seconds[name] / quiet,
                median([run["other_load"] for run in rs]),
                f"≤ {GOAL_RATIO}" if name == "busy" else "",
            ]
            for name, rs in runs.items()
        ],
    )
    ratio = seconds["busy"] / quiet
    # The fastest the busy run could be at its own CPU seconds and its fair share with one
    # runnable thread, and with one per core: a measured time near them means no stall, only the
    # cores the busy loops are owed.
    busy_cpu = median([run["cpu_seconds"] for run in runs["busy"]])
    floor = busy_cpu / fair_share(cores, args.busy) / quiet
    floor_all = busy_cpu / fair_share(cores, args.busy, cores) / quiet
    print(
        f"\nbusy run: {busy_cpu:.1f} CPU s; at its fair share beside {args.busy} busy loops it "
        f"cannot finish in under {floor:.2f} × quiet on one thread "
        f"({fair_share(cores, args.busy):.2f} of a core), {floor_all:.2f} × on {cores} "
        f"({fair_share(cores, args.busy, cores):.2f}); measured {ratio:.2f} ×"
    )
    emit_json(
        {
            "benchmark": "busy_quickstart",
            "repeats": args.repeats,
            "busy_processes": args.busy,
            "usable_cores": cores,
            "args": extra,
            "fit_steps": args.fit_steps,
            "seconds": seconds,
            "busy_over_quiet": ratio,
            "fair_share_floor_over_quiet": floor,
            "fair_share_floor_every_core_over_quiet": floor_all,
            "cpu_seconds": {
                name: median([run["cpu_seconds"] for run in rs]) for name, rs in runs.items()
            },
            "forced_over_quiet": seconds.get("busy, forced", float("nan")) / quiet,
            "goal_busy_over_quiet": GOAL_RATIO,
            "meets_goal": ratio <= GOAL_RATIO and not extra and not args.fit_steps,
            "runs": runs,
            **environment(),
        }
    )


if __name__ == "__main__":
    main()
