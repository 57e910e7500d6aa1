"""`fds evaluate`'s wall time on one trained run under two source trees (the code before a change
and after it), alternating, each in a fresh process, so load on a shared machine hits both alike.

    PYTHONPATH=src .venv/bin/python benchmarks/evaluate_sources.py --run runs/quickstart \\
        --before /path/to/old/checkout/src --after src --repeats 5

Each repeat copies the run (without its evaluation, report and checkpoints) and evaluates the copy
with the quickstart's options (`--utility-target factor:x`, 10 importance samples), threads chosen
as `fds evaluate` chooses them. Prints one line per run, a table of medians and the ratio, then
one JSON line; the figures of the two sources are compared group by group (the `seconds` aside).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import emit_json, median, print_table

# Runs in the child, under the source tree on its PYTHONPATH.
_CHILD = """
import json, sys, time
from fds.workflows.evaluate import evaluate_path
wall, cpu = time.perf_counter(), time.process_time()
report, _ = evaluate_path(sys.argv[1], utility_target="factor:x", iwae_k=10)
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "report": {k: v for k, v in report.items() if k != "seconds"}}))
"""


def evaluate_once(source: Path, run: Path, scratch: Path) -> dict[str, Any]:
    """Wall and CPU seconds of one evaluation of a fresh copy of `run` under `source`."""
    copy = scratch / "run"
    shutil.rmtree(copy, ignore_errors=True)
    skip = shutil.ignore_patterns("evaluation.json", "report.html", "checkpoints")
    shutil.copytree(run, copy, ignore=skip)
    env = os.environ | {"PYTHONPATH": str(source.resolve())}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(copy / "model")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, type=Path, help="a trained quickstart run")
    parser.add_argument("--before", required=True, type=Path, help="the old source tree (src/)")
    parser.add_argument("--after", required=True, type=Path, help="the new source tree (src/)")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    sources = {"before": args.before, "after": args.after}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sources}
    with tempfile.TemporaryDirectory() as scratch:
        for repeat in range(args.repeats):
            for name, source in sources.items():
                found = evaluate_once(source, args.run, Path(scratch))
                runs[name].append(found)
                print(f"repeat {repeat + 1}/{args.repeats} {name:6s} {found['wall']:.1f} s")
    walls = {name: [r["wall"] for r in rs] for name, rs in runs.items()}
    cpus = {name: [r["cpu"] for r in rs] for name, rs in runs.items()}
    before, after = runs["before"][0]["report"], runs["after"][0]["report"]
    differ = sorted(group for group in before if before[group] != after.get(group))
    print_table(
        ["source", "median s", "min s", "max s", "median CPU s"],
        [[name, median(w), min(w), max(w), median(cpus[name])] for name, w in walls.items()],
    )
    ratio = median(walls["before"]) / median(walls["after"])
    print(f"before ÷ after: {ratio:.2f}; groups whose figures differ: {differ or 'none'}")
    emit_json(
        {
            "benchmark": "evaluate_sources",
            "repeats": args.repeats,
            "seconds": walls,
            "cpu_seconds": cpus,
            "median_before_over_after": ratio,
            "groups_that_differ": differ,
        }
    )


if __name__ == "__main__":
    main()
