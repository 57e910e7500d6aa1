"""Tables larger than memory (issue 17): peak memory and throughput of streamed training, encode
and sample, against the same model trained on a 1M-row slice held in memory, in one run.

Steps, each a separate child process whose peak RSS is read from the kernel (os.wait4's rusage,
ru_maxrss), so one step's memory never counts in another's:

  make     `fds datasets make big-table --rows N` writes the N-row table (20 mixed columns, gaps)
           and, from the same generator, its first min(N, 1M) rows as the in-memory slice;
  memory   `fds train --no-stream` on the slice: the table read whole, encoded once in memory;
  stream   `fds train --stream` on the N-row table: codec fitted in one pass, batches streamed
           by row group through the shuffle buffer;
  encode   `fds encode --stream` of the N-row table to Parquet (posterior means);
  sample   `fds sample --stream -n N` to Parquet.

Both trainings use the same model (vae preset, its default width and table batch, one thread, one
epoch, missing: model). Throughput is the training rows ÷ the epoch's seconds from metrics.jsonl
(the streamed epoch includes reading and encoding; the in-memory one encoded before its epoch).
Goals: peak RSS ≤ 2 GiB for every streamed step, stream / memory throughput ≥ 0.8.

    .venv/bin/python benchmarks/scale.py --rows 10000000      # the issue's size (long)
    .venv/bin/python benchmarks/scale.py --rows 1000000
    .venv/bin/python benchmarks/scale.py --quick              # 60,000 rows, a smoke test
    .venv/bin/python benchmarks/scale.py --rows 10000000 --max-steps 2000 --skip memory --skip sample

`--max-steps N` stops both trainings after N steps (the codec pass still reads the whole table):
peak memory of a big table without a full epoch's time. `--skip STEP` leaves out memory, encode
or sample (the ratio needs memory).

Prints a table, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import emit_json, environment, print_table

GIB = 2**30
SLICE_ROWS = 1_000_000
RSS_GOAL = 2 * GIB
RATIO_GOAL = 0.8
MODEL = ["--preset", "vae", "--epochs", "1", "--missing", "model", "--threads", "1"]
SKIPPABLE = ("memory", "encode", "sample")


def run_child(args: list[str]) -> dict[str, Any]:
    """Run `python -m fds.cli ARGS --json` and return its summary, wall seconds and peak RSS."""
    env = os.environ | {"OMP_NUM_THREADS": "1", "PYTHONPATH": str(_src())}
    started = time.perf_counter()
    with tempfile.TemporaryFile() as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "fds.cli", *args, "--quiet", "--json"],
            stdout=out,
            stderr=subprocess.PIPE,
            env=env,
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        error = child.stderr.read().decode() if child.stderr else ""
        out.seek(0)
        text = out.read().decode()
    if child.returncode != 0:
        raise SystemExit(f"fds {' '.join(args)} failed ({child.returncode}): {error[-2000:]}")
    summary = json.loads(text.strip().splitlines()[-1])
    return summary | {"wall_seconds": seconds, "peak_rss": usage.ru_maxrss * 1024}


def _src() -> Path:
    return Path(__file__).resolve().parent.parent / "src"


def epoch_throughput(run: Path) -> tuple[float, int]:
    """(training rows per second of the run's first epoch, rows trained in it)."""
    record = json.loads((run / "metrics.jsonl").read_text().splitlines()[0])
    # the batch the run trained with (config.yaml leaves it to the data: tables take 256)
    batch = json.loads((run / "model" / "config.json").read_text())["params"]["batch_size"]
    rows = record["step"] * batch
    return rows / record["seconds"], rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--quick", action="store_true", help="60,000 rows: a smoke test")
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here")
    parser.add_argument("--max-steps", type=int, default=None, help="stop training after N steps")
    parser.add_argument("--skip", action="append", default=[], choices=SKIPPABLE)
    args = parser.parse_args()
    rows = 60_000 if args.quick else args.rows
    slice_rows = min(rows, SLICE_ROWS)
    with tempfile.TemporaryDirectory(prefix="fds-scale-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        big, part = work / "big.parquet", work / "slice.parquet"
        steps: dict[str, dict[str, Any]] = {}
        make = ["datasets", "make", "big-table", "--overwrite"]
        steps["make"] = run_child([*make, "--rows", str(rows), "--out", str(big)])
        run_child([*make, "--rows", str(slice_rows), "--out", str(part)])
        runs = {"memory": work / "run-memory", "stream": work / "run-stream"}
        config = work / "steps.yaml"
        config.write_text(f"max_steps: {args.max_steps}\n" if args.max_steps else "{}\n")
        train = ["train", "--config", str(config), *MODEL]
        if "memory" not in args.skip:
            steps["memory"] = run_child(
                [*train, "--data", str(part), "--no-stream", "--out", str(runs["memory"])]
            )
        else:
            del runs["memory"]
        steps["stream"] = run_child(
            [*train, "--data", str(big), "--stream", "--out", str(runs["stream"])]
        )
        for kind, run in runs.items():
            steps[kind]["rows_per_second"], steps[kind]["rows"] = epoch_throughput(run)
        model = str(runs["stream"])
        if "encode" not in args.skip:
            out = str(work / "z.parquet")
            steps["encode"] = run_child(
                ["encode", "--model", model, "--data", str(big), "--stream", "--out", out]
            )
        if "sample" not in args.skip:
            out = str(work / "s.parquet")
            steps["sample"] = run_child(
                [
                    "sample",
                    "--model",
                    model,
                    "-n",
                    str(rows),
                    "--stream",
                    "--seed",
                    "0",
                    "--out",
                    out,
                ]
            )
        for kind in ("encode", "sample"):
            if kind in steps:
                steps[kind]["rows_per_second"] = steps[kind]["rows"] / steps[kind]["wall_seconds"]
    report(rows, slice_rows, args.max_steps, steps)


def report(
    rows: int, slice_rows: int, max_steps: int | None, steps: dict[str, dict[str, Any]]
) -> None:
    table = []
    for kind, step in steps.items():
        table.append(
            [
                kind,
                step.get("rows", rows),
                step["peak_rss"] / GIB,
                step["wall_seconds"],
                step.get("rows_per_second", float("nan")),
            ]
        )
    print_table(["step", "rows", "peak RSS GiB", "wall s", "rows/s"], table)
    ratio = (
        steps["stream"]["rows_per_second"] / steps["memory"]["rows_per_second"]
        if "memory" in steps
        else float("nan")
    )
    streamed_peak = max(steps[k]["peak_rss"] for k in ("stream", "encode", "sample") if k in steps)
    print(
        f"\nstream / memory throughput: {ratio:.3f} (goal ≥ {RATIO_GOAL}); largest streamed peak "
        f"RSS {streamed_peak / GIB:.2f} GiB (goal ≤ {RSS_GOAL / GIB:.0f} GiB)"
    )
    emit_json(
        {
            "benchmark": "scale",
            "rows": rows,
            "columns": 20,
            "memory_slice_rows": slice_rows,
            "max_steps": max_steps,
            "throughput_ratio": None if math.isnan(ratio) else round(ratio, 4),
            "throughput_goal_met": None if math.isnan(ratio) else ratio >= RATIO_GOAL,
            "peak_rss_bytes": {k: int(v["peak_rss"]) for k, v in steps.items()},
            "rss_goal_met": streamed_peak <= RSS_GOAL,
            "rows_per_second": {
                k: round(v["rows_per_second"], 1)
                for k, v in steps.items()
                if "rows_per_second" in v
            },
            "wall_seconds": {k: round(v["wall_seconds"], 1) for k, v in steps.items()},
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
