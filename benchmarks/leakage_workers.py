"""The leakage measurement's wall time with its fits one after the other and side by side on
`--workers` cores, on the same run in one process, alternating (so load on a shared machine hits
both alike); the figures must be identical.

    PYTHONPATH=src .venv/bin/python benchmarks/leakage_workers.py \\
        --model runs/quickstart --utility-target factor:x --repeats 3

This is what `fds evaluate`, `fds attack --kind attribute` and the quickstart run
(`fds.workflows.leakage.measure_leakage`, the truthful budget). Prints one line per run, a table
of medians, then one JSON line.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import emit_json

from fds.runtime.threads import threads_in_use, usable_cores
from fds.workflows.evaluate import load_run
from fds.workflows.leakage import measure_leakage


def timed(model, data, target: str | None, workers: int) -> tuple[float, float, dict]:
    """(wall s, CPU s of this process, the measurement)."""
    wall, cpu = time.perf_counter(), time.process_time()
    with threads_in_use(1):  # one after the other: one core, as evaluate chooses on a busy machine
        result = measure_leakage(model, data, target=target, workers=workers)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a run directory with a private block")
    parser.add_argument("--utility-target", default=None, help="as fds evaluate's")
    parser.add_argument("--workers", type=int, default=usable_cores())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model, _, data = load_run(args.model, None, None)
    runs: dict[int, list[tuple[float, float]]] = {1: [], args.workers: []}
    figures: dict[int, dict] = {}
    for repeat in range(args.repeats):
        for workers in runs:
            wall, cpu, result = timed(model, data, args.utility_target, workers)
            runs[workers].append((wall, cpu))
            figures[workers] = result
            print(f"repeat {repeat}  workers {workers}: {wall:7.1f} s wall  {cpu:7.1f} s CPU")
    same = figures[1] == figures[args.workers]
    median = {w: statistics.median(r[0] for r in runs[w]) for w in runs}
    print(f"\n{'workers':>8} {'median wall s':>14} {'median CPU s':>13}")
    for workers in runs:
        cpu = statistics.median(r[1] for r in runs[workers])
        print(f"{workers:>8} {median[workers]:>14.1f} {cpu:>13.1f}")
    speedup = median[1] / median[args.workers]
    print(f"speed-up {speedup:.2f}x, identical figures: {same}")
    emit_json(
        {
            "benchmark": "leakage_workers",
            "model": args.model,
            "workers": args.workers,
            "repeats": args.repeats,
            "wall_s": {str(w): [round(r[0], 2) for r in runs[w]] for w in runs},
            "cpu_s": {str(w): [round(r[1], 2) for r in runs[w]] for w in runs},
            "speedup": round(speedup, 3),
            "identical_figures": same,
        }
    )


if __name__ == "__main__":
    main()
