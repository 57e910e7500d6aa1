"""torch.distributed training: 2 processes × 1 thread against 1 process × 1 thread, in one run.

`--sync-every 1,4,8,16` trains the 2 processes once per value: 1 is DistributedDataParallel (the
gradients averaged every step), K > 1 local SGD (`distributed: {sync_every: K}`: each rank steps
on its own rows with its own Adam, the weights are averaged every K steps and at every epoch's
end; `--warmup-steps W`: the first W steps as DDP). Every contender is compared with the 1-process
run of the same repeat.

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
              global batch ÷ the median epoch's training seconds from `history_` (validation
              excluded), the first epoch skipped as warm-up; "ratio, all epochs" counts every
              epoch's seconds, the first too (where `--warmup-steps` pays its DDP steps);
  final ELBO  held-out mean ELBO (nats, Fashion-MNIST test images) of the trained model;
  all-reduce  after training, the fastest of 20 all-reduces of the model's gradient size between
              the 2 processes: the communication each step pays, beside a step's compute.

Goals (issue 17): examples/s of 2 processes ≥ 1.6 × 1 process, final ELBO within 1%.
Fashion-MNIST absent: uniform random images of the same shape (throughput only means something).

    .venv/bin/python benchmarks/distributed.py [--repeats 3] [--n 60000] [--epochs 10]
        [--batch-size 128] [--same-global-batch] [--precision auto] [--quick]
        [--sync-every 1,4,8,16] [--warmup-steps 0]

  CPU ms/step  rank 0's CPU time (time.process_time: every thread of the process, gloo's too)
              from the end of the first epoch's steps to the end of the last's, ÷ those steps:
              what a rank costs per step, which the load does not change as it does wall time.

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
    joined = world > 1 and not args["independent"]
    if joined:
        torch.distributed.init_process_group(
            "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
        )
    try:
        from fds import FDS

        X, X_test, _ = _data(args["n"], args["n_test"])
        cpu_marks = _mark_epoch_cpu()
        started = time.perf_counter()
        sync = {"sync_every": args["sync_every"], "warmup_steps": args["warmup_steps"]}
        model = FDS(
            **MODEL_SPEC,
            batch_size=args["batch_size"] // world
            if args["same_global_batch"]
            else args["batch_size"],
            epochs=args["epochs"],
            lr=LR * (args["lr_scale"] if joined else 1.0),
            val_fraction=0.0,
            seed=args["seed"],
            threads=1,
            device="cpu",
            precision=args["precision"],
            distributed=sync,
            verbose=False,
        ).fit(X)
        wall = time.perf_counter() - started
        steps = int(model.history_[-1]["step"]) - int(model.history_[0]["step"])
        allreduce = _allreduce_ms(model.model_) if joined else None
        if rank == 0:
            result = {
                "epoch_seconds": [float(h["seconds"]) for h in model.history_],
                "steps_per_epoch": int(model.history_[0]["step"]),
                "global_batch": model.global_batch_,
                "elbo": model.score(X_test),
                "wall_s": wall,
                "cpu_ms_per_step": 1e3 * (cpu_marks[-1] - cpu_marks[0]) / max(1, steps),
                "allreduce_ms": allreduce,
            }
            (out / f"world{world}.json").write_text(json.dumps(result))
    finally:
        if joined:
            torch.distributed.destroy_process_group()


def _mark_epoch_cpu() -> list[float]:
    """The process's CPU seconds each time an epoch's steps end (FDS has no epoch callback in
    its estimator, so the Trainer's `_end_epoch` is wrapped, in this benchmark process only)."""
    from fds.training.trainer import Trainer

    marks: list[float] = []
    end_epoch = Trainer._end_epoch

    def marked(self: Trainer, *args: Any, **kwargs: Any) -> Any:
        marks.append(time.process_time())
        return end_epoch(self, *args, **kwargs)

    Trainer._end_epoch = marked  # type: ignore[method-assign]
    return marks


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
    """Train once with `world` processes (`args["sync_every"]`: how they keep one model); rank
    0's figures."""
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
    per_epoch = result["steps_per_epoch"] * result["global_batch"]
    result["examples_per_s"] = per_epoch / median(timed)
    # every epoch, the first too: where a warm-up of DDP steps (--warmup-steps) is paid
    result["examples_per_s_all"] = (
        per_epoch * len(result["epoch_seconds"]) / sum(result["epoch_seconds"])
    )
    if args["independent"]:  # each process trained its own model at rank 0's pace
        result["examples_per_s"] *= world
        result["examples_per_s_all"] *= world
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
    parser.add_argument(
        "--sync-every",
        default="1",
        help="comma-separated values of distributed.sync_every for the 2 processes, each a "
        "contender: 1 = DDP (gradients averaged every step), K > 1 = local SGD (weights "
        "averaged every K steps), e.g. 1,4,8,16",
    )
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=0,
        help="distributed.warmup_steps of the local-SGD contenders: their first steps as DDP",
    )
    parser.add_argument(
        "--independent",
        action="store_true",
        help="also run 2 processes that join no group, each training its own model (examples/s "
        "= 2 × rank 0's): the ceiling of any 2-process training here, whose shortfall from 2× "
        "is what 2 busy processes cost each other (caches, memory), not communication",
    )
    parser.add_argument(
        "--lr-scale",
        type=float,
        default=1.0,
        help="the 2-process contenders train at lr × this (1 process: lr as given)",
    )
    parser.add_argument("--quick", action="store_true", help="smoke run of about a minute")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.n, args.n_test, args.epochs = 1, 2560, 500, 2
    syncs = [int(k) for k in args.sync_every.split(",")]
    if not syncs or min(syncs) < 1:
        parser.error("--sync-every takes positive integers, e.g. 1,4,8")
    settings = {
        "n": args.n,
        "n_test": args.n_test,
        "epochs": args.epochs,
        "seed": args.seed,
        "precision": args.precision,
        "batch_size": args.batch_size,
        "same_global_batch": args.same_global_batch,
        "sync_every": 1,
        "warmup_steps": 0,
        "independent": False,
        "lr_scale": args.lr_scale,
    }
    # contenders: (label, processes, settings); K = 1 ignores the warm-up (DDP throughout)
    contenders = [("1 process × 1 thread", 1, settings)] + [
        (
            (
                "2 × 1, DDP (sync_every 1)"
                if k == 1
                else f"2 × 1, local SGD sync_every {k}"
                + (f", warm-up {args.warmup_steps}" if args.warmup_steps else "")
            )
            + (f", lr × {args.lr_scale:g}" if args.lr_scale != 1 else ""),
            2,
            settings | {"sync_every": k, "warmup_steps": args.warmup_steps if k > 1 else 0},
        )
        for k in syncs
    ]
    if args.independent:
        contenders.append(
            ("2 independent processes (no group)", 2, settings | {"independent": True})
        )
    data = _data(8, 8)[2]
    load_before = os.getloadavg()
    print(
        f"uptime before: {_uptime()}; contenders alternate in each repeat: "
        + " | ".join(label for label, _, _ in contenders),
        flush=True,
    )
    runs: list[list[dict[str, Any]]] = [[] for _ in contenders]
    for r in range(args.repeats):
        for i, (label, world, config) in enumerate(contenders):
            result = run(world, config, args.timeout)
            runs[i].append(result)
            print(
                f"repeat {r + 1}/{args.repeats}, {label}: "
                f"{result['examples_per_s']:,.0f} examples/s (global batch "
                f"{result['global_batch']}), CPU {result['cpu_ms_per_step']:.1f} ms/step (rank "
                f"0), final ELBO {result['elbo']:.2f}, wall {result['wall_s']:.1f} s, "
                f"uptime {_uptime()}",
                flush=True,
            )
    load_after = os.getloadavg()

    def med(i: int, key: str) -> float:
        return median([result[key] for result in runs[i]])

    one_elbo = med(0, "elbo")
    rows, figures = [], []
    for i, (label, world, config) in enumerate(contenders):
        ratios = [
            mine["examples_per_s"] / one["examples_per_s"]
            for one, mine in zip(runs[0], runs[i], strict=True)
        ]
        gap = abs(med(i, "elbo") - one_elbo) / abs(one_elbo)
        ratios_all = [
            mine["examples_per_s_all"] / one["examples_per_s_all"]
            for one, mine in zip(runs[0], runs[i], strict=True)
        ]
        batch = int(runs[i][0]["global_batch"])
        step_ms = 1e3 * batch / med(i, "examples_per_s")
        met = median(ratios) >= GOAL_SPEEDUP and gap <= GOAL_ELBO_GAP
        grouped = world > 1 and not config["independent"]  # one model over a process group
        rows.append(
            [
                label,
                med(i, "examples_per_s"),
                median(ratios),
                median(ratios_all),
                step_ms,
                med(i, "cpu_ms_per_step"),
                med(i, "elbo"),
                f"{gap:.2%}",
                ("met" if met else "not met") if grouped else "",
            ]
        )
        figures.append(
            {
                "contender": label,
                "processes": world,
                "sync_every": config["sync_every"],
                "warmup_steps": config["warmup_steps"],
                "global_batch": batch,
                "examples_per_s": med(i, "examples_per_s"),
                "ratio": median(ratios),
                "ratio_per_repeat": ratios,
                "ratio_all_epochs": median(ratios_all),
                "step_ms": step_ms,
                "cpu_ms_per_step": med(i, "cpu_ms_per_step"),
                "elbo": med(i, "elbo"),
                "elbo_gap": gap,
                "allreduce_ms": med(i, "allreduce_ms") if grouped else None,
            }
        )
    print()
    print(
        f"data: {data}, {args.n} training images, {args.epochs} epochs (the first one warm-up), "
        f"1 thread per process, {args.repeats} alternating repeats; batch_size {args.batch_size}"
        f"{' split over' if args.same_global_batch else ' per process'}, lr {LR} for 1 process, "
        f"{LR * args.lr_scale:g} for 2; "
        f"load average {load_before[0]:.1f} before, {load_after[0]:.1f} after "
        f"({os.cpu_count()} CPUs: a load above 1 before the run takes CPU time from the 2 "
        f"processes; uptime now {_uptime()})"
    )
    print_table(
        [
            "",
            "median examples/s",
            "ratio to 1 process",
            "ratio, all epochs",
            "ms per step (wall)",
            "CPU ms/step (rank 0)",
            "final ELBO",
            "ELBO gap",
            f"goal (ratio ≥ {GOAL_SPEEDUP}, gap ≤ {GOAL_ELBO_GAP:.0%})",
        ],
        rows,
    )
    if len(contenders) > 1:
        print(
            f"all-reduce of the model's 1 × parameters: {figures[1]['allreduce_ms']:.1f} ms "
            "(fastest of 20, median over runs): DDP pays it every step, local SGD every K steps"
        )
    emit_json(
        {
            "benchmark": "distributed",
            "data": data,
            "n": args.n,
            "epochs": args.epochs,
            "batch_size": args.batch_size,
            "same_global_batch": args.same_global_batch,
            "precision": args.precision,
            "repeats": args.repeats,
            "contenders": figures,
            "speedup_goal": GOAL_SPEEDUP,
            "elbo_gap_goal": GOAL_ELBO_GAP,
            "load_average_before": load_before[0],
            "load_average_after": load_after[0],
            "environment": environment(),
        }
    )


def _uptime() -> str:
    """`uptime`'s load averages (1, 5, 15 min), printed beside every speed figure."""
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


if __name__ == "__main__":
    main()
