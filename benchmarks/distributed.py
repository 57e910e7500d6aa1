"""torch.distributed training: 2 processes × 1 thread against 1 process × 1 thread, in one run.

The model is the core benchmark's (benchmarks/_common.py MODEL_SPEC: the Fashion-MNIST MLP `vae`,
784-512-512-(2×16), Bernoulli likelihood), Adam lr 1e-3 for both, the same seed. The two ranks
join one gloo process group over TCP on 127.0.0.1 (what `torchrun --nproc-per-node 2 -m fds
train` sets up) and FDS trains one model with DistributedDataParallel. As under torchrun,
`batch_size` (`--batch-size`, 128) is each process's batch: 1 process trains on batches of 128
rows, 2 processes on global batches of 256 (128 each), so they take half the steps per epoch;
both train the same number of epochs and are compared on the final ELBO, by default after the
core quality benchmark's training (60,000 images, 10 epochs: fashion_quality.py). Far shorter
runs compare step counts more than models: after 4 epochs of 12,800 images (400 steps of 128 rows
against 200 of 256) one process at batch 256 ended 3.4% below one at batch 128, after 10 epochs of
60,000 0.7% (single-process runs, docs/benchmarks.md). `--same-global-batch`
gives each of the 2 processes 64 rows instead: the same global batches and steps as 1 process
(the comparison of the version where batch_size was the global batch). Contenders alternate
(1, 2, 1, 2, …) so drift of the shared machine's load hits both; the load average is printed
beside the figures: 2 processes need both CPUs, so a machine that is not idle understates them.

  examples/s  steady-state training examples per second (all processes together): steps ×
              global batch ÷ the epochs' training seconds from `history_` (validation
              excluded), the first epoch skipped as warm-up;
  final ELBO  held-out mean ELBO (nats, Fashion-MNIST test images) of the trained model;
  all-reduce  after training, the fastest of 20 all-reduces of the model's gradient size between
              the 2 processes: the communication each step pays, beside a step's compute.

Goals (issue 17): examples/s of 2 processes ≥ 1.6 × 1 process, final ELBO within 1%.
Fashion-MNIST absent: uniform random images of the same shape (throughput only means something).

    .venv/bin/python benchmarks/distributed.py [--repeats 3] [--n 60000] [--epochs 10]
        [--batch-size 128] [--same-global-batch] [--precision auto] [--quick]

Prints one line per run, a table of medians, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.multiprocessing as mp
from _common import (
    BATCH,
    LR,
    MODEL_SPEC,
    emit_json,
    environment,
    load_fashion,
    median,
    print_table,
    random_images,
)

GOAL_SPEEDUP, GOAL_ELBO_GAP = 1.6, 0.01


def _data(n: int, n_test: int) -> tuple[np.ndarray, np.ndarray, str]:
    train, test = load_fashion("train", n=n), load_fashion("test", n=n_test)
    if train is None or test is None:
        return random_images(n, seed=0), random_images(n_test, seed=1), "random"
    return train[0], test[0], "fashion-mnist"


def _rank(rank: int, world: int, port: int, args: dict[str, Any], out: Path) -> None:
    """One training process (1 thread); rank 0 writes the epochs' seconds and the final ELBO."""
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    if world > 1:
        torch.distributed.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
        )
    try:
        from fds import FDS

        X, X_test, _ = _data(args["n"], args["n_test"])
        started = time.perf_counter()
        model = FDS(
            **MODEL_SPEC,
            batch_size=args["batch_size"] // world
            if args["same_global_batch"]
            else args["batch_size"],
            epochs=args["epochs"],
            lr=LR,
            val_fraction=0.0,
            seed=args["seed"],
            threads=1,
            device="cpu",
            precision=args["precision"],
            verbose=False,
        ).fit(X)
        wall = time.perf_counter() - started
        allreduce = _allreduce_ms(model.model_) if world > 1 else None
        if rank == 0:
            result = {
                "epoch_seconds": [float(h["seconds"]) for h in model.history_],
                "steps_per_epoch": int(model.history_[0]["step"]),
                "global_batch": model.global_batch_,
                "elbo": model.score(X_test),
                "wall_s": wall,
                "allreduce_ms": allreduce,
            }
            (out / f"world{world}.json").write_text(json.dumps(result))
    finally:
        if world > 1:
            torch.distributed.destroy_process_group()


