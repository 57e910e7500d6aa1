"""Wall-clock time of `fds quickstart` end to end, as a user runs it (a fresh process each time).

Runs `fds quickstart --out <tmpdir> --quiet --json` with the `fds` script installed next to this
Python, checks that it exits 0 and prints one JSON object, and reports the median over
`--repeats` runs. Goal (issue 2): ≤ 180 s on this machine (2 cores).

    .venv/bin/python benchmarks/quickstart.py [--repeats 3] [--quick]

`--quick` runs it once with `--epochs 1` (a smoke test of the command, not of the goal). Prints a
table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import CpuPressure, emit_json, environment, median, print_table, wait_for_idle

GOAL_S = 180.0


def fds_command() -> list[str]:
    script = Path(sys.executable).with_name("fds")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "fds.cli"]  # fallback when the console script is missing


def run_once(extra: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """One `fds quickstart` in a fresh process (`env`: its environment, default this one's)."""
    with tempfile.TemporaryDirectory(prefix="fds-quickstart-") as tmp:
        out = Path(tmp) / "run"
        cmd = [*fds_command(), "quickstart", "--out", str(out), "--quiet", "--json", *extra]
        cpu_before = _children_cpu_seconds()
        with CpuPressure() as pressure:
            started = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
            seconds = time.perf_counter() - started
        cpu_seconds = _children_cpu_seconds() - cpu_before
        if proc.returncode != 0:
            raise SystemExit(
                f"`{' '.join(cmd)}` exited {proc.returncode}:\n{proc.stderr.strip()[-2000:]}"
            )
        try:
            summary = json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise SystemExit(
                f"`fds quickstart --json` did not print one JSON object:\n{proc.stdout[-2000:]}"
            ) from None
        files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    return {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "cpu_pressure": pressure.value,
        "summary": summary,
        "files": files,
    }


def _children_cpu_seconds() -> float:
    """User + system CPU seconds of this process's finished children."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs (median)")
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        help="before each run, wait up to this many seconds for idle CPUs (0: don't)",
    )
    parser.add_argument("--quick", action="store_true", help="one run with --epochs 1")
    args = parser.parse_args()
    extra: list[str] = []
    if args.quick:
        args.repeats, args.wait, extra = 1, 0.0, ["--epochs", "1"]

    runs = []
    for r in range(args.repeats):
        waited = wait_for_idle(timeout=args.wait) if args.wait > 0 else 0.0
        run = run_once(extra) | {"waited_for_idle_s": waited}
        runs.append(run)
        pressure = run["cpu_pressure"]
        print(
            f"run {r + 1}/{args.repeats}: {run['seconds']:.1f} s"
            + (f"  cpu pressure {pressure:.0%}" if pressure is not None else ""),
            flush=True,
        )
    seconds = median([run["seconds"] for run in runs])
    print()
    print(
        f"`fds quickstart --quiet --json`{' ' + ' '.join(extra) if extra else ''}, "
        f"{args.repeats} run(s), median"
    )
    print_table(
        ["", "seconds", "goal", "meets"],
        [
            ["median", seconds, f"≤ {GOAL_S:.0f}", "yes" if seconds <= GOAL_S else "no"],
            ["fastest", min(run["seconds"] for run in runs), "", ""],
            ["slowest", max(run["seconds"] for run in runs), "", ""],
        ],
    )
    emit_json(
        {
            "benchmark": "quickstart",
            "repeats": args.repeats,
            "args": extra,
            "seconds": seconds,
            "seconds_all": [run["seconds"] for run in runs],
            "cpu_pressure_all": [run["cpu_pressure"] for run in runs],
            "goal_s": GOAL_S,
            "meets_goal": seconds <= GOAL_S and not extra,
            "summary": runs[-1]["summary"],
            "files": runs[-1]["files"],
            **environment(),
        }
    )


if __name__ == "__main__":
    main()
