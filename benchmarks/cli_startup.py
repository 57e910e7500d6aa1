"""Start-up time of the `fds` command: `fds --help` and `fds train --help` beside `python -c pass`
(the interpreter alone) and `python -c "import torch"` (what the help must not pay for).

Each repeat runs the four commands once each as fresh processes, in a rotated order so that a slow
spell of the shared machine hits them alike; the first round is a discarded warm-up (file cache).
Reports the median wall time of each command and, per command, the median over repeats of its time
divided by `python -c pass` in the same repeat. Goal (issue 11): `fds --help` ≤ 1.0 s.

    .venv/bin/python benchmarks/cli_startup.py [--repeats 11] [--quick]

`--quick` runs 3 repeats without waiting for idle CPUs (a smoke test). Prints a table, then one
JSON line.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from _common import CpuPressure, emit_json, environment, median, print_table, wait_for_idle
from quickstart import fds_command

GOAL_S = 1.0


def commands() -> dict[str, list[str]]:
    """The timed commands by name; the baseline `python -c pass` comes first."""
    fds = fds_command()
    return {
        "python -c pass": [sys.executable, "-c", "pass"],
        "python -c 'import torch'": [sys.executable, "-c", "import torch"],
        "fds --help": [*fds, "--help"],
        "fds train --help": [*fds, "train", "--help"],
    }


def time_once(cmd: list[str]) -> float:
    """Wall seconds of one run of `cmd`, which must exit 0."""
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"`{' '.join(cmd)}` exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=11, help="rounds of the four commands")
    parser.add_argument(
        "--wait",
        type=float,
        default=10.0,
        help="before each round, wait up to this many seconds for idle CPUs (0: don't)",
    )
    parser.add_argument("--quick", action="store_true", help="3 rounds, no waiting")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.wait = 3, 0.0

    timed = commands()
    names = list(timed)
    for name in names:  # warm-up: fill the file cache, discarded
        time_once(timed[name])
    seconds: dict[str, list[float]] = {name: [] for name in names}
    pressures = []
    for r in range(args.repeats):
        if args.wait > 0:
            wait_for_idle(timeout=args.wait)
        with CpuPressure() as pressure:
            for name in names[r % len(names) :] + names[: r % len(names)]:
                seconds[name].append(time_once(timed[name]))
        pressures.append(pressure.value)
        shown = "  ".join(f"{name}: {seconds[name][-1]:.3f} s" for name in names)
        print(f"round {r + 1}/{args.repeats}: {shown}", flush=True)

    base = seconds[names[0]]
    medians = {name: median(values) for name, values in seconds.items()}
    ratios = {
        name: median([t / b for t, b in zip(values, base, strict=True)])
        for name, values in seconds.items()
    }
    meets = medians["fds --help"] <= GOAL_S
    goals = {"fds --help": f"≤ {GOAL_S:.1f} s: {'met' if meets else 'not met'}"}
    print()
    print(f"{args.repeats} rounds, medians (× = paired ratio to `python -c pass`)")
    print_table(
        ["command", "seconds", "× python -c pass", "goal"],
        [[name, medians[name], ratios[name], goals.get(name, "")] for name in names],
    )
    emit_json(
        {
            "benchmark": "cli_startup",
            "repeats": args.repeats,
            "seconds": medians,
            "over_python": ratios,
            "seconds_all": seconds,
            "cpu_pressure_all": pressures,
            "goal_s": GOAL_S,
            "meets_goal": meets and not args.quick,
            **environment(),
        }
    )


if __name__ == "__main__":
    main()