def _allreduce_ms(model: torch.nn.Module, rounds: int = 20) -> float:
    """Fastest of `rounds` all-reduces of one step's gradients (all parameters, float32): the
    communication every DDP step pays."""
    grads = torch.zeros(sum(p.numel() for p in model.parameters()))
    times = []
    for _ in range(rounds):
        torch.distributed.barrier()
        started = time.perf_counter()
        torch.distributed.all_reduce(grads)
        times.append(time.perf_counter() - started)
    return 1e3 * min(times)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(world: int, args: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Train once with `world` processes; rank 0's figures."""
    with tempfile.TemporaryDirectory(prefix="fds-ddp-bench-") as scratch:
        out = Path(scratch)
        context = mp.start_processes(
            _rank, args=(world, _free_port(), args, out), nprocs=world, join=False
        )
        for process in context.processes:
            process.join(timeout=timeout)
        if any(p.is_alive() or p.exitcode != 0 for p in context.processes):
            for p in context.processes:
                p.kill()
            raise SystemExit(f"the {world}-process run failed or exceeded {timeout:.0f} s")
        result = json.loads((out / f"world{world}.json").read_text())
    timed = result["epoch_seconds"][1:] or result["epoch_seconds"]
    result["examples_per_s"] = result["steps_per_epoch"] * result["global_batch"] / median(timed)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs of each")
    # the core quality benchmark's training (fashion_quality.py: 60k images, 10 epochs): after a
    # few hundred steps the ELBO still measures the step count, not the model (see the docstring)
    parser.add_argument("--n", type=int, default=60000, help="training images")
    parser.add_argument("--n-test", type=int, default=10000, help="held-out images for the ELBO")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per run (first: warm-up)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per run")
    parser.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="number format of both runs' network passes (auto: as fds train picks it)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=BATCH,
        help="batch_size of each process (FDS's meaning under torchrun): 2 processes train on "
        "global batches of twice as many rows",
    )
    parser.add_argument(
        "--same-global-batch",
        action="store_true",
        help="give each of the 2 processes batch_size / 2 instead, so both contenders train on "
        "the same global batches (the same steps, the same model up to noise)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run of about a minute")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.n, args.n_test, args.epochs = 1, 2560, 500, 2
    settings = {
        "n": args.n,
        "n_test": args.n_test,
        "epochs": args.epochs,
        "seed": args.seed,
        "precision": args.precision,
        "batch_size": args.batch_size,
        "same_global_batch": args.same_global_batch,
    }
    data = _data(8, 8)[2]
    load_before = os.getloadavg()
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for r in range(args.repeats):
        for world in (1, 2):
            result = run(world, settings, args.timeout)
            runs[world].append(result)
            print(
                f"repeat {r + 1}/{args.repeats}, {world} process(es): "
                f"{result['examples_per_s']:,.0f} examples/s (global batch "
                f"{result['global_batch']}), final ELBO {result['elbo']:.2f}, "
                f"wall {result['wall_s']:.1f} s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    load_after = os.getloadavg()

    def med(world: int, key: str) -> float:
        return median([result[key] for result in runs[world]])

    speedups = [
        two["examples_per_s"] / one["examples_per_s"]
        for one, two in zip(runs[1], runs[2], strict=True)
    ]
    speedup = median(speedups)
    elbo_gap = abs(med(2, "elbo") - med(1, "elbo")) / abs(med(1, "elbo"))
    print()
    batches = {world: int(runs[world][0]["global_batch"]) for world in (1, 2)}
    print(
        f"data: {data}, {args.n} training images, {args.epochs} epochs (the first one warm-up), "
        f"1 thread per process, {args.repeats} alternating repeats; global batch (rows per step) "
        f"{batches[1]} for 1 process, {batches[2]} for 2 (batch_size "
        f"{batches[2] // 2} each), lr {LR} for both; load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after ({os.cpu_count()} CPUs: a load above 1 before the run takes "
        f"CPU time from the 2 processes)"
    )
    print_table(
        ["", "median examples/s", "ratio", "final ELBO", "goal"],
        [
            ["1 process × 1 thread", med(1, "examples_per_s"), 1.0, med(1, "elbo"), ""],
            [
                "2 processes × 1 thread (DDP, gloo)",
                med(2, "examples_per_s"),
                speedup,
                med(2, "elbo"),
                f"ratio ≥ {GOAL_SPEEDUP}, ELBO within {GOAL_ELBO_GAP:.0%}",
            ],
        ],
    )
    print(
        f"all-reduce of one step's gradients: {med(2, 'allreduce_ms'):.1f} ms (fastest of 20, "
        f"median over runs); a step: {1e3 * batches[1] / med(1, 'examples_per_s'):.1f} ms with 1 "
        f"process, {1e3 * batches[2] / med(2, 'examples_per_s'):.1f} ms with 2"
    )
    print(
        f"final ELBO gap: {elbo_gap:.2%}; speedup per repeat: "
        + ", ".join(f"{s:.2f}" for s in speedups)
    )
    emit_json(
        {
            "benchmark": "distributed",
            "data": data,
            "n": args.n,
            "epochs": args.epochs,
            "global_batch_1": batches[1],
            "global_batch_2": batches[2],
            "precision": args.precision,
            "repeats": args.repeats,
            "examples_per_s_1": med(1, "examples_per_s"),
            "examples_per_s_2": med(2, "examples_per_s"),
            "speedup": speedup,
            "speedup_goal": GOAL_SPEEDUP,
            "elbo_1": med(1, "elbo"),
            "elbo_2": med(2, "elbo"),
            "elbo_gap": elbo_gap,
            "elbo_gap_goal": GOAL_ELBO_GAP,
            "allreduce_ms": med(2, "allreduce_ms"),
            "load_average_before": load_before[0],
            "load_average_after": load_after[0],
            "environment": environment(),
        }
    )


if __name__ == "__main__":
    main()
